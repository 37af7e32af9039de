"""What the provenance service answers: registrations, asset views, lineage graphs, verification results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from neuroledger.identity import format_did
from neuroledger.provenance._index import AssetRecord, Attestation, Change
from neuroledger.provenance._manifest import Manifest, ManifestDiff

__all__ = ["VERIFY_EXIT_CODES", "AssetView", "Lineage", "Registration", "Verification"]


#: Verification outcomes and the CLI exit code of each.
VERIFY_EXIT_CODES = {"ok": 0, "unknown": 10, "modified": 11, "revoked": 12, "deprecated": 13}


@dataclass(frozen=True)
class Registration:
    """A confirmed registration."""

    asset_id: str
    kind: str
    owner: str
    tx_hash: str
    metadata_digest: str
    manifest: Manifest | None = None
    digest: str = ""  # the content digest; the id is asset_id_for(owner identity, digest)


@dataclass(frozen=True)
class AssetView:
    """Everything known about one asset."""

    record: AssetRecord
    attestations: list[Attestation]
    changes: list[Change]
    metadata: dict[str, Any] | None

    def to_json(self, chain_id: int) -> dict[str, Any]:
        """A JSON-ready description."""
        r = self.record
        return {
            "id": r.id,
            "kind": r.kind,
            "status": r.status,
            "owner": format_did(chain_id, r.owner),
            "registered_by": r.sender,
            "license": r.license,
            "parents": list(r.parents),
            "metadata_digest": r.metadata_digest,
            "metadata_uri": r.metadata_uri,
            "block": r.block,
            "tx": r.tx,
            "metadata": self.metadata,
            "attestations": [
                {
                    "attester": format_did(chain_id, a.attester),
                    "statement_digest": a.statement_digest,
                    "statement_uri": a.statement_uri,
                    "block": a.block,
                    "tx": a.tx,
                }
                for a in self.attestations
            ],
            "changes": [
                {"type": c.type, "owner": c.owner, "reason": c.reason, "block": c.block, "tx": c.tx}
                for c in self.changes
            ],
        }


@dataclass(frozen=True)
class Lineage:
    """An asset and everything it derives from (or that derives from it)."""

    root: str
    nodes: dict[str, AssetRecord]
    edges: list[tuple[str, str]]  # (child, parent)
    depth: dict[str, int]
    direction: str = "ancestors"
    names: dict[str, str] = field(default_factory=dict)
    run_times: dict[str, tuple[str, str]] = field(default_factory=dict)  # run -> (start, end)
    registered: dict[str, str] = field(default_factory=dict)  # id -> ISO time of its block

    def to_json(self, chain_id: int) -> dict[str, Any]:
        """The graph as JSON: nodes by id (kind, status, owner DID, name, depth) and edges."""
        return {
            "root": self.root,
            "direction": self.direction,
            "nodes": {
                i: {"kind": r.kind, "status": r.status, "owner": format_did(chain_id, r.owner),
                    "name": self.names.get(i), "depth": self.depth[i]}
                for i, r in self.nodes.items()
            },
            "edges": [{"child": c, "parent": p} for c, p in self.edges],
        }  # fmt: skip

    def label(self, asset_id: str) -> str:
        """Short human label: kind, name (when known) and id prefix."""
        record = self.nodes[asset_id]
        name = self.names.get(asset_id)
        return f"{record.kind} {name + ' ' if name else ''}{asset_id[:12]}"


@dataclass(frozen=True)
class Verification:
    """The outcome of checking content on disk against the registry."""

    status: str  # ok | unknown | modified | revoked | deprecated
    path: str
    digest: str
    asset: AssetView | None = None
    expected: str | None = None
    diff: ManifestDiff | None = None
    lineage: Lineage | None = None

    @property
    def exit_code(self) -> int:
        """0 only for content matching an active record."""
        return VERIFY_EXIT_CODES[self.status]

    def to_json(self, chain_id: int) -> dict[str, Any]:
        """The result as JSON; ``lineage`` lists the matched asset's ancestry, nearest first."""
        diff = self.diff
        lineage = self.lineage
        return {
            "status": self.status,
            "path": self.path,
            "digest": self.digest,
            "expected": self.expected,
            "diff": None if diff is None else {
                "changed": list(diff.changed), "added": list(diff.added),
                "removed": list(diff.removed),
            },
            "asset": None if self.asset is None else self.asset.to_json(chain_id),
            "lineage": None if lineage is None else sorted(lineage.depth, key=lineage.depth.__getitem__),
        }  # fmt: skip

    def summary(self) -> str:
        """One line saying what was found."""
        asset = self.asset.record.id if self.asset else self.digest
        owner = f" of {self.asset.record.owner}" if self.asset else ""
        if self.status == "ok":
            return f"OK: {self.path} matches active asset {asset}{owner}"
        if self.status in ("revoked", "deprecated"):
            return f"{self.status.upper()}: {self.path} matches asset {asset}{owner}, which is {self.status}"
        if self.status == "modified":
            detail = f" ({self.diff.describe()})" if self.diff else ""
            return f"MODIFIED: {self.path} differs from asset {self.expected}{detail}"
        return f"UNKNOWN: no asset is registered with the digest of {self.path} ({self.digest})"
