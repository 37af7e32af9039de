"""Deployment records: where the suite lives on each chain, one JSON file per chain id in the home, and who governs it. Files only: nothing here talks to a chain."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neuroledger._fs import atomic_write
from neuroledger.errors import (
    ChainIdMismatchError,
    ConfigError,
)

if TYPE_CHECKING:
    pass

__all__ = [
    "DEFAULT_DELAY_SECONDS",
    "MIN_DELAY_SECONDS",
    "DeploymentRecord",
    "DeploymentStore",
    "GovernanceSetup",
]


#: Shortest timelock delay accepted, and the default (two days, as public chains use).
MIN_DELAY_SECONDS = 60


DEFAULT_DELAY_SECONDS = 2 * 86400


@dataclass(frozen=True)
class GovernanceSetup:
    """Who governs a suite: the timelock's proposer and executor, the guardian, the delay.

    >>> GovernanceSetup(governor=None).to_json()
    {'governor': None, 'guardian': None, 'delay': 172800}
    """

    governor: str | None
    guardian: str | None = None
    delay: int = DEFAULT_DELAY_SECONDS

    def __post_init__(self) -> None:
        if self.delay < MIN_DELAY_SECONDS:
            raise ConfigError(
                f"a timelock delay of {self.delay} s is too short; give at least "
                f"{MIN_DELAY_SECONDS} s (`--delay`)"
            )

    def to_json(self) -> dict[str, Any]:
        """The governance as stored in the deployment record."""
        return {"governor": self.governor, "guardian": self.guardian, "delay": self.delay}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GovernanceSetup:
        """The governance stored in a deployment record."""
        return cls(data.get("governor"), data.get("guardian"), int(data["delay"]))


@dataclass
class DeploymentRecord:
    """Where the suite lives on one chain."""

    chain_id: int
    genesis_hash: str
    contracts: dict[str, dict[str, Any]] = field(default_factory=dict)
    rpc_urls: list[str] = field(default_factory=list)
    governance: GovernanceSetup | None = None
    #: The most one call of the credits faucet mints (0: no faucet), fixed at deployment:
    #: every home that reads this record, embedded or not, expects the same Credits.
    faucet_limit: int | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the record as stored on disk."""
        return {
            "chain_id": self.chain_id,
            "genesis_hash": self.genesis_hash,
            "contracts": self.contracts,
            "rpc_urls": self.rpc_urls,
            "governance": self.governance.to_json() if self.governance else None,
            "faucet_limit": self.faucet_limit,
        }


class DeploymentStore:
    """The per-chain deployment records of one home."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, chain_id: int) -> Path:
        """File of the record for ``chain_id``."""
        return self.directory / f"{chain_id}.json"

    def load(self, chain_id: int) -> DeploymentRecord | None:
        """Return the record for ``chain_id``, or None."""
        try:
            data = json.loads(self.path(chain_id).read_text())
        except FileNotFoundError:
            return None
        return DeploymentRecord(
            chain_id=int(data["chain_id"]),
            genesis_hash=str(data["genesis_hash"]),
            contracts=dict(data.get("contracts", {})),
            rpc_urls=list(data.get("rpc_urls", [])),
            governance=GovernanceSetup.from_json(data["governance"])
            if data.get("governance")
            else None,
            faucet_limit=None if data.get("faucet_limit") is None else int(data["faucet_limit"]),
        )

    def set_aside(self, chain_id: int) -> Path | None:
        """Move the record of ``chain_id`` aside (never deleted); return where it went."""
        path = self.path(chain_id)
        if not path.exists():
            return None
        aside = self.directory / f"{chain_id}.{time.strftime('%Y%m%dT%H%M%S')}.json.replaced"
        n = 1
        while aside.exists():
            n += 1
            aside = aside.with_name(
                f"{chain_id}.{time.strftime('%Y%m%dT%H%M%S')}-{n}.json.replaced"
            )
        os.replace(path, aside)
        return aside

    def save(self, record: DeploymentRecord) -> None:
        """Write a record atomically."""
        text = json.dumps(record.to_json(), indent=2, sort_keys=True)
        atomic_write(self.path(record.chain_id), text.encode(), mode=0o644)

    def check_url(self, url: str, chain_id: int) -> None:
        """Raise if ``url`` was recorded for another chain id than the one it serves now."""
        if not self.directory.exists():
            return
        for path in sorted(self.directory.glob("*.json")):
            try:
                data = json.loads(path.read_text())
            except ValueError:
                continue
            if url in data.get("rpc_urls", []) and int(data["chain_id"]) != chain_id:
                raise ChainIdMismatchError(
                    f"{url} now serves chain id {chain_id}, but this home recorded it as chain "
                    f"{data['chain_id']}; point --rpc-url at the node of chain {data['chain_id']}, "
                    f"or deploy to chain {chain_id} with `neuroledger deploy --from NAME`"
                )
