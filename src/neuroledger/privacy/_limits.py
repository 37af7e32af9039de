"""What bounds a gateway's requests: rate per key, nonces against replay, and the budget
of refusals logged one by one; and the gateway's settings of them all."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DenialBudget", "GatewayConfig", "NonceStore", "RateLimiter"]


@dataclass(frozen=True)
class GatewayConfig:
    """Limits and cache bounds of one gateway."""

    cache_blocks: int = 5
    cache_seconds: float = 5.0  # and never older than this, whatever the chain does
    stale_after: float = 3.0  # no successful chain read for this long: unhealthy, no cache
    poll_interval: float = 0.25
    rate: float = 200.0  # requests per second per identity
    burst: int = 400
    client_rate: float = 2000.0  # requests per second per client address, before parsing
    client_burst: int = 4000
    max_body: int = 512 * 1024
    max_window: int = 600  # the longest a signed request may stay valid, seconds
    denials_logged: int = 120  # denials logged one by one per window; the rest are counted
    denial_window: float = 60.0


class DenialBudget:
    """Bounds how fast refused requests grow the owner's audit log.

    Anyone can sign requests with fresh keys, so denials are not bounded by who
    holds a grant. The first ``per_window`` denials of each window are logged
    one by one; the others are counted (by HTTP status and client) and logged as
    one summary entry when the window is over. Allowed requests are always
    logged one by one.
    """

    def __init__(self, per_window: int, window: float) -> None:
        self.per_window = per_window
        self.window = window
        self._lock = threading.Lock()
        self._start = time.time()
        self._logged = 0
        self._suppressed: dict[int, int] = {}
        self._clients: set[str] = set()

    def admit(
        self, status: int, client: str, now: float | None = None
    ) -> tuple[bool, dict[str, Any] | None]:
        """Whether to log this denial one by one, and the summary of a window just over."""
        now = time.time() if now is None else now
        with self._lock:
            summary = self._roll(now)
            if self._logged < self.per_window:
                self._logged += 1
                return True, summary
            self._suppressed[status] = self._suppressed.get(status, 0) + 1
            if len(self._clients) < 1000:
                self._clients.add(client)
            return False, summary

    def due(self, now: float | None = None) -> dict[str, Any] | None:
        """The summary of a window that is over, if it suppressed anything."""
        with self._lock:
            return self._roll(time.time() if now is None else now)

    def _roll(self, now: float) -> dict[str, Any] | None:
        if now - self._start < self.window:
            return None
        summary = None
        if self._suppressed:
            summary = {
                "window_start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._start)),
                "window_seconds": self.window,
                "logged": self._logged,
                "suppressed": sum(self._suppressed.values()),
                "by_status": {str(k): v for k, v in sorted(self._suppressed.items())},
                "clients": len(self._clients),
            }
        self._start, self._logged = now, 0
        self._suppressed, self._clients = {}, set()
        return summary


class RateLimiter:
    """Token buckets per key: ``rate`` per second, up to ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 if a request may go now, else the seconds to wait."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


class NonceStore:
    """Nonces seen, kept on disk until their request expires, so a replay fails across restarts."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, expiry INTEGER)"
        )
        self._lock = threading.Lock()
        self._pruned = 0.0

    def use(self, nonce: str, expiry: int, identity: str = "") -> bool:
        """Record ``identity``'s ``nonce``; False if it was seen before. Nonces are per
        identity: one identity's requests can never burn another's."""
        nonce = f"{identity.lower()}:{nonce}" if identity else nonce
        with self._lock:
            now = time.time()
            if now - self._pruned > 60:
                self._db.execute("DELETE FROM nonces WHERE expiry < ?", (int(now) - 1,))
                self._pruned = now
            try:
                self._db.execute("INSERT INTO nonces VALUES (?, ?)", (nonce, expiry))
            except sqlite3.IntegrityError:
                return False
            return True

    def close(self) -> None:
        """Close the database."""
        self._db.close()
