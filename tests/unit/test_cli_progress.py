"""Progress bars people read: passes over one file never show a doubled total (issue 13)."""

from __future__ import annotations

import io

from rich.console import Console

from neuroledger.cli._context import byte_progress


def test_two_passes_show_the_file_size_each_under_its_name() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with byte_progress(("hashing f.csv", "encrypting f.csv"), 1000, True, to=console) as advance:
        assert advance is not None
        for _ in range(20):  # two passes of 1000 bytes, 100 at a time
            advance(100)
            console._live_stack[-1].refresh()
    text = out.getvalue()
    assert "hashing f.csv" in text and "encrypting f.csv" in text
    assert "1.0 kB" in text and "2.0 kB" not in text  # each pass out of the file's size


def test_no_bar_off_a_terminal() -> None:
    console = Console(file=io.StringIO(), force_terminal=False)
    with byte_progress("x", 10, True, to=console) as advance:
        assert advance is None
