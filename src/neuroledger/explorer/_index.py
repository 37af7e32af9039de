"""The explorer's index: every NeuroLedger contract's events in one SQLite file.

It follows the chain as the lineage index does: blocks at least ``confirmations`` deep are
final, the rest are re-read on every sync; each chunk of blocks is committed with the
index's position, so a crash loses at most the chunk in progress and the next sync resumes;
a reorganisation below the final block (deeper than the confirmation depth) is refused with
a rebuild hint, and another chain history at the same address (a reset dev node) rebuilds
the index by itself. It is read-only towards the chain: it reads logs and block headers.

One ``eth_getLogs`` per chunk covers every suite contract; block times come in one JSON-RPC
batch per chunk.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.exceptions import BlockNotFound
from web3.types import RPCEndpoint

from neuroledger.errors import ChainError, IndexReorgError
from neuroledger.explorer._documents import DOCUMENT_SCHEMA, Reader, learn_documents
from neuroledger.explorer._entities import ENTITY_SCHEMA, apply_entities
from neuroledger.explorer._events import DecodedEvent, EventCatalog

__all__ = ["ExplorerIndex"]

_SCHEMA_VERSION = "5"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    block INTEGER NOT NULL, log_index INTEGER NOT NULL, tx TEXT NOT NULL,
    time INTEGER NOT NULL, contract TEXT NOT NULL, name TEXT NOT NULL,
    address TEXT NOT NULL, args TEXT NOT NULL,
    PRIMARY KEY (block, log_index)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_kind ON events (contract, name, block, log_index);
CREATE INDEX IF NOT EXISTS events_tx ON events (tx);
CREATE INDEX IF NOT EXISTS events_time ON events (time);
CREATE INDEX IF NOT EXISTS events_name ON events (name);
"""
_CHUNK_BLOCKS = 5000


def _hash_of(w3: Web3, block: int) -> str | None:
    try:
        found = w3.eth.get_block(block)
    except BlockNotFound:
        return None
    return None if found is None else bytes(found["hash"]).hex()


class ExplorerIndex:
    """Events of the suite's contracts on one chain, in an SQLite file."""

    def __init__(self, path: Path, *, chain_id: int, catalog: EventCatalog,
                 start_block: int = 0, documents: Reader | None = None) -> None:  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.catalog = catalog
        self.start_block = start_block
        self.chain_id = chain_id
        self.documents = documents  # the home's store, for round documents (None: none)
        self.db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self._scope = json.dumps({"chain": chain_id, "contracts": sorted(catalog.addresses),
                                  "schema": _SCHEMA_VERSION, "documents": documents is not None})  # fmt: skip
        with self.db:
            self.db.executescript(_SCHEMA + ENTITY_SCHEMA + DOCUMENT_SCHEMA)
            if self.meta("scope") != self._scope:
                self._clear()
                self.set_meta("scope", self._scope)

    # -- position --------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        """A value the index keeps about itself (its position, scope, bill), or None."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _clear(self) -> None:
        for table in (
            "events",
            "meta",
            "entities",
            "entity_events",
            "edges",
            "search",
            "search_keys",
            "round_docs",
        ):
            self.db.execute(f"DELETE FROM {table}")
        self.db.execute("DROP TABLE IF EXISTS energy")  # the bill restarts with the events

    @property
    def final_block(self) -> int:
        value = self.meta("final_block")
        return int(value) if value is not None else self.start_block - 1

    def rebuild(self) -> None:
        """Forget everything; the next sync reads from the deployment block."""
        with self.db:
            self._clear()
            self.set_meta("scope", self._scope)

    # -- sync ------------------------------------------------------------------------
    def sync(self, w3: Web3, *, confirmations: int = 0,
             progress: Callable[[int, int], None] | None = None,
             chunk_blocks: int = _CHUNK_BLOCKS) -> int:  # fmt: skip
        """Read new events up to the chain head; return how many were stored."""
        genesis = _hash_of(w3, 0)
        if genesis is not None and self.meta("genesis") not in (None, genesis):
            self.rebuild()  # another chain history at this chain id: the index was a cache
        with self.db:
            self.set_meta("genesis", genesis or "")
        final = self.final_block
        if final >= self.start_block:
            recorded, actual = self.meta("final_hash"), _hash_of(w3, final)
            if actual is None or (recorded is not None and recorded != actual):
                raise IndexReorgError(
                    f"block {final}, which the explorer's index treats as final, is no longer "
                    f"on the chain (a reorg deeper than {confirmations} confirmations, or a "
                    "reset node); run `neuroledger explorer index --rebuild`"
                )
        with self.db:
            self._drop_after(final)
        head = int(w3.eth.block_number)
        addresses = list(self.catalog.addresses)
        stored, start = 0, final + 1
        while start <= head:
            end = min(start + chunk_blocks - 1, head)
            raw = w3.provider.make_request(
                RPCEndpoint("eth_getLogs"),
                [{"address": addresses, "fromBlock": hex(start), "toBlock": hex(end)}],
            )
            if "error" in raw:
                raise ChainError(f"reading events of blocks {start}-{end} failed: "
                                         f"{raw['error']}")  # fmt: skip
            events = [e for e in (self.catalog.decode(log) for log in raw["result"]) if e]
            times = _block_times(w3, sorted({e.block for e in events}))
            new_final = min(end, head - confirmations)
            with self.db:
                self._store(events, times)
                if new_final > final:
                    self.set_meta("final_block", str(new_final))
                    self.set_meta("final_hash", _hash_of(w3, new_final) or "")
                    final = new_final
                self.set_meta("synced_block", str(end))
            stored += len(events)
            if progress is not None:
                progress(end - self.start_block + 1, head - self.start_block + 1)
            start = end + 1
        return stored

    def _store(self, events: Iterable[DecodedEvent], times: dict[int, int]) -> None:
        events = list(events)
        self.db.executemany(
            "INSERT OR REPLACE INTO events VALUES (?,?,?,?,?,?,?,?)",
            [(e.block, e.log_index, e.tx, times[e.block], e.contract, e.name, e.address,
              json.dumps(e.args, separators=(",", ":"))) for e in events],
        )  # fmt: skip
        for e in events:
            apply_entities(self.db, e, times[e.block])
        if self.documents is not None:
            learn_documents(self.db, events, self.documents)

    def _drop_after(self, block: int) -> None:
        """Forget events above ``block`` (not final: they are read again) and rebuild the
        entities they touched from the events that remain."""
        touched = self.db.execute(
            "SELECT DISTINCT kind, key FROM entity_events WHERE block > ?", (block,)
        ).fetchall()
        self.db.execute("DELETE FROM events WHERE block > ?", (block,))
        self.db.execute("DELETE FROM entity_events WHERE block > ?", (block,))
        self.db.execute("DELETE FROM edges WHERE block > ?", (block,))
        self.db.execute("DELETE FROM round_docs WHERE block > ?", (block,))
        for kind, key in touched:
            rows = self.db.execute(
                "SELECT e.block, e.log_index, e.tx, e.time, e.contract, e.name, e.address, e.args "
                "FROM entity_events x JOIN events e ON e.block = x.block AND e.log_index = x.log_index "
                "WHERE x.kind = ? AND x.key = ? ORDER BY e.block, e.log_index",
                (kind, key),
            ).fetchall()
            self.db.execute("DELETE FROM entities WHERE kind = ? AND key = ?", (kind, key))
            self.db.execute("DELETE FROM search WHERE rowid = (SELECT rowid FROM search_keys "
                            "WHERE kind = ? AND key = ?)", (kind, key))  # fmt: skip
            self.db.execute("DELETE FROM entity_events WHERE kind = ? AND key = ?", (kind, key))
            for b, i, tx, t, contract, name, address, args in rows:
                event = DecodedEvent(block=b, log_index=i, tx=tx, block_hash="", address=address,
                                     contract=contract, name=name, args=json.loads(args))  # fmt: skip
                apply_entities(self.db, event, t)

    # -- reading ---------------------------------------------------------------------
    def count(self, contract: str | None = None, name: str | None = None) -> int:
        """How many events are indexed, of one contract and event name if given."""
        sql, params = "SELECT COUNT(*) FROM events WHERE 1=1", list[Any]()
        if contract:
            sql, params = sql + " AND contract = ?", [*params, contract]
        if name:
            sql, params = sql + " AND name = ?", [*params, name]
        return int(self.db.execute(sql, params).fetchone()[0])

    def events(self, *, contract: str | None = None, name: str | None = None,
               after: tuple[int, int] | None = None, limit: int = 100) -> list[dict[str, Any]]:  # fmt: skip
        """Events oldest first, of one contract and name if given, after a (block, log index)."""
        sql = (
            "SELECT block, log_index, tx, time, contract, name, address, args FROM events WHERE 1=1"
        )
        params: list[Any] = []
        if contract:
            sql, params = sql + " AND contract = ?", [*params, contract]
        if name:
            sql, params = sql + " AND name = ?", [*params, name]
        if after is not None:
            sql, params = sql + " AND (block, log_index) > (?, ?)", [*params, *after]
        sql += " ORDER BY block, log_index LIMIT ?"
        rows = self.db.execute(sql, [*params, limit]).fetchall()
        keys = ("block", "log_index", "tx", "time", "contract", "name", "address")
        return [{**dict(zip(keys, r[:7], strict=True)), "args": json.loads(r[7])} for r in rows]

    def entities(self, kind: str, *, owner: str | None = None, status: str | None = None,
                 after: str | None = None, since: int | None = None, until: int | None = None,
                 tag: str | None = None,
                 limit: int = 100) -> list[dict[str, Any]]:  # fmt: skip
        """Entities of one kind, oldest first, filtered, after a key of the same kind."""
        sql = ("SELECT kind, key, owner, title, status, first_block, last_block, time, data "
               "FROM entities WHERE kind = ?")  # fmt: skip
        params: list[Any] = [kind]
        for clause, value in (("owner = ?", owner.lower() if owner else None), ("status = ?", status),
                              ("time >= ?", since), ("time <= ?", until)):  # fmt: skip
            if value is not None:
                sql, params = f"{sql} AND {clause}", [*params, value]
        if tag is not None:
            sql += " AND EXISTS (SELECT 1 FROM json_each(entities.data, '$.tags') WHERE value = ?)"
            params.append(tag)
        if after is not None:
            sql += " AND (first_block, key) > (SELECT first_block, key FROM entities WHERE kind = ? AND key = ?)"
            params += [kind, after.lower()]
        sql += " ORDER BY first_block, key LIMIT ?"
        return [_entity(r) for r in self.db.execute(sql, [*params, limit]).fetchall()]

    def entity(self, kind: str, key: str) -> dict[str, Any] | None:
        """One entity with every event about it, oldest first (a hex key may lack its 0x)."""
        key = key.lower()
        if len(key) in (40, 64) and all(c in "0123456789abcdef" for c in key):
            key = "0x" + key
        row = self.db.execute(
            "SELECT kind, key, owner, title, status, first_block, last_block, time, data "
            "FROM entities WHERE kind = ? AND key = ?",
            (kind, key.lower()),
        ).fetchone()
        if row is None:
            return None
        history = self.db.execute(
            "SELECT e.block, e.log_index, e.tx, e.time, e.contract, e.name, e.address, e.args "
            "FROM entity_events x JOIN events e ON e.block = x.block AND e.log_index = x.log_index "
            "WHERE x.kind = ? AND x.key = ? ORDER BY e.block, e.log_index",
            (kind, key.lower()),
        ).fetchall()
        keys = ("block", "log_index", "tx", "time", "contract", "name", "address")
        return {**_entity(row), "events": [{**dict(zip(keys, r[:7], strict=True)),
                                            "args": json.loads(r[7])} for r in history]}  # fmt: skip

    def owned(self, owner: str, *, limit: int = 200) -> list[dict[str, Any]]:
        """Entities whose owner is ``owner`` (an identity's assets, logs, tasks, agents...)."""
        rows = self.db.execute(
            "SELECT kind, key, owner, title, status, first_block, last_block, time, data "
            "FROM entities WHERE owner = ? ORDER BY kind, first_block LIMIT ?",
            (owner.lower(), limit),
        ).fetchall()
        return [_entity(r) for r in rows]

    def search(self, text: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """Entities whose words match ``text`` (each word a prefix), best first."""
        words = [w for w in "".join(c if c.isalnum() else " " for c in text).split() if w][:8]
        if not words:
            return []
        query = " ".join(f'"{w}"*' for w in words)
        rows = self.db.execute(
            "SELECT kind, key FROM search WHERE words MATCH ? ORDER BY rank LIMIT ?", (query, limit)
        ).fetchall()
        found = [self.db.execute(
            "SELECT kind, key, owner, title, status, first_block, last_block, time, data "
            "FROM entities WHERE kind = ? AND key = ?", (k, key)).fetchone() for k, key in rows]  # fmt: skip
        return [_entity(r) for r in found if r is not None]

    def close(self) -> None:
        self.db.close()


def _block_times(w3: Web3, blocks: list[int], batch: int = 500) -> dict[int, int]:
    """Timestamps of ``blocks``, in JSON-RPC batches."""
    times: dict[int, int] = {}
    provider: Any = w3.provider
    for i in range(0, len(blocks), batch):
        part = blocks[i : i + batch]
        answers = provider.make_batch_request(
            [(RPCEndpoint("eth_getBlockByNumber"), [hex(b), False]) for b in part]
        )
        if isinstance(answers, dict):  # the node refused the batch as a whole
            raise ChainError(f"reading block times failed: {answers.get('error')}")
        for number, answer in zip(part, answers, strict=True):
            result = answer.get("result") if isinstance(answer, dict) else None
            if not result:
                raise ChainError(f"block {number} has no header on the node")
            times[number] = int(result["timestamp"], 16)
    return times


def _entity(row: tuple[Any, ...]) -> dict[str, Any]:
    keys = ("kind", "key", "owner", "title", "status", "first_block", "last_block", "time")
    return {**dict(zip(keys, row[:8], strict=True)), "data": json.loads(row[8])}
