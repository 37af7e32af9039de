"""Helpers shared by the benchmarks: a bare anvil, the machine description, result files."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path

from neuroledger.chain._anvil import find_anvil

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    """One line describing the machine the numbers come from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    anvil = subprocess.run(
        [str(find_anvil()), "--version"], capture_output=True, text=True
    ).stdout.splitlines()[0]
    return f"{cpu}, {os.cpu_count()} cores{mem}; Python {platform.python_version()}; {anvil}"


def write_section(path: Path, marker: str, body: str) -> None:
    """Replace the section between ``<!-- marker -->`` comments in ``path`` (or append it)."""
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    text = path.read_text() if path.exists() else ""
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    path.write_text(text)
