"""What the explorer's events are about: identities, assets, logs, tasks, agents, jobs,
validations, listings, sales and governance operations, kept up to date as events arrive.

Each rule maps a contract's event to the entity it concerns (its kind and key), and may
set the entity's owner, title or status. Every event of an entity is linked to it, so a
detail page lists its whole history; a full-text table (SQLite FTS5) holds each entity's
words for search. The rules read event arguments only: nothing here trusts anything but
the chain's logs.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from neuroledger.explorer._events import DecodedEvent

__all__ = ["ENTITY_SCHEMA", "KINDS", "apply_entities"]

ENTITY_SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    kind TEXT NOT NULL, key TEXT NOT NULL, owner TEXT, title TEXT, status TEXT,
    first_block INTEGER NOT NULL, last_block INTEGER NOT NULL, time INTEGER NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entities_owner ON entities (owner, kind);
CREATE INDEX IF NOT EXISTS entities_kind_time ON entities (kind, time);
CREATE TABLE IF NOT EXISTS entity_events (
    kind TEXT NOT NULL, key TEXT NOT NULL, block INTEGER NOT NULL, log_index INTEGER NOT NULL,
    PRIMARY KEY (kind, key, block, log_index)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS edges (
    parent TEXT NOT NULL, child TEXT NOT NULL, block INTEGER NOT NULL, PRIMARY KEY (parent, child)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS edges_child ON edges (child);
CREATE TABLE IF NOT EXISTS search_keys (kind TEXT NOT NULL, key TEXT NOT NULL, UNIQUE (kind, key));
CREATE VIRTUAL TABLE IF NOT EXISTS search USING fts5(kind UNINDEXED, key UNINDEXED, words);
"""

#: Entity kinds the explorer lists.
KINDS = (
    "identity",
    "asset",
    "log",
    "task",
    "agent",
    "job",
    "validation",
    "listing",
    "sale",
    "operation",
)

_ASSET_KINDS = {
    1: "dataset",
    2: "code",
    3: "model",
    4: "training-run",
    5: "evaluation",
    6: "deployment",
    7: "agent",
}


@dataclass(frozen=True)
class _Rule:
    kind: str
    key: str
    owner: str | None = None
    title: Callable[[dict[str, Any]], str] | None = None
    status: str | Callable[[dict[str, Any]], str] | None = None
    keep: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # string arguments that tag the entity (feedback tags)


def _asset_title(a: dict[str, Any]) -> str:
    return (
        f"{_ASSET_KINDS.get(int(a['kind']), 'kind ' + str(a['kind']))} {a['metadataURI']}".strip()
    )


_RULES: dict[tuple[str, str], list[_Rule]] = {
    ("DIDRegistry", "DIDOwnerChanged"): [_Rule("identity", "identity", owner="owner")],
    ("DIDRegistry", "DIDDelegateChanged"): [_Rule("identity", "identity")],
    ("DIDRegistry", "DIDAttributeChanged"): [_Rule("identity", "identity")],
    ("AssetRegistry", "AssetRegistered"): [
        _Rule(
            "asset",
            "id",
            owner="owner",
            title=_asset_title,
            status="active",
            keep=("digest", "kind", "metadataURI", "metadataDigest", "parents", "license"),
        )
    ],
    ("AssetRegistry", "AssetTransferred"): [_Rule("asset", "id", owner="newOwner")],
    ("AssetRegistry", "AssetDeprecated"): [_Rule("asset", "id", status="deprecated")],
    ("AssetRegistry", "AssetRevoked"): [_Rule("asset", "id", status="revoked")],
    ("AssetRegistry", "AssetAttested"): [_Rule("asset", "id")],
    ("AccessGrants", "AccessGranted"): [_Rule("asset", "asset")],
    ("AccessGrants", "AccessRevoked"): [_Rule("asset", "asset")],
    ("AccessGrants", "AlgorithmApproval"): [_Rule("asset", "dataset")],
    ("AuditAnchor", "Anchored"): [
        _Rule("log", "logId", owner="owner", keep=("treeSize", "rootHash"))
    ],
    ("FederatedTask", "TaskCreated"): [
        _Rule(
            "task",
            "taskId",
            owner="owner",
            status="open",
            keep=("modelAsset", "codeAsset", "rounds", "validators", "pool", "stake", "deadline"),
        )
    ],
    ("FederatedTask", "ParticipantJoined"): [_Rule("task", "taskId")],
    ("FederatedTask", "RoundRecorded"): [_Rule("task", "taskId")],
    ("FederatedTask", "RoundAttested"): [_Rule("task", "taskId")],
    ("FederatedTask", "RoundFinalized"): [_Rule("task", "taskId")],
    ("FederatedTask", "TaskFinished"): [
        _Rule("task", "taskId", status="finished", keep=("finalModelAsset",))
    ],
    ("FederatedTask", "TaskEnded"): [
        _Rule("task", "taskId", status=lambda a: f"ended ({a['status']})")
    ],
    ("FederatedTask", "RewardPaid"): [_Rule("task", "taskId")],
    ("AgentRegistry", "Registered"): [
        _Rule("agent", "agentId", owner="owner", title=lambda a: str(a["agentURI"])[:200])
    ],
    ("AgentRegistry", "URIUpdated"): [
        _Rule("agent", "agentId", title=lambda a: str(a["newURI"])[:200])
    ],
    ("ReputationRegistry", "NewFeedback"): [_Rule("agent", "agentId", tags=("tag1", "tag2"))],
    ("ReputationRegistry", "DealRecorded"): [_Rule("agent", "agentId")],
    ("JobEscrow", "JobCreated"): [
        _Rule(
            "job",
            "jobId",
            owner="client",
            status="open",
            keep=("provider", "evaluator", "expiredAt"),
        )
    ],
    ("JobEscrow", "BudgetSet"): [_Rule("job", "jobId", keep=("amount",))],
    ("JobEscrow", "JobFunded"): [_Rule("job", "jobId", status="funded")],
    ("JobEscrow", "JobSubmitted"): [
        _Rule("job", "jobId", status="submitted", keep=("deliverable",))
    ],
    ("JobEscrow", "JobCompleted"): [_Rule("job", "jobId", status="completed")],
    ("JobEscrow", "JobRejected"): [_Rule("job", "jobId", status="rejected")],
    ("JobEscrow", "JobExpired"): [_Rule("job", "jobId", status="expired")],
    ("JobEscrow", "PaymentReleased"): [_Rule("job", "jobId")],
    ("JobEscrow", "Refunded"): [_Rule("job", "jobId")],
    ("ValidationRegistry", "ValidationRequest"): [
        _Rule("validation", "requestHash", status="pending", keep=("agentId", "requestURI")),
        _Rule("agent", "agentId"),
    ],
    ("ValidationRegistry", "ValidationTerms"): [
        _Rule(
            "validation",
            "requestHash",
            owner="requester",
            keep=("jobId", "k", "n", "threshold", "fee"),
        )
    ],
    ("ValidationRegistry", "ValidationCommitted"): [_Rule("validation", "requestHash")],
    ("ValidationRegistry", "ValidationResponse"): [
        _Rule("validation", "requestHash", tags=("tag",))
    ],
    ("ValidationRegistry", "ValidationFinalized"): [
        _Rule(
            "validation",
            "requestHash",
            status=lambda a: {1: "accepted", 2: "rejected", 3: "inconclusive"}.get(
                int(a["status"]), str(a["status"])
            ),
            keep=("result", "revealed"),
        )
    ],
    ("ValidationRegistry", "ValidatorSettled"): [_Rule("validation", "requestHash")],
    ("Marketplace", "Listed"): [
        _Rule(
            "listing",
            "listingId",
            owner="seller",
            status="active",
            title=lambda a: f"asset {a['asset']}",
            keep=(
                "asset",
                "price",
                "modes",
                "purpose",
                "duration",
                "royaltyBps",
                "task",
                "license",
                "uri",
                "contributors",
                "weights",
            ),
        ),
        _Rule("asset", "asset"),
    ],
    ("Marketplace", "Delisted"): [_Rule("listing", "listingId", status="withdrawn")],
    ("Marketplace", "Sold"): [
        _Rule(
            "sale",
            "saleId",
            owner="buyer",
            status="held",
            keep=("listingId", "grantee", "price", "expiry", "releaseAt"),
        ),
        _Rule("listing", "listingId"),
    ],
    ("Marketplace", "SaleReleased"): [
        _Rule("sale", "saleId", status="released", keep=("sellerAmount", "royalty"))
    ],
    ("Marketplace", "RoyaltyPaid"): [_Rule("sale", "saleId")],
    ("Marketplace", "SaleRefunded"): [_Rule("sale", "saleId", status="refunded")],
    ("Timelock", "CallScheduled"): [
        _Rule("operation", "id", status="scheduled", keep=("target", "delay", "payload"))
    ],
    ("Timelock", "CallExecuted"): [_Rule("operation", "id", status="executed")],
    ("Timelock", "Cancelled"): [_Rule("operation", "id", status="cancelled")],
}


def apply_entities(db: sqlite3.Connection, event: DecodedEvent, time: int) -> None:
    """Update the entities ``event`` concerns (inside the caller's transaction)."""
    if (event.contract, event.name) == ("AssetRegistry", "AssetRegistered"):
        child = str(event.args["id"]).lower()
        db.executemany("INSERT OR IGNORE INTO edges VALUES (?,?,?)",
                       [(str(p).lower(), child, event.block) for p in event.args["parents"]])  # fmt: skip
    for rule in _RULES.get((event.contract, event.name), ()):
        key = str(event.args[rule.key]).lower()
        row = db.execute(
            "SELECT owner, title, status, data FROM entities WHERE kind = ? AND key = ?",
            (rule.kind, key),
        ).fetchone()
        owner, title, status, data = (
            (row[0], row[1], row[2], json.loads(row[3])) if row else (None, None, None, {})
        )
        if rule.owner:
            owner = str(event.args[rule.owner]).lower()
        if rule.title:
            title = rule.title(event.args)
        if rule.status is not None:
            status = rule.status(event.args) if callable(rule.status) else rule.status
        data.update({k: event.args[k] for k in rule.keep})
        if rule.tags:
            found = {str(event.args[t])[:32] for t in rule.tags if event.args.get(t)}
            data["tags"] = sorted(set(data.get("tags", [])) | found)
        db.execute(
            "INSERT INTO entities VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (kind, key) DO UPDATE SET "
            "owner = excluded.owner, title = excluded.title, status = excluded.status, "
            "last_block = excluded.last_block, data = excluded.data",
            (
                rule.kind,
                key,
                owner,
                title,
                status,
                event.block,
                event.block,
                time,
                json.dumps(data),
            ),
        )
        db.execute(
            "INSERT OR IGNORE INTO entity_events VALUES (?,?,?,?)",
            (rule.kind, key, event.block, event.log_index),
        )
        words = " ".join(str(x) for x in (key, owner, title, status, *data.values()) if x)
        # FTS5 finds a row fast only by rowid: each entity keeps one (search_keys)
        db.execute("INSERT OR IGNORE INTO search_keys VALUES (?, ?)", (rule.kind, key))
        (rowid,) = db.execute("SELECT rowid FROM search_keys WHERE kind = ? AND key = ?",
                              (rule.kind, key)).fetchone()  # fmt: skip
        db.execute("DELETE FROM search WHERE rowid = ?", (rowid,))
        db.execute("INSERT INTO search (rowid, kind, key, words) VALUES (?,?,?,?)",
                   (rowid, rule.kind, key, words))  # fmt: skip
