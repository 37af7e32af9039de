"""Every revert reason a contract of the suite can give names its source and maps to a type."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from neuroledger.chain._reverts import REVERT_SOURCES, revert_error
from neuroledger.errors import (
    ContractPausedError,
    NotAuthorizedError,
    SignatureRejectedError,
    TransactionRevertedError,
)

ROOT = Path(__file__).resolve().parents[2]
SNEKMATE = Path(next(iter(importlib.util.find_spec("snekmate").submodule_search_locations)))
_IMPORT = re.compile(r"^from snekmate\.(\w+) import (\w+)", re.M)
_REASON = re.compile(r'"((\w+): [^"]+)"')


def _sources() -> list[Path]:
    """Our contracts and modules, and every snekmate module they import (and those import)."""
    ours = sorted((ROOT / "contracts").rglob("*.vy"))
    seen: set[Path] = set()
    todo = list(ours)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        text = path.read_text()
        todo += [SNEKMATE / pkg / f"{mod}.vy" for pkg, mod in _IMPORT.findall(text)]
        todo += [
            path.parent / f"{mod}.vy" for mod in re.findall(r"^from \. import (\w+)", text, re.M)
        ]
    return sorted(seen)


def _reasons() -> list[tuple[str, str]]:
    out = []
    for path in _sources():
        for line in path.read_text().splitlines():
            if line.lstrip().startswith("#"):
                continue
            for reason, _ in _REASON.findall(line):
                if "assert" in line or line.strip().startswith('"') or "raise" in line:
                    out.append((path.name, reason))
    return out


REASONS = _reasons()


def test_the_suite_has_reasons_to_check() -> None:
    names = {name for name, _ in REASONS}
    assert {"AccessGrants.vy", "FederatedTask.vy", "governed.vy", "pausable.vy"} <= names
    assert len(REASONS) > 80


@pytest.mark.parametrize(("source", "reason"), REASONS, ids=[r for _, r in REASONS])
def test_every_reason_names_a_known_source(source: str, reason: str) -> None:
    prefix = reason.split(":", 1)[0]
    assert prefix in REVERT_SOURCES, f"{source}: {reason!r} has an unknown prefix"
    if source[0].isupper() and source != "Timelock.vy":
        assert prefix == source.removesuffix(".vy"), f"{source} must name itself: {reason!r}"
    err = revert_error(reason, label="call")
    assert err.contract == prefix and isinstance(err, TransactionRevertedError)
    if "caller is not" in reason or "missing role" in reason or "access is denied" in reason:
        assert isinstance(err, NotAuthorizedError)
    elif reason.startswith(("ecdsa:", "DIDRegistry: signature")) or reason.endswith(
        ": invalid signature"
    ):
        assert isinstance(err, SignatureRejectedError)
    elif reason == "pausable: contract is paused":
        assert isinstance(err, ContractPausedError)
    else:
        assert type(err) is TransactionRevertedError


def test_a_reason_from_elsewhere_keeps_the_base_type() -> None:
    err = revert_error("Ownable: caller is not the owner", label="call")  # not our suite
    assert type(err) is TransactionRevertedError and err.contract is None
