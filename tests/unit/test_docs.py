"""The Python example in docs/identity.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.anvil
def test_identity_doc_example_runs(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "identity.md").read_text()
    [code] = re.findall(r"```python\n(.*?)```", text, re.S)
    code = code.replace("/tmp/nl-example", str(tmp_path / "home"))
    exec(compile(code, "docs/identity.md", "exec"), {})
