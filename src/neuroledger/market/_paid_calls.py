"""The paid calls a server took: which payment paid which resource, and the answer it gave.

One SQLite row per payment (payer, nonce): the resource it paid for, the settlement
transaction, and once served, the response. A client that lost the answer retries with the
same payment header and gets the same answer without paying twice; the same payment on
another resource is refused. Rows outlive the authorization's validity by a day, then go.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PaidCall", "PaidCalls"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS paid_calls (
    payer TEXT NOT NULL, nonce BLOB NOT NULL, resource TEXT NOT NULL, amount TEXT NOT NULL,
    tx TEXT NOT NULL, valid_before INTEGER NOT NULL, served INTEGER NOT NULL DEFAULT 0,
    status INTEGER, body BLOB, at REAL NOT NULL,
    PRIMARY KEY (payer, nonce)
)
"""
#: How long a row is kept after its authorization expired.
_KEEP = 24 * 3600


@dataclass(frozen=True)
class PaidCall:
    payer: str
    nonce: bytes
    resource: str
    amount: int
    tx: str
    valid_before: int
    served: int
    status: int | None
    body: bytes | None


class PaidCalls:
    """The ledger of one server's paid calls (thread-safe; one connection per process)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL, not FULL: a row lost to a power cut is recovered from the chain (the
        # settler's receipt shows the payment), and a lost answer is computed again.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()
        self._db.execute("DELETE FROM paid_calls WHERE valid_before < ?", (time.time() - _KEEP,))

    def get(self, payer: str, nonce: bytes) -> PaidCall | None:
        with self._lock:
            row = self._db.execute(
                "SELECT payer, nonce, resource, amount, tx, valid_before, served, status, body "
                "FROM paid_calls WHERE payer = ? AND nonce = ?", (payer.lower(), nonce)
            ).fetchone()  # fmt: skip
        if row is None:
            return None
        return PaidCall(row[0], bytes(row[1]), row[2], int(row[3]), row[4], int(row[5]),
                        int(row[6]), row[7], None if row[8] is None else bytes(row[8]))  # fmt: skip

    def record(self, payer: str, nonce: bytes, *, resource: str, amount: int, tx: str,
               valid_before: int) -> None:  # fmt: skip
        """Record a settled payment for ``resource`` (before it is served)."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO paid_calls (payer, nonce, resource, amount, tx, "
                "valid_before, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (payer.lower(), nonce, resource, str(amount), tx, valid_before, time.time()),
            )

    def served(self, payer: str, nonce: bytes, status: int, body: bytes) -> None:
        """Keep the answer a paid call got, to give it again to a retry."""
        with self._lock:
            self._db.execute(
                "UPDATE paid_calls SET served = served + 1, status = ?, body = ? "
                "WHERE payer = ? AND nonce = ?", (status, body, payer.lower(), nonce)
            )  # fmt: skip

    def replayed(self, payer: str, nonce: bytes) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE paid_calls SET served = served + 1 WHERE payer = ? AND nonce = ?",
                (payer.lower(), nonce),
            )

    def close(self) -> None:
        self._db.close()
