"""The contracts document themselves: NatSpec on every contract, `# @dev` on every event, and
the registries say in `@custom:security` that nobody administers them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
SOURCES = sorted(p for p in CONTRACTS.rglob("*.vy"))
ADMIN_FREE = ("DIDRegistry", "AssetRegistry", "AuditAnchor", "PaymentSettler", "ReputationRegistry")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_every_event_has_a_dev_comment(path: Path) -> None:
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("event "):
            above = "\n".join(lines[max(0, i - 4) : i])
            assert "# @dev" in above, f"{path.name}:{i + 1}: {line} has no `# @dev` comment"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_every_contract_has_natspec(path: Path) -> None:
    header = path.read_text().split('"""')[1]
    for tag in ("@title", "@custom:contract-name", "@license", "@notice"):
        assert tag in header, f"{path.name} lacks {tag}"
    for match in re.finditer(r"^@external\n(?:@\w+\n)*def (\w+)\(", path.read_text(), re.M):
        after = path.read_text()[match.end() :].split("\n\n\n")[0]
        assert '"""' in after and "@notice" in after, f"{path.name}: {match.group(1)} lacks @notice"


@pytest.mark.parametrize("name", ADMIN_FREE)
def test_the_registries_say_they_are_admin_free(name: str) -> None:
    text = (CONTRACTS / f"{name}.vy").read_text()
    security = text.split("@custom:security", 1)[1].split('"""', 1)[0]
    assert "no owner, no guardian and no pause" in " ".join(security.split())
    assert not re.search(r"^(initializes|from modules import governed)", text, re.M)
