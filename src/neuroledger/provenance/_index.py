"""The local lineage index: registry events in SQLite, reorg-safe and resumable.

Blocks at least ``confirmations`` deep are final; the rest are re-read on
every sync. Each chunk of blocks is committed with the index's position, so a
crash mid-sync loses at most the chunk in progress and the next sync resumes.
If the chain reorganised below the final block (deeper than the confirmation
depth), :class:`~neuroledger.errors.IndexReorgError` says to rebuild.

Lineage queries (ancestors, descendants, paths) are recursive SQL over the
``parents`` table and never touch the chain.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.exceptions import BlockNotFound
from web3.types import RPCEndpoint

from neuroledger.errors import AssetNotFoundError, IndexReorgError, ProvenanceError
from neuroledger.provenance import _lineage_queries as _q
from neuroledger.provenance._index_schema import (
    _DROP,
    _SCHEMA,
    _SCHEMA_VERSION,
    _STATUS_NAMES,
    AssetRecord,
    Attestation,
    Change,
)
from neuroledger.provenance._registry import AssetEvent, decode_log, kind_name

__all__ = ["AssetRecord", "Attestation", "Change", "LineageIndex"]

_CHUNK_BLOCKS = 2000


def _hash_of(w3: Web3, block: int) -> str | None:
    """The hash of ``block`` (lowercase hex, no 0x), or None when the chain has no such block."""
    try:
        found = w3.eth.get_block(block)
    except BlockNotFound:
        return None
    return None if found is None else bytes(found["hash"]).hex()


class LineageIndex:
    """Registry events of one contract on one chain, in an SQLite file."""

    def __init__(self, path: Path, *, chain_id: int, contract: str, start_block: int = 0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # A federated run registers rounds from its ledger thread while the main thread
        # waits; the connection is used by one thread at a time (SQLite serialises anyway).
        self.db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        if self.db.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_VERSION:
            # An index written by an older NeuroLedger: it is only a cache of chain events.
            self.db.executescript(_DROP)
            self.db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        self.db.executescript(_SCHEMA)
        self.start_block = start_block
        scope = self._scope = f"{chain_id}:{contract.lower()}"
        stored = self._meta("scope")
        if stored is not None and stored != scope:
            # Another chain or another deployment: the index restarts from scratch.
            self._clear()
        with self.db:
            self._set_meta("scope", scope)

    # -- meta ------------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _clear(self) -> None:
        with self.db:
            for table in ("meta", "assets", "parents", "changes", "attestations", "files"):
                self.db.execute(f"DELETE FROM {table}")

    @property
    def final_block(self) -> int:
        """Highest block the index treats as final (-1 before the first sync)."""
        value = self._meta("final_block")
        return int(value) if value is not None else self.start_block - 1

    @property
    def synced_block(self) -> int:
        """Highest block read so far."""
        value = self._meta("synced_block")
        return int(value) if value is not None else self.final_block

    def rebuild(self) -> None:
        """Forget everything; the next sync reads the chain from the deployment block."""
        self._clear()

    # -- sync ------------------------------------------------------------------------
    def sync(
        self,
        w3: Web3,
        address: str,
        *,
        confirmations: int = 0,
        progress: Callable[[int, int], None] | None = None,
        chunk_blocks: int = _CHUNK_BLOCKS,
    ) -> int:
        """Read new registry events up to the chain head; return how many were applied."""
        genesis = _hash_of(w3, 0)
        if genesis is not None and self._meta("genesis") not in (None, genesis):
            # Another chain history (a reset node, a replaced dev chain) at the same chain id
            # and address: the index is a cache of the old one; it rebuilds itself.
            self._clear()
            with self.db:
                self._set_meta("scope", self._scope)
        with self.db:
            self._set_meta("genesis", genesis or "")
        final = self.final_block
        if final >= self.start_block:
            recorded = self._meta("final_hash")
            actual = _hash_of(w3, final)
            if actual is None:
                raise IndexReorgError(
                    f"the index was built on another chain history: block {final}, which it "
                    "treats as final, is not on the chain (was the node reset or restored "
                    "from an older state?); run `neuroledger asset index --rebuild`"
                )
            if recorded is not None and recorded.removeprefix("0x") != actual:
                raise IndexReorgError(
                    f"block {final} changed after the index treated it as final (a reorg deeper "
                    f"than {confirmations} confirmations); run `neuroledger asset index --rebuild`"
                    " and raise NEUROLEDGER_CONFIRMATIONS"
                )
        with self.db:
            self._drop_after(final)
        head = int(w3.eth.block_number)
        applied = 0
        start = final + 1
        while start <= head:
            end = min(start + chunk_blocks - 1, head)
            raw = w3.provider.make_request(
                RPCEndpoint("eth_getLogs"),
                [{"address": address, "fromBlock": hex(start), "toBlock": hex(end)}],
            )
            if "error" in raw:
                raise ProvenanceError(f"reading registry events failed: {raw['error']}")
            events = [e for e in (decode_log(log) for log in raw["result"]) if e is not None]
            new_final = min(end, head - confirmations)
            with self.db:
                touched = self._apply(events)
                self._recompute(touched)
                if new_final > final:
                    block_hash = w3.eth.get_block(new_final)["hash"].hex()
                    self._set_meta("final_block", str(new_final))
                    self._set_meta("final_hash", block_hash)
                    final = new_final
                self._set_meta("synced_block", str(end))
            applied += len(events)
            if progress is not None:
                progress(end - self.start_block + 1, head - self.start_block + 1)
            start = end + 1
        return applied

    def _drop_after(self, block: int) -> None:
        ids = {
            r[0]
            for r in self.db.execute(
                "SELECT id FROM changes WHERE block > ? UNION SELECT id FROM assets WHERE block > ?",
                (block, block),
            )
        }
        for table in ("assets", "parents", "changes", "attestations"):
            self.db.execute(f"DELETE FROM {table} WHERE block > ?", (block,))
        self._recompute(ids)

    def _apply(self, events: Iterable[AssetEvent]) -> set[str]:
        touched: set[str] = set()
        for e in events:
            a = e.args
            touched.add(a["id"])
            if e.name == "AssetRegistered":
                self.db.execute(
                    "INSERT OR REPLACE INTO assets VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        a["id"], a["digest"], a["kind"], a["owner"], a["owner"], 1, a["metadataDigest"],
                        a["metadataURI"], a["license"], a["sender"], e.block, e.log_index, e.tx,
                    ),
                )  # fmt: skip
                self.db.executemany(
                    "INSERT OR REPLACE INTO parents VALUES (?,?,?,?)",
                    [(a["id"], p, i, e.block) for i, p in enumerate(a["parents"])],
                )
            elif e.name == "AssetAttested":
                self.db.execute(
                    "INSERT OR REPLACE INTO attestations VALUES (?,?,?,?,?,?,?,?)",
                    (
                        e.block, e.log_index, e.tx, a["id"], a["attester"], a["statementDigest"],
                        a["statementURI"], a["sender"],
                    ),
                )  # fmt: skip
            else:
                kind = {"AssetDeprecated": "deprecated", "AssetRevoked": "revoked"}.get(
                    e.name, "transferred"
                )
                self.db.execute(
                    "INSERT OR REPLACE INTO changes VALUES (?,?,?,?,?,?,?,?)",
                    (
                        e.block, e.log_index, e.tx, a["id"], kind, a.get("newOwner"),
                        a.get("reason"), a["sender"],
                    ),
                )  # fmt: skip
        return touched

    def _recompute(self, ids: Iterable[str]) -> None:
        """Derive current owner and status from the registration and later changes."""
        for asset_id in ids:
            row = self.db.execute(
                "SELECT registrant FROM assets WHERE id = ?", (asset_id,)
            ).fetchone()
            if row is None:
                continue
            owner, status = row[0], 1
            for kind, new_owner in self.db.execute(
                "SELECT type, owner FROM changes WHERE id = ? ORDER BY block, log_index",
                (asset_id,),
            ):
                if kind == "deprecated":
                    status = 2
                elif kind == "revoked":
                    status = 3
                else:
                    owner = new_owner
            self.db.execute(
                "UPDATE assets SET owner = ?, status = ? WHERE id = ?", (owner, status, asset_id)
            )

    # -- queries ---------------------------------------------------------------------
    def resolve(self, ref: str) -> str:
        """The full id of the asset ``ref`` names (a full id or a unique prefix, 0x optional;
        or a content digest that one identity alone registered)."""
        text = ref.lower().removeprefix("0x")
        if len(text) < 4 or any(c not in "0123456789abcdef" for c in text):
            raise ProvenanceError(
                f"{ref!r} is not an asset id; give its hex digest or a unique prefix of at least "
                "4 hex digits"
            )
        rows = self.db.execute(
            "SELECT id FROM assets WHERE id >= ? AND id < ? LIMIT 3", (text, text + "g")
        ).fetchall()
        if len(rows) == 1:
            return str(rows[0][0])
        if len(rows) > 1:
            raise ProvenanceError(f"{ref!r} matches several assets; give more digits")
        if len(text) == 64:  # a content digest: an asset id only if one identity registered it
            ids = self.by_digest(text)
            if len(ids) == 1:
                return ids[0]
            if len(ids) > 1:
                raise ProvenanceError(
                    f"{len(ids)} identities registered content {text[:12]}…; give the asset id "
                    f"(one of {', '.join(i[:12] for i in ids[:5])})"
                )
        known = [r[0][: len(text)] for r in self.db.execute("SELECT id FROM assets LIMIT 5000")]
        raise AssetNotFoundError(ref, known)

    def get(self, asset_id: str) -> AssetRecord | None:
        """The record of ``asset_id``, or None."""
        row = self.db.execute(
            "SELECT id, digest, kind, owner, registrant, status, metadata_digest, metadata_uri,"
            " license, sender, block, tx FROM assets WHERE id = ?",
            (asset_id,),
        ).fetchone()
        if row is None:
            return None
        parents = tuple(
            r[0]
            for r in self.db.execute(
                "SELECT parent FROM parents WHERE child = ? ORDER BY position", (asset_id,)
            )
        )
        return AssetRecord(
            id=row[0], digest=row[1], kind=kind_name(row[2]), owner=row[3], registrant=row[4],
            status=_STATUS_NAMES[row[5]], metadata_digest=row[6], metadata_uri=row[7],
            license=row[8], sender=row[9], block=row[10], tx=row[11], parents=parents,
        )  # fmt: skip

    def by_digest(self, digest: str) -> list[str]:
        """Ids of the assets registered with content ``digest`` (any registrant), oldest first."""
        rows = self.db.execute(
            "SELECT id FROM assets WHERE digest = ? ORDER BY block, log_index",
            (digest.lower().removeprefix("0x"),),
        )
        return [str(r[0]) for r in rows]

    def all(self, *, kind: str | None = None, owner: str | None = None) -> list[AssetRecord]:
        """Every asset, oldest first, optionally of one kind or owner."""
        rows = self.db.execute("SELECT id FROM assets ORDER BY block, log_index").fetchall()
        records = [r for r in (self.get(row[0]) for row in rows) if r is not None]
        return [
            r
            for r in records
            if (kind is None or r.kind == kind)
            and (owner is None or r.owner.lower() == owner.lower())
        ]

    def ancestors(self, asset_id: str) -> dict[str, int]:
        """Every asset ``asset_id`` derives from, with its shortest distance."""
        return _q.walk(self.db, asset_id, "parent")

    def descendants(self, asset_id: str) -> dict[str, int]:
        """Every asset derived from ``asset_id``, with its shortest distance."""
        return _q.walk(self.db, asset_id, "child")

    def edges(self, ids: Iterable[str]) -> list[tuple[str, str]]:
        """(child, parent) edges among ``ids``."""
        return _q.edges(self.db, ids)

    def paths(self, descendant: str, ancestor: str, *, limit: int = 100) -> list[list[str]]:
        """Derivation paths from ``descendant`` up to ``ancestor`` (at most ``limit``)."""
        return _q.paths(self.db, descendant, ancestor, limit=limit)

    def attestations(self, asset_id: str) -> list[Attestation]:
        """Attestations about ``asset_id``, oldest first."""
        return [
            Attestation(*r)
            for r in self.db.execute(
                "SELECT id, attester, statement_digest, statement_uri, sender, block, tx "
                "FROM attestations WHERE id = ? ORDER BY block, log_index",
                (asset_id,),
            )
        ]

    def changes(self, asset_id: str) -> list[Change]:
        """Deprecations, revocations and transfers of ``asset_id``, oldest first."""
        return [
            Change(id=r[0], type=r[1], owner=r[2], reason=r[3], sender=r[4], block=r[5], tx=r[6])
            for r in self.db.execute(
                "SELECT id, type, owner, reason, sender, block, tx FROM changes WHERE id = ? "
                "ORDER BY block, log_index",
                (asset_id,),
            )
        ]

    def learn_files(self, asset_id: str, model_name: str, files: Iterable[tuple[str, str]]) -> None:
        """Remember the (name, digest) files of an asset's manifest, to explain mismatches."""
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?,?,?,?)",
                [(asset_id, name, digest, model_name) for name, digest in files],
            )

    def knows_files(self, asset_id: str) -> bool:
        """Whether the files of ``asset_id`` are known."""
        row = self.db.execute("SELECT 1 FROM files WHERE asset = ? LIMIT 1", (asset_id,)).fetchone()
        return row is not None

    def closest(self, model_name: str, files: Iterable[tuple[str, str]]) -> str | None:
        """The asset whose manifest shares the most files with ``files`` (or, failing
        that, has the same model name); None when nothing is alike."""
        return _q.closest(self.db, model_name, files)

    def count(self) -> int:
        """Number of indexed assets."""
        return int(self.db.execute("SELECT COUNT(*) FROM assets").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        """Position and size of the index."""
        return {
            "assets": self.count(),
            "final_block": self.final_block,
            "synced_block": self.synced_block,
            "path": str(self.path),
        }

    def close(self) -> None:
        """Close the database."""
        self.db.close()
