"""The gate's durability half: it mines, journals every block and state change, syncs the
journal when a client asks, and snapshots the whole state when the journal has grown or
cannot replay a change. :class:`~neuroledger.chain._gate.Gate` (the request half) inherits
it and sets the attributes declared here."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import httpx

from neuroledger._fs import atomic_write
from neuroledger.chain._gate_journal import GateJournal
from neuroledger.chain._gate_policy import (
    MINING_METHODS,
    REPLAYED_METHODS,
    SEND_METHODS,
    UNJOURNALED_METHODS,
    changes_state,
    rpc_error,
)
from neuroledger.chain._journal import (
    encode_state,
)
from neuroledger.errors import GateError

__all__ = ["GateDurability"]


class GateDurability:
    """Mining, the journal, syncs and snapshots, and the calls to anvil behind the gate."""

    upstream: str
    block_time: float
    client: httpx.AsyncClient | None
    write_lock: asyncio.Lock
    sync_lock: asyncio.Lock
    snapshot_lock: asyncio.Lock
    journal: GateJournal | None
    head: int
    pending: dict[str, str]
    needs_snapshot: bool
    dev_accounts: set[str] | None
    _background: set[asyncio.Task[Any]]

    async def sync(self, require: list[str]) -> dict[str, Any]:
        """Make every change so far durable; ``require``: transactions that must be on chain.

        Costs one fsync of the journal, shared by every client that asks at the same time."""
        if require:
            receipts = await self._rpc_batch([("eth_getTransactionReceipt", [h]) for h in require])
            missing = [h for h, r in zip(require, receipts, strict=True) if not r]
            if missing:
                raise GateError(
                    f"the node restarted before {len(missing)} transaction(s) were saved "
                    f"(first: {missing[0]}); they are not on chain now: send them again"
                )
        if self.journal is None:
            return {"block": self.head}
        async with self.write_lock:  # every block mined so far is journaled once this is held
            target = self.journal.writer.appended
        if self.journal.error is not None or self.needs_snapshot:
            await self.snapshot()  # holds everything the journal cannot replay, or raises
        async with self.sync_lock:
            if self.journal.writer.synced < target:
                await asyncio.to_thread(self.journal.writer.sync)
        return {"block": self.head}

    async def snapshot(self) -> dict[str, Any]:
        """Save the whole state (``state.bin``) and start a new journal segment; the
        segments the snapshot holds are then deleted."""
        if self.journal is None:
            raise GateError("this gate keeps no journal")
        journal = self.journal
        async with self.snapshot_lock:
            async with self.write_lock:
                status, dump = await self._forward(
                    b'{"jsonrpc":"2.0","id":1,"method":"anvil_dumpState","params":[]}'
                )
                if status != 200:
                    raise GateError(f"the node did not save its state (HTTP {status})")
                head = int(await self._rpc("eth_blockNumber", []), 16)
                self.head = head
                in_pool = await self._pool_hashes()
                self.pending = {h: r for h, r in self.pending.items() if h in in_pool}
                async with self.sync_lock:
                    segment = journal.writer.rotate(
                        {"p": raw, "h": h} for h, raw in self.pending.items()
                    )
                barrier, self.needs_snapshot = self.needs_snapshot, False
            try:
                size = await asyncio.to_thread(self._write_state, dump, head, segment)
            except BaseException:
                if barrier:  # a replay stops at the mark: nothing after it is durable yet
                    journal.error = "the snapshot after a change the journal cannot replay failed"
                raise
            journal.state_bytes = size
            journal.error = None
            journal.writer.drop_before(segment)
        return {"block": head, "bytes": size, "journal": segment}

    def _write_state(self, reply: bytes, head: int, segment: int) -> int:
        """Decode a dump reply and replace the state file with it (in a worker thread)."""
        import gzip

        marker = b'"result":"0x'
        start = reply.find(marker)
        if start >= 0 and b'"error"' not in reply[:start]:
            # Sliced, not parsed: json.loads of a large dump would hold the interpreter lock
            # (and stall every request) for the whole parse.
            start += len(marker)
            payload = bytes.fromhex(reply[start : reply.index(b'"', start)].decode("ascii"))
        else:
            answer = json.loads(reply)
            if "error" in answer:
                raise GateError(f"the node did not save its state: {answer['error']}")
            payload = bytes.fromhex(str(answer["result"]).removeprefix("0x"))
        if not payload.startswith(b"\x1f\x8b"):
            payload = gzip.compress(payload, compresslevel=1)
        data = encode_state(payload, head, segment)
        atomic_write(self.journal.state_path, data)  # type: ignore[union-attr]
        return len(data)

    def _consider_snapshot(self) -> None:
        """Start a snapshot in the background when the journal has grown enough."""
        if (
            self.journal is not None
            and not self.snapshot_lock.locked()
            and (self.needs_snapshot or self.journal.wants_snapshot())
        ):
            task = asyncio.create_task(self._background_snapshot())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _background_snapshot(self) -> None:
        try:
            await self.snapshot()
        except (GateError, OSError) as exc:  # the journal still holds everything; try later
            print(f"neuroledger gate: snapshot failed: {exc}", file=sys.stderr, flush=True)

    async def _snapshot_under_lock(self) -> None:
        """A change the journal cannot replay: snapshot before anything else changes. The
        write lock is released for the snapshot to take it again; a writer that slips in
        between is journaled as usual, and the snapshot holds it too."""
        self.write_lock.release()
        try:
            await self.snapshot()
        except (GateError, OSError) as exc:
            if self.journal is not None:
                self.journal.error = f"the state could not be saved after a reorganisation ({exc})"
        finally:
            await self.write_lock.acquire()

    async def _after_change(self, calls: list[dict[str, Any]], body: bytes) -> None:
        """Journal what ``calls`` changed (their replies are in ``body``), and mine sends."""
        try:
            answer = json.loads(body)
        except ValueError:
            return
        replies = {json.dumps(r.get("id")): r for r in (answer if isinstance(answer, list)
                                                        else [answer]) if isinstance(r, dict)}  # fmt: skip
        sent = other = False
        for call in calls:
            method = call.get("method")
            reply = replies.get(json.dumps(call.get("id")))
            if not isinstance(method, str) or reply is None or "error" in reply:
                continue
            params: list[Any] = call["params"] if isinstance(call.get("params"), list) else []
            if method in SEND_METHODS:
                sent = True
                await self._journal_send(method, params, reply.get("result"))
            elif method in MINING_METHODS:
                other = True
            elif method in REPLAYED_METHODS:
                self._append({"q": method, "a": params})
            elif method not in UNJOURNALED_METHODS and changes_state(method):
                other = True
                self._barrier(method)
        if sent and not self.block_time:
            await self._mine_pending()
        if other:
            await self._journal_new_blocks()

    async def _journal_send(self, method: str, params: list[Any], tx_hash: Any) -> None:
        if not isinstance(tx_hash, str):
            return
        raw = params[0] if method == "eth_sendRawTransaction" and params else None
        if method == "eth_sendTransaction" and params and isinstance(params[0], dict):
            sender = str(params[0].get("from", "")).lower()
            if sender in await self._dev_accounts():  # signed with a real key: replayable
                raw = await self._rpc("eth_getRawTransactionByHash", [tx_hash])
        if isinstance(raw, str):  # else (impersonated): its block is followed by a snapshot
            self.pending[tx_hash] = raw
            self._append({"p": raw, "h": tx_hash})

    def _barrier(self, reason: str) -> None:
        """The chain changed in a way the journal cannot replay: mark the place (a replay
        stops there) and snapshot before any sync reports a later change as durable."""
        if not self.needs_snapshot:
            self._append({"z": reason})
            self.needs_snapshot = True

    def _append(self, *records: dict[str, Any]) -> None:
        if self.journal is not None:
            self.journal.append(*records)

    async def mine_every(self, seconds: float) -> None:
        """A block every ``seconds``, empty or not, as a real network makes them (under the
        write lock, so that a state dump never sees a block half mined)."""
        while True:
            await asyncio.sleep(seconds)
            async with self.write_lock:
                try:
                    await self._rpc("evm_mine", [])
                    await self._journal_new_blocks()
                except GateError as exc:  # the node will answer again: keep the clock going
                    print(f"neuroledger gate: mining failed: {exc}", file=sys.stderr, flush=True)
                    self._barrier(f"mining failed: {exc}")
            self._consider_snapshot()

    async def _mine_pending(self) -> None:
        """Mine blocks until the pool holds no transaction that is ready to be mined."""
        for _ in range(1000):
            status = await self._rpc("txpool_status", [])
            ready = int(str((status or {}).get("pending", "0x0")), 16)
            if ready == 0:
                return
            await self._rpc("evm_mine", [])
            if await self._journal_new_blocks() >= ready:
                return  # the block took everything that was ready

    async def _journal_new_blocks(self) -> int:
        """Journal the blocks mined since the last one journaled; return their transactions."""
        head = int(await self._rpc("eth_blockNumber", []), 16)
        if head < self.head:  # the chain went back (revert, reorg): a snapshot follows
            self.head = head
            self._barrier("the chain went back")
            return 0
        count = 0
        for number in range(self.head + 1, head + 1):
            block = await self._rpc("eth_getBlockByNumber", [hex(number), True])
            txs = block.get("transactions") or []
            hashes = [str(tx["hash"]) for tx in txs]
            record = {"b": number, "h": block["hash"], "t": int(block["timestamp"], 16),
                      "f": block.get("baseFeePerGas") or "0x0", "x": hashes,
                      "s": len({str(tx.get("from", "")).lower() for tx in txs}),
                      "w": round(time.time(), 3)}  # fmt: skip
            unknown = [h for h in hashes if self.pending.pop(h, None) is None]
            if unknown:
                self._barrier(f"block {number} holds a transaction the journal does not")
            self._append(record)
            count += len(hashes)
        self.head = head
        return count

    async def _pool_hashes(self) -> set[str]:
        content = await self._rpc("txpool_content", []) or {}
        found = set()
        for part in ("pending", "queued"):
            for by_nonce in (content.get(part) or {}).values():
                for tx in by_nonce.values():
                    if isinstance(tx, dict) and "hash" in tx:
                        found.add(str(tx["hash"]))
        return found

    async def _rpc(self, method: str, params: list[Any]) -> Any:
        status, body = await self._forward(
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
        )
        reply = json.loads(body) if status == 200 else {}
        if "error" in reply or status != 200:
            raise GateError(f"{method}: {reply.get('error') or f'HTTP {status}'}")
        return reply.get("result")

    async def _rpc_batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                   for i, (m, p) in enumerate(calls)]  # fmt: skip
        status, body = await self._forward(json.dumps(payload).encode())
        if status != 200:
            raise GateError(f"the node answered HTTP {status}")
        replies = sorted(json.loads(body), key=lambda r: int(r.get("id", 0)))
        return [r.get("result") for r in replies]

    async def _forward(self, body: bytes) -> tuple[int, bytes]:
        assert self.client is not None
        try:
            response = await self.client.post(
                "/", content=body, headers={"content-type": "application/json"}
            )
        except httpx.HTTPError as exc:
            return 502, json.dumps(rpc_error(None, -32603, f"node unavailable: {exc}")).encode()
        return response.status_code, response.content

    async def _dev_accounts(self) -> set[str]:
        if self.dev_accounts is None:
            try:
                accounts = await self._rpc("eth_accounts", []) or []
            except GateError:
                return set()  # asked again next time
            self.dev_accounts = {str(a).lower() for a in accounts}
        return self.dev_accounts
