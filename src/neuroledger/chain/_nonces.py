"""Nonces and fees: one nonce per transaction across the threads and processes of a home,
and EIP-1559 prices with floors."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from web3 import Web3

from neuroledger._fs import file_lock

__all__ = ["FeePolicy", "NonceManager"]


@dataclass(frozen=True, kw_only=True)
class FeePolicy:
    """EIP-1559 pricing: tip and max fee, each with a floor."""

    min_priority_fee: int = 1_000_000_000
    min_max_fee: int = 1_000_000_000
    base_fee_multiplier: int = 2

    def quote(self, w3: Web3) -> tuple[int, int]:
        """Return ``(max_fee_per_gas, max_priority_fee_per_gas)`` for the next block."""
        block = w3.eth.get_block("latest")
        base = int(block.get("baseFeePerGas", 0) or 0)
        try:
            tip = int(w3.eth.max_priority_fee)
        except Exception:
            tip = 0
        tip = max(tip, self.min_priority_fee)
        return max(base * self.base_fee_multiplier + tip, self.min_max_fee), tip


class NonceManager:
    """Hands out nonces per address; safe for concurrent senders in one process and, with a
    ``lock_dir``, across every process of one home.

    :meth:`claim` holds the address's lock (a thread lock, and an ``flock`` on
    ``lock_dir/<address>.lock``) while the caller signs and broadcasts: under it,
    the node's pending count is exact, since every other sender of the home
    broadcasts under the same lock. Without a ``lock_dir`` the first nonce comes
    from the node and later ones from a counter (one process only).
    """

    def __init__(self, w3: Web3, *, lock_dir: Path | None = None) -> None:
        self._w3 = w3
        self._lock_dir = lock_dir
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._next: dict[str, int] = {}

    def _pending(self, address: str) -> int:
        return int(self._w3.eth.get_transaction_count(Web3.to_checksum_address(address), "pending"))

    @contextlib.contextmanager
    def claim(self, address: str, count: int = 1) -> Iterator[int]:
        """Reserve ``count`` consecutive nonces for ``address`` and hold them for the block, in
        which the caller broadcasts; yields the first."""
        key = address.lower()
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if self._lock_dir is None:
                with self._lock:
                    first = self._next.get(key)
                    if first is None:
                        first = self._pending(address)
                    self._next[key] = first + count
                yield first
                return
            with file_lock(self._lock_dir / f"{key}.lock"):
                first = self._pending(address)
                yield first

    def resync(self, address: str) -> None:
        """Forget the counter of ``address``; the next claim asks the node."""
        with self._lock:
            self._next.pop(address.lower(), None)
