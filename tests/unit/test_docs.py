"""The Python examples in docs/ run as written, and the commands they show exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_example(doc: str, home_placeholder: str | None = None, home: Path | None = None) -> None:
    """Execute the one Python block of ``docs/<doc>``, with its home path pointed at ``home``."""
    text = (ROOT / "docs" / doc).read_text()
    [code] = re.findall(r"```python\n(.*?)```", text, re.S)
    if home_placeholder is not None and home is not None:
        code = code.replace(home_placeholder, str(home))
    exec(compile(code, f"docs/{doc}", "exec"), {})


@pytest.mark.anvil
@pytest.mark.parametrize(
    ("doc", "placeholder"),
    [("identity.md", "/tmp/nl-example"), ("provenance.md", "/tmp/nl-provenance")],
)
def test_chain_doc_examples_run(tmp_path: Path, doc: str, placeholder: str) -> None:
    run_example(doc, placeholder, tmp_path / "home")


@pytest.mark.parametrize("doc", ["audit.md", "federated.md", "privacy.md"])
def test_offline_doc_examples_run(doc: str) -> None:
    run_example(doc)


@pytest.mark.parametrize(
    ("doc", "group"),
    [
        ("provenance.md", "asset"),
        ("audit.md", "audit"),
        ("federated.md", "fl"),
        *[("privacy.md", g) for g in ("data", "grant", "consent", "job", "gateway")],
    ],
)
def test_doc_shell_examples_use_real_commands(doc: str, group: str) -> None:
    from neuroledger.cli.main import load_command

    text = (ROOT / "docs" / doc).read_text()
    commands = set(load_command(group).commands)  # type: ignore[attr-defined]
    used = set(re.findall(rf"neuroledger {group} ([a-z-]+)", text))
    assert used and used <= commands, used - commands
