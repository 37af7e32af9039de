"""Round documents the explorer charts: a federated task's owner registers one per round
(kind ``federated-round``), with its commitments root and the accuracy, loss and privacy
spent (ε) it measured. The chain holds each document's SHA-256 (``metadataDigest`` of its
``AssetRegistered`` event); the document itself is in the home's store. The indexer reads
it from there, checked against that digest, and keeps what the charts need. Which of them
a page believes is decided when it is shown (:func:`trusted_rounds`): only a document
whose root is the one the chain recorded for that round, registered by the task's owner.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from neuroledger.explorer._events import DecodedEvent

__all__ = ["DOCUMENT_SCHEMA", "learn_documents", "trusted_rounds"]

ROUND_TYPE = "https://neuroledger.dev/federated-round/v1"
MAX_DOCUMENT = 64 * 1024

DOCUMENT_SCHEMA = """
CREATE TABLE IF NOT EXISTS round_docs (
    asset TEXT PRIMARY KEY, task TEXT NOT NULL, round INTEGER NOT NULL, registrant TEXT NOT NULL,
    block INTEGER NOT NULL, root TEXT NOT NULL, metrics TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS round_docs_task ON round_docs (task, round);
"""

#: Reads a stored blob by its SHA-256 (hex), at most ``max_size`` bytes; None if absent.
Reader = Callable[[str, int], bytes | None]


def learn_documents(db: sqlite3.Connection, events: Iterable[DecodedEvent], read: Reader) -> None:
    """Keep the round documents among ``events``' registrations (inside the caller's
    transaction); a document the store lacks, or that is not a round's, is skipped."""
    for e in events:
        if (e.contract, e.name) != ("AssetRegistry", "AssetRegistered"):
            continue
        digest = str(e.args.get("metadataDigest", "")).removeprefix("0x")
        raw = read(digest, MAX_DOCUMENT) if len(digest) == 64 else None
        if raw is None:
            continue
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("type") != ROUND_TYPE:
                continue
            metrics = doc.get("metrics") or {}
            row = (str(e.args["id"]).lower(), str(int(doc["task"])), int(doc["round"]),
                   str(e.args["owner"]).lower(), e.block, str(doc["commitmentsRoot"]).lower(),
                   json.dumps({k: float(v) for k, v in metrics.items()
                               if k in ("accuracy", "loss", "epsilon") and v is not None}))  # fmt: skip
        except (ValueError, TypeError, KeyError, AttributeError):
            continue  # not a well-formed round document: nothing to chart
        db.execute("INSERT OR REPLACE INTO round_docs VALUES (?,?,?,?,?,?,?)", row)


def trusted_rounds(db: sqlite3.Connection, task: str, owner: str,
                   roots: dict[int, str]) -> dict[int, dict[str, Any]]:  # fmt: skip
    """Per round, the metrics of the first document that the task's ``owner`` (the account
    that created it, or an identity it owns) registered with the root the chain recorded."""
    owned = {owner.lower()} | {
        k for (k,) in db.execute(
            "SELECT key FROM entities WHERE kind = 'identity' AND owner = ?", (owner.lower(),))
    }  # fmt: skip
    found: dict[int, dict[str, Any]] = {}
    for asset, r, registrant, root, metrics in db.execute(
        "SELECT asset, round, registrant, root, metrics FROM round_docs WHERE task = ? "
        "ORDER BY round, block", (task,)):  # fmt: skip
        recorded = roots.get(int(r), "").lower().removeprefix("0x")
        if r in found or registrant not in owned or root.removeprefix("0x") != recorded:
            continue
        found[int(r)] = {"asset": asset, **json.loads(metrics)}
    return found
