"""The lineage index's SQLite schema and the records it returns.

The schema is versioned: an index of another version is rebuilt from the chain.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "_DROP",
    "_SCHEMA",
    "_SCHEMA_VERSION",
    "_STATUS_NAMES",
    "AssetRecord",
    "Attestation",
    "Change",
]


#: Bumped when the tables change; an index of another version is rebuilt from the chain.
_SCHEMA_VERSION = 2


_DROP = """
DROP TABLE IF EXISTS meta; DROP TABLE IF EXISTS assets; DROP TABLE IF EXISTS parents;
DROP TABLE IF EXISTS changes; DROP TABLE IF EXISTS attestations; DROP TABLE IF EXISTS files;
"""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS assets (
    id TEXT PRIMARY KEY, digest TEXT NOT NULL, kind INTEGER NOT NULL, registrant TEXT NOT NULL,
    owner TEXT NOT NULL, status INTEGER NOT NULL,
    metadata_digest TEXT NOT NULL, metadata_uri TEXT NOT NULL, license TEXT NOT NULL,
    sender TEXT NOT NULL, block INTEGER NOT NULL, log_index INTEGER NOT NULL, tx TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS assets_block ON assets(block);
CREATE INDEX IF NOT EXISTS assets_digest ON assets(digest);
CREATE TABLE IF NOT EXISTS parents (
    child TEXT NOT NULL, parent TEXT NOT NULL, position INTEGER NOT NULL,
    block INTEGER NOT NULL, PRIMARY KEY (child, position)
);
CREATE INDEX IF NOT EXISTS parents_parent ON parents(parent);
CREATE TABLE IF NOT EXISTS changes (
    block INTEGER NOT NULL, log_index INTEGER NOT NULL, tx TEXT NOT NULL, id TEXT NOT NULL,
    type TEXT NOT NULL, owner TEXT, reason TEXT, sender TEXT NOT NULL,
    PRIMARY KEY (block, log_index)
);
CREATE INDEX IF NOT EXISTS changes_id ON changes(id);
CREATE TABLE IF NOT EXISTS attestations (
    block INTEGER NOT NULL, log_index INTEGER NOT NULL, tx TEXT NOT NULL, id TEXT NOT NULL,
    attester TEXT NOT NULL, statement_digest TEXT NOT NULL, statement_uri TEXT NOT NULL,
    sender TEXT NOT NULL, PRIMARY KEY (block, log_index)
);
CREATE INDEX IF NOT EXISTS attestations_id ON attestations(id);
CREATE TABLE IF NOT EXISTS files (
    asset TEXT NOT NULL, name TEXT NOT NULL, digest TEXT NOT NULL, model_name TEXT NOT NULL,
    PRIMARY KEY (asset, name)
);
CREATE INDEX IF NOT EXISTS files_digest ON files(digest);
CREATE INDEX IF NOT EXISTS files_model ON files(model_name);
"""


@dataclass(frozen=True)
class AssetRecord:
    """What the index knows about one asset."""

    id: str
    digest: str
    kind: str
    owner: str
    registrant: str
    status: str
    metadata_digest: str
    metadata_uri: str
    license: str
    sender: str
    block: int
    tx: str
    parents: tuple[str, ...]


@dataclass(frozen=True)
class Attestation:
    """A statement an identity made about an asset."""

    id: str
    attester: str
    statement_digest: str
    statement_uri: str
    sender: str
    block: int
    tx: str


@dataclass(frozen=True)
class Change:
    """A deprecation, revocation or transfer."""

    id: str
    type: str
    owner: str | None
    reason: str | None
    sender: str
    block: int
    tx: str


_STATUS_NAMES = {1: "active", 2: "deprecated", 3: "revoked"}
