"""What people read from the CLI: progress bars, names for addresses, checked settings (issue 13)."""

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
    # Each pass out of the file's size (the speed column may read "122.0 kB/s").
    assert "/1.0 kB" in text and "/2.0 kB" not in text


def test_no_bar_off_a_terminal() -> None:
    console = Console(file=io.StringIO(), force_terminal=False)
    with byte_progress("x", 10, True, to=console) as advance:
        assert advance is None


def test_fl_log_lines_name_the_identities_this_home_holds() -> None:
    """Issue 13: output for people names identities, not addresses."""
    import logging

    from neuroledger.cli._fl_support import NamesIdentities

    mine, other = "0x" + "ab" * 20, "0x" + "cd" * 20
    formatter = NamesIdentities({mine: "hospital-b"})
    record = logging.LogRecord("neuroledger.federated", logging.WARNING, __file__, 1,
                               "round 2: rejected the update of %s and %s", (mine.upper().replace("0X", "0x"), other), None)  # fmt: skip
    assert formatter.format(record) == (
        f"fl WARNING: round 2: rejected the update of hospital-b and {other}"
    )


def test_block_time_comes_from_the_environment_and_is_checked(monkeypatch) -> None:
    import pytest

    from neuroledger.environment import settings_from_env
    from neuroledger.errors import ConfigError

    monkeypatch.setenv("NEUROLEDGER_BLOCK_TIME", "2")
    assert settings_from_env(None, None, None).block_time == 2.0
    for bad in ("fast", "-1", "600"):
        monkeypatch.setenv("NEUROLEDGER_BLOCK_TIME", bad)
        with pytest.raises(ConfigError, match="NEUROLEDGER_BLOCK_TIME"):
            settings_from_env(None, None, None)
