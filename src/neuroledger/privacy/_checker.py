"""The gateway's grant checks: read from the chain at a named block, cached for a bounded
number of blocks, and dropped when events touch them or a reorganisation replaces the
block they were read at."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, cast

from eth_abi.abi import decode as abi_decode
from hexbytes import HexBytes
from web3 import Web3

from neuroledger.errors import ChainError
from neuroledger.privacy._grants import purpose_bytes
from neuroledger.privacy._limits import GatewayConfig
from neuroledger.privacy._service import PrivateData

__all__ = ["AccessChecker"]

_VERIKEY = b"veriKey".ljust(32, b"\0")
#: ERC-1056 keys delegates by keccak256(delegateType).
_VERIKEY_SLOT = Web3.keccak(_VERIKEY)


@dataclass(frozen=True)
class _Entry:
    """A cached check: its value, the block it was read at, until when it holds, and the
    monotonic time of the read."""

    value: bool
    block: int
    block_hash: bytes
    until: int
    read_at: float


class AccessChecker:
    """Grant and controller checks against the chain, cached for a bounded number of blocks."""

    def __init__(self, data: PrivateData, config: GatewayConfig, *, owner: str = "") -> None:
        self.data = data
        self.config = config
        self.owner = owner.lower()  # the gateway serves only assets this identity owns on chain
        self.w3 = data.chain.w3
        latest = self.w3.eth.get_block("latest")
        self.head = int(latest["number"])
        self.head_hash = bytes(latest["hash"])
        self.head_time = int(latest["timestamp"])
        self._head_seen = time.monotonic()
        self._grants: dict[tuple[str, str, int, str], _Entry] = {}
        self._controllers: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()
        self._did = data.chain.contract("DIDRegistry")
        self._watched = [
            data.grants.address,
            data.provenance.registry.address,
            self.w3.to_checksum_address(self._did.address),
        ]
        self._last_ok = time.monotonic()
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="gateway-poller", daemon=True)
        self._poller.start()

    def close(self) -> None:
        """Stop the poller."""
        self._stop.set()
        self._poller.join(timeout=5)

    def _fresh(self, entry: _Entry) -> bool:
        return (
            self.head - entry.block < self.config.cache_blocks
            and time.monotonic() - entry.read_at < self.config.cache_seconds
            and self._unexpired(entry.until)
        )

    @property
    def stale(self) -> bool:
        """True when the chain has not been read successfully for ``stale_after`` seconds."""
        return time.monotonic() - self._last_ok > self.config.stale_after

    def _drop_cache(self) -> None:
        with self._lock:
            self._grants.clear()
            self._controllers.clear()

    def now(self) -> float:
        """The later of this machine's clock and the chain's, run forward from the last block
        seen: a chain that mines only on transactions keeps its block time while idle."""
        chain_now = self.head_time + (time.monotonic() - self._head_seen)
        return max(time.time(), chain_now)

    def _unexpired(self, expiry: int) -> bool:
        return self.now() < expiry

    def _poll(self) -> None:
        while not self._stop.wait(self.config.poll_interval):
            try:
                self.poll_once()
            except Exception:  # the chain cannot be read: fail closed until it can
                self._drop_cache()

    def poll_once(self) -> None:
        """Follow the chain from the last head seen: drop what its new events touch, and
        everything when the last head seen is no longer on the chain."""
        latest = self.w3.eth.get_block("latest")
        head, head_hash = int(latest["number"]), bytes(latest["hash"])
        # The block last seen must still be on the chain: a node restarted from an older
        # state, or a reorganisation (same height, other blocks), forgets it all, since
        # entries read from dropped blocks may hold grants that are gone.
        if head == self.head:
            replaced = head_hash != self.head_hash
        else:
            seen = self.w3.eth.get_block(self.head) if head > self.head else None
            replaced = seen is None or bytes(seen["hash"]) != self.head_hash
        if replaced:
            self._drop_cache()
            if head <= self.head:
                self.head, self.head_hash = head, head_hash
                self.head_time, self._head_seen = int(latest["timestamp"]), time.monotonic()
        self._last_ok = time.monotonic()
        if head <= self.head:
            return
        logs = self.w3.eth.get_logs(
            {"address": self._watched, "fromBlock": self.head + 1, "toBlock": head}
        )
        self.head_time, self._head_seen = int(latest["timestamp"]), time.monotonic()
        touched = set()
        for log in logs:
            for topic in log["topics"][1:3]:
                raw = bytes(topic)
                touched.add(raw[-20:].hex() if raw[:12] == bytes(12) else raw.hex())
        # A read may run ahead of the poller (at a block above the last head seen). If a
        # reorganisation replaced that block, its logs show nothing: only its hash tells.
        canonical = self._hashes_above(self.head, head, head_hash)

        def on_chain(entry: _Entry) -> bool:
            if entry.block <= self.head or entry.block > head:
                return True  # below: the head check covers it; above: checked next time
            return canonical.get(entry.block) == entry.block_hash  # unknown height: re-read

        with self._lock:
            self._grants = {k: v for k, v in self._grants.items()
                            if k[0] not in touched and k[1][2:].lower() not in touched
                            and on_chain(v)}  # fmt: skip
            self._controllers = {k: v for k, v in self._controllers.items()
                                 if k[0][2:].lower() not in touched and on_chain(v)}  # fmt: skip
            self.head, self.head_hash = head, head_hash

    def _hashes_above(self, seen: int, head: int, head_hash: bytes) -> dict[int, bytes]:
        """The chain's block hash at each height in (seen, head] that an entry was read at."""
        with self._lock:
            entries = [*self._grants.values(), *self._controllers.values()]
        hashes = {head: head_hash}
        for number in {e.block for e in entries if seen < e.block < head}:
            hashes[number] = bytes(self.w3.eth.get_block(number)["hash"])
        return hashes

    def read(self, asset: str, identity: str, mode: int, purpose: str, signer: str
             ) -> tuple[bool, bool]:  # fmt: skip
        """(signer controls identity, a grant covers the use), read from the chain and cached.

        The five reads (identity owner, delegate, ``hasAccess``, ``grantOf``, ``assetOf``)
        go in one JSON-RPC batch (web3's ``batch_requests``): one round trip, not five.
        """
        to = self.w3.to_checksum_address
        grants = self.data.grants
        asset_b = bytes.fromhex(asset)
        reads = [
            (self._did, "identityOwner", [to(identity)], ["address"]),
            (self._did, "delegates", [to(identity), _VERIKEY_SLOT, to(signer)], ["uint256"]),
            (grants.contract, "hasAccess", [asset_b, to(identity), mode, purpose_bytes(purpose)], ["bool"]),
            (grants.contract, "grantOf", [asset_b, to(identity), purpose_bytes(purpose)], ["uint8", "uint64", "address"]),
            (self.data.provenance.registry.contract, "assetOf", [asset_b], ["address", "uint8", "uint8"]),
        ]  # fmt: skip
        # Read at one named block, so that the entry can be checked against the chain later.
        # (By its hash, with eth_call: a contract function's call() would turn the hash back
        # into a number, which a reorganisation can give to another block.)
        at = self.w3.eth.get_block("latest")
        block, block_hash = int(at["number"]), HexBytes(at["hash"])
        try:
            with self.w3.batch_requests() as batch:
                for c, fn, args, _ in reads:
                    tx: Any = {"to": c.address, "data": c.encode_abi(fn, args=args)}
                    batch.add(self.w3.eth.call(tx, block_identifier=block_hash))
                replies = batch.execute()
            values = [
                abi_decode(types, bytes(cast(HexBytes, reply)))
                for (*_, types), reply in zip(reads, replies, strict=True)
            ]
        except Exception as exc:  # an error reply, a reorganised block, a lost node
            raise ChainError(f"the chain refused the access check: {exc}") from None
        # Both clocks: the chain's (in hasAccess, and head_time) and this machine's, because
        # a chain that mines only on transactions keeps an old block time while idle.
        owner = str(values[0][0])
        delegate_until = int(values[1][0])
        is_owner = owner.lower() == signer.lower() and int(owner, 16) != 0
        controls_until = 2**63 if is_owner else delegate_until
        controls = self._unexpired(controls_until)
        expiry = int(values[3][1])
        # Someone else's asset (a squatted digest, say) is never served here, whatever grant
        # its on-chain owner wrote.
        ours = not self.owner or str(values[4][0]).lower() == self.owner
        granted = bool(values[2][0]) and self._unexpired(expiry) and ours
        now = time.monotonic()
        self._last_ok = now
        key = (asset, identity.lower(), mode, purpose)
        with self._lock:
            self._controllers[(identity.lower(), signer.lower())] = _Entry(
                controls, block, bytes(block_hash), controls_until, now
            )
            self._grants[key] = _Entry(granted, block, bytes(block_hash), expiry, now)
        return controls, granted

    def cached(
        self, asset: str, identity: str, mode: int, purpose: str, signer: str
    ) -> tuple[bool, bool] | None:
        """The cached (controls, granted) for a request, or None when the chain must be read."""
        with self._lock:
            control = self._controllers.get((identity.lower(), signer.lower()))
            grant = self._grants.get((asset, identity.lower(), mode, purpose))
        if control is None or grant is None or self.stale:
            return None
        if not (self._fresh(control) and self._fresh(grant)):
            return None
        return control.value, grant.value
