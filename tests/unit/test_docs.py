"""The Python examples in docs/ run as written."""

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


@pytest.mark.anvil
def test_provenance_doc_example_runs(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "provenance.md").read_text()
    [code] = re.findall(r"```python\n(.*?)```", text, re.S)
    code = code.replace("/tmp/nl-provenance", str(tmp_path / "home"))
    exec(compile(code, "docs/provenance.md", "exec"), {})


def test_provenance_doc_shell_example_uses_real_commands() -> None:
    from typer.main import get_command

    from neuroledger.cli.main import app

    text = (ROOT / "docs" / "provenance.md").read_text()
    commands = set(get_command(app).commands["asset"].commands)  # type: ignore[attr-defined]
    used = set(re.findall(r"neuroledger asset ([a-z-]+)", text))
    assert used and used <= commands, used - commands


def test_audit_doc_example_runs() -> None:
    text = (ROOT / "docs" / "audit.md").read_text()
    [code] = re.findall(r"```python\n(.*?)```", text, re.S)
    exec(compile(code, "docs/audit.md", "exec"), {})


def test_audit_doc_shell_example_uses_real_commands() -> None:
    from typer.main import get_command

    from neuroledger.cli.main import app

    text = (ROOT / "docs" / "audit.md").read_text()
    commands = set(get_command(app).commands["audit"].commands)  # type: ignore[attr-defined]
    used = set(re.findall(r"neuroledger audit ([a-z-]+)", text))
    assert used and used <= commands, used - commands


def test_federated_doc_example_runs() -> None:
    text = (ROOT / "docs" / "federated.md").read_text()
    [code] = re.findall(r"```python\n(.*?)```", text, re.S)
    exec(compile(code, "docs/federated.md", "exec"), {})
