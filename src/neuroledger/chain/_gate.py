"""The embedded node's gate: anvil in a network namespace of its own, reached only through here.

anvil has no access control: whoever reaches its JSON-RPC can sign with its
unlocked development accounts (``eth_sendTransaction``), impersonate any address
(``anvil_impersonateAccount``), rewrite storage (``anvil_setStorageAt``) or move
the clock (``evm_*``). The gate closes that door:

1. it binds the home's stable loopback port in the host's network namespace;
2. it moves itself into a new network namespace (a user namespace too when not
   root), brings its loopback up and starts anvil there, so anvil's own port
   exists only inside; anvil dies with the gate (parent-death signal);
3. it forwards JSON-RPC from its port to anvil: every method for a request that
   carries the home's credential (``Authorization: Bearer``, the 0600 file
   ``chain/credential``), and for anyone else only the standard read methods,
   filters and ``eth_sendRawTransaction`` (a transaction the sender signed);
4. it mines: anvil runs with ``--no-mining`` and the gate mines what a request
   sent right after forwarding it (or, with a block time, one block every so many
   seconds, as a real network does), under one lock with every other state change
   and with ``anvil_dumpState``. A saved state is therefore never taken while a
   block is half mined (anvil's own automine could leave storage ahead of the
   block list in a dump), and a transaction the node accepted is always mined.

Run by :class:`neuroledger.chain.node.EmbeddedNode` as
``python -I .../chain/_gate.py SPEC.json`` (by file: it imports no more than it needs).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import hmac
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

if not __package__:  # run as a script: import the package this file belongs to
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from neuroledger._fs import atomic_write
from neuroledger._json import loads_bounded
from neuroledger.chain._anvil import ANVIL_HISTORY_ARGS
from neuroledger.chain._journal import (
    JournalWriter,
    encode_state,
    read_journal,
    replay,
)
from neuroledger.chain._rpc import RPCConnection
from neuroledger.errors import GateError, NodeRPCError, NodeStateCorruptError

__all__ = ["PUBLIC_METHODS", "is_public"]

#: What a party without the home's credential may call: the standard Ethereum JSON-RPC
#: read methods, filters, and raw (already signed) transactions. Nothing that signs with
#: the node's accounts, impersonates, mines, moves time or edits state.
PUBLIC_METHODS = frozenset({
    "eth_blockNumber", "eth_call", "eth_chainId", "eth_estimateGas", "eth_feeHistory",
    "eth_gasPrice", "eth_getBalance", "eth_getBlockByHash", "eth_getBlockByNumber",
    "eth_getBlockReceipts", "eth_getBlockTransactionCountByHash",
    "eth_getBlockTransactionCountByNumber", "eth_getCode", "eth_getFilterChanges",
    "eth_getFilterLogs", "eth_getLogs", "eth_getProof", "eth_getStorageAt",
    "eth_getTransactionByBlockHashAndIndex", "eth_getTransactionByBlockNumberAndIndex",
    "eth_getTransactionByHash", "eth_getTransactionCount", "eth_getTransactionReceipt",
    "eth_getUncleByBlockHashAndIndex", "eth_getUncleByBlockNumberAndIndex",
    "eth_getUncleCountByBlockHash", "eth_getUncleCountByBlockNumber",
    "eth_maxPriorityFeePerGas", "eth_blobBaseFee", "eth_newBlockFilter", "eth_newFilter",
    "eth_newPendingTransactionFilter", "eth_uninstallFilter", "eth_sendRawTransaction",
    "eth_syncing", "eth_protocolVersion", "eth_createAccessList",
    "net_version", "net_listening", "net_peerCount", "web3_clientVersion", "web3_sha3",
})  # fmt: skip

#: Methods that send transactions: the gate mines after forwarding them.
SEND_METHODS = frozenset({"eth_sendRawTransaction", "eth_sendTransaction",
                          "eth_sendUnsignedTransaction"})  # fmt: skip

#: Methods that mine: the blocks they make are journaled, not the calls.
MINING_METHODS = frozenset({"evm_mine", "anvil_mine", "evm_mine_detailed", "anvil_mine_detailed"})

#: Methods that would let anvil mine behind the gate's back (and outside its journal).
REFUSED_METHODS = frozenset({"evm_setAutomine", "anvil_setAutomine", "evm_setIntervalMining",
                             "anvil_setIntervalMining"})  # fmt: skip

#: State changes the journal replays as they were made (each is deterministic).
REPLAYED_METHODS = frozenset({
    "anvil_setBalance", "anvil_addBalance", "anvil_setCode", "anvil_setNonce",
    "anvil_setStorageAt", "anvil_impersonateAccount", "anvil_stopImpersonatingAccount",
    "anvil_autoImpersonateAccount", "evm_increaseTime", "evm_setNextBlockTimestamp",
    "evm_setTime", "anvil_setTime", "anvil_increaseTime", "anvil_setNextBlockTimestamp",
    "anvil_setNextBlockBaseFeePerGas", "anvil_setBlockGasLimit", "evm_setBlockGasLimit",
    "anvil_setCoinbase", "anvil_setMinGasPrice", "anvil_setBlockTimestampInterval",
    "anvil_removeBlockTimestampInterval", "anvil_setLoggingEnabled", "anvil_setErc20Allowance",
})  # fmt: skip

#: anvil_/evm_ methods that change nothing the journal needs.
UNJOURNALED_METHODS = frozenset({"anvil_dumpState", "anvil_nodeInfo", "anvil_metadata",
                                 "anvil_getAutomine", "anvil_getIntervalMining",
                                 "evm_snapshot", "anvil_snapshot"})  # fmt: skip
# Any other anvil_/evm_ method (evm_revert, anvil_reorg, anvil_rollback, anvil_loadState,
# anvil_reset, anvil_dropTransaction, ...) is followed by a snapshot: the journal does not
# replay what it cannot reproduce exactly.

#: A snapshot is taken when the journal since the last one reaches this many bytes, or this
#: fraction of the last snapshot's size, whichever is larger: the durable cost of a write
#: stays a constant on average, and a replay after a crash is bounded by the state's size.
SNAPSHOT_MIN_BYTES = 8 * 1024 * 1024
SNAPSHOT_RATIO = 0.5

MAX_BODY = 32 * 1024 * 1024
_INNER_PORT = 8545
_CLONE_NEWUSER, _CLONE_NEWNET = 0x10000000, 0x40000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_PR_SET_PDEATHSIG = 1


def is_public(method: object) -> bool:
    """Whether ``method`` may be called without the home's credential."""
    return isinstance(method, str) and method in PUBLIC_METHODS


def _isolate() -> str | None:
    """Enter a new network namespace with its loopback up; return why not, or None."""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    flags = _CLONE_NEWNET if os.geteuid() == 0 else _CLONE_NEWNET | _CLONE_NEWUSER
    if libc.unshare(flags) != 0:
        return f"unshare: {os.strerror(ctypes.get_errno())}"
    try:
        if flags & _CLONE_NEWUSER:
            Path("/proc/self/setgroups").write_text("deny")
            Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
            Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            request = struct.pack("16sH14x", b"lo", 0)
            current = struct.unpack("16sH14x", fcntl.ioctl(s, _SIOCGIFFLAGS, request))[1]
            fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", current | _IFF_UP))
    except OSError as exc:
        return f"loopback in the namespace: {exc}"
    return None


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _changes_state(method: object) -> bool:
    return isinstance(method, str) and (
        method in SEND_METHODS or method.startswith(("anvil_", "evm_"))
    )


def _error(id_: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "error": {"code": code, "message": message}}


_DENIED = (
    "{method} is not available without the home's node credential: only standard eth_/net_/"
    "web3_ methods and eth_sendRawTransaction are public"
)


_DEV_SENDER = (
    "transactions signed by the node's development accounts (whose keys are public) are "
    "accepted only with the home's node credential"
)


_NEVER = (
    "{method} is refused by the embedded node's gate: the gate mines every block itself, "
    "so that each one is journaled"
)


class GateJournal:
    """Where the gate keeps the chain durable: the journal and the snapshot file."""

    def __init__(self, writer: JournalWriter, state_path: Path, state_bytes: int) -> None:
        self.writer = writer
        self.state_path = state_path
        self.state_bytes = state_bytes  # size of the last snapshot
        self.error: str | None = None  # why a record could not be written (until a snapshot)

    def append(self, *records: dict[str, Any]) -> None:
        """Append ``records``; after a failed write nothing more goes into that segment (a cut
        line may only end a segment), and syncs fail until a snapshot holds everything."""
        if self.error is not None:
            return
        try:
            self.writer.append(*records)
        except OSError as exc:
            self.error = f"the chain journal could not be written ({exc})"

    def wants_snapshot(self) -> bool:
        """Whether the journal has grown enough since the last snapshot."""
        limit = max(SNAPSHOT_MIN_BYTES, int(SNAPSHOT_RATIO * self.state_bytes))
        return self.error is not None or self.writer.written >= limit


class Gate:
    """The ASGI app that checks and forwards JSON-RPC requests, mines, and journals."""

    def __init__(
        self,
        upstream: str,
        credential: bytes,
        block_time: float = 0.0,
        journal: GateJournal | None = None,
        head: int = 0,
        pending: dict[str, str] | None = None,
    ) -> None:
        self.upstream = upstream
        self.block_time = block_time
        self.expected = b"Bearer " + credential
        self.client: httpx.AsyncClient | None = None
        self.write_lock = asyncio.Lock()
        self.sync_lock = asyncio.Lock()  # one fsync at a time (others wait and share it)
        self.snapshot_lock = asyncio.Lock()
        self.dev_accounts: set[str] | None = None
        self.journal = journal
        self.head = head  # the last block journaled
        self.pending: dict[str, str] = dict(pending or {})  # tx hash -> raw, not yet mined
        self.needs_snapshot = False  # a change the journal cannot replay was made
        self._background: set[asyncio.Task[Any]] = set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    # TCP_NODELAY: without it, Nagle and delayed ACKs cost ~40 ms a request.
                    transport = httpx.AsyncHTTPTransport(
                        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
                        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
                    )
                    self.client = httpx.AsyncClient(
                        base_url=self.upstream, timeout=300.0, transport=transport
                    )
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    for task in list(self._background):
                        with contextlib.suppress(BaseException):
                            await task
                    if self.client is not None:
                        await self.client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        status, body = await self._handle(scope, receive)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope: dict[str, Any], receive: Any) -> tuple[int, bytes]:
        if scope["method"] != "POST":
            return 405, json.dumps(_error(None, -32600, "send JSON-RPC with POST")).encode()
        authorized = any(
            name == b"authorization" and hmac.compare_digest(value, self.expected)
            for name, value in scope["headers"]
        )
        raw = bytearray()
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if len(raw) > MAX_BODY:
                return 413, json.dumps(_error(None, -32600, "request too large")).encode()
            if not message.get("more_body"):
                break
        try:
            payload = loads_bounded(bytes(raw), max_bytes=MAX_BODY, max_depth=16)
        except ValueError as exc:
            return 400, json.dumps(_error(None, -32700, f"parse error: {exc}")).encode()
        batch = isinstance(payload, list)
        calls = payload if batch else [payload]
        if not calls or not all(isinstance(c, dict) for c in calls):
            return 400, json.dumps(_error(None, -32600, "invalid request")).encode()
        if authorized and not batch and str(payload.get("method", "")).startswith("neuroledger_"):
            return 200, json.dumps(await self._own_method(payload)).encode()
        allowed: list[dict[str, Any]] = []
        refused: dict[int, dict[str, Any]] = {}
        for c in calls:
            why = self._never(c) or (None if authorized else await self._refusal(c))
            if why is None:
                allowed.append(c)
            else:
                refused[id(c)] = _error(c.get("id"), -32601, why)
        if not refused:
            return await self._forward_allowed(bytes(raw), allowed)
        if not allowed:
            replies: list[Any] = []
        else:
            status, body = await self._forward_allowed(
                json.dumps(allowed if batch else allowed[0]).encode(), allowed
            )
            if status != 200:
                return status, body
            answer = json.loads(body)
            replies = answer if isinstance(answer, list) else [answer]
        by_id = {json.dumps(r.get("id")): r for r in replies if isinstance(r, dict)}
        merged = [refused.get(id(c)) or by_id.get(json.dumps(c.get("id"))) for c in calls]
        result = [m for m in merged if m is not None]
        return 200, json.dumps(result if batch else result[0]).encode()

    @staticmethod
    def _never(call: dict[str, Any]) -> str | None:
        """Why nobody, not even the home, may make ``call`` (None: it may be allowed)."""
        method = call.get("method")
        if method in REFUSED_METHODS:
            return _NEVER.format(method=method)
        if isinstance(method, str) and method.startswith("neuroledger_"):
            return f"{method[:64]} is the gate's own method: call it alone, with the credential"
        return None

    async def _refusal(self, call: dict[str, Any]) -> str | None:
        """Why a caller without the credential may not make ``call`` (None: it may)."""
        method = call.get("method")
        if not is_public(method):
            return _DENIED.format(method=str(method)[:64])
        if method == "eth_sendRawTransaction" and await self._from_dev_account(call):
            # anvil's development keys are published: signing with one is no proof of anything.
            return _DEV_SENDER
        return None

    async def _from_dev_account(self, call: dict[str, Any]) -> bool:
        params = call.get("params")
        if not isinstance(params, list) or not params or not isinstance(params[0], str):
            return False  # malformed: the node refuses it
        try:
            from eth_account import Account

            sender = str(Account.recover_transaction(params[0])).lower()
        except Exception:  # not a transaction we can read: the node refuses it
            return False
        return sender in await self._dev_accounts()

    async def _dev_accounts(self) -> set[str]:
        if self.dev_accounts is None:
            try:
                accounts = await self._rpc("eth_accounts", []) or []
            except GateError:
                return set()  # asked again next time
            self.dev_accounts = {str(a).lower() for a in accounts}
        return self.dev_accounts

    # -- the gate's own methods ------------------------------------------------------------
    async def _own_method(self, call: dict[str, Any]) -> dict[str, Any]:
        method, params = call.get("method"), call.get("params") or []
        try:
            if method == "neuroledger_sync":
                require = params[0] if params and isinstance(params[0], list) else []
                result: Any = await self.sync([str(h) for h in require][:10_000])
            elif method == "neuroledger_snapshot":
                result = await self.snapshot()
            else:
                return _error(call.get("id"), -32601, f"no gate method {str(method)[:64]}")
        except (GateError, OSError) as exc:
            return _error(call.get("id"), -32000, str(exc))
        return {"jsonrpc": "2.0", "id": call.get("id"), "result": result}

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

    # -- forwarding, mining, journaling ----------------------------------------------------
    async def _forward_allowed(self, body: bytes, calls: list[dict[str, Any]]
                               ) -> tuple[int, bytes]:  # fmt: skip
        """Forward; requests that change state go one at a time, are journaled, and sends
        are mined."""
        if not any(_changes_state(c.get("method")) for c in calls):
            return await self._forward(body)
        async with self.write_lock:
            status, result = await self._forward(body)
            if status == 200:
                try:
                    await self._after_change(calls, result)
                except GateError as exc:  # the change is made; a snapshot will hold it
                    print(f"neuroledger gate: {exc}", file=sys.stderr, flush=True)
                    self._barrier(f"journaling failed: {exc}")
            if self.needs_snapshot and self.journal is not None:
                await self._snapshot_under_lock()
        self._consider_snapshot()
        return status, result

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
            elif method not in UNJOURNALED_METHODS and _changes_state(method):
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
            return 502, json.dumps(_error(None, -32603, f"node unavailable: {exc}")).encode()
        return response.status_code, response.content


def _wait_anvil(url: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            reply = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
                               timeout=1.0)  # fmt: skip
            if reply.status_code == 200:
                return True
        time.sleep(0.05)
    return False


def _recover(spec: dict[str, Any], upstream: str
             ) -> tuple[GateJournal | None, int, dict[str, str], int]:  # fmt: skip
    """Replay the journal the loaded snapshot does not hold; open the next segment.

    Returns the journal, the head block, the transactions still pending and how many
    records were replayed."""
    connection = RPCConnection(upstream, timeout=300.0)
    try:
        if not spec.get("journal_dir"):
            return None, int(connection.call("eth_blockNumber", []), 16), {}, 0
        directory = Path(spec["journal_dir"])
        first = int(spec.get("journal_from") or 0)
        records, numbers = read_journal(directory, first)
        progress_path = Path(spec["progress"]) if spec.get("progress") else None
        last_report = 0.0

        def progress(done: int, total: int) -> None:
            nonlocal last_report
            if progress_path is not None and time.monotonic() - last_report > 0.5:
                last_report = time.monotonic()
                progress_path.write_text(json.dumps({"done": done, "total": total}))

        result = replay(records, connection.call, connection.batch,
                        progress=progress if records else None)  # fmt: skip
        written = 0
        for number in numbers:  # what the previous gate wrote may not be on disk yet
            path = directory / f"{number:012d}.log"
            with open(path, "rb") as f:
                os.fsync(f.fileno())
            written += path.stat().st_size
        writer = JournalWriter(directory, max([first, *numbers]) + 1 if numbers else first)
        writer.written = written
        if result.pending:
            writer.append(*({"p": raw, "h": h} for h, raw in result.pending.items()))
        state_path = Path(spec["state_path"])
        state_bytes = state_path.stat().st_size if state_path.exists() else 0
        head = int(connection.call("eth_blockNumber", []), 16)
        return GateJournal(writer, state_path, state_bytes), head, result.pending, len(records)
    finally:
        connection.close()


def main(spec_path: str) -> int:
    """Bind, isolate, start anvil, serve; return the exit code."""
    import uvicorn

    spec = json.loads(Path(spec_path).read_text())
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the proto
    # says TCP; without it Nagle and delayed ACKs add ~40 ms to every request.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", int(spec["port"])))
    except OSError as exc:
        print(f"neuroledger gate: cannot listen on port {spec['port']}: Address already in use "
              f"({exc})", file=sys.stderr, flush=True)  # fmt: skip
        return 98
    listener.listen(1024)
    listener.set_inheritable(False)
    why_not = _isolate()
    inner = _INNER_PORT
    if why_not is not None:  # no namespaces here: anvil on a loopback port of its own
        print(f"neuroledger gate: WARNING anvil is not isolated ({why_not}); any local process "
              "can reach its development accounts", file=sys.stderr, flush=True)  # fmt: skip
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            inner = probe.getsockname()[1]
    args = [
        spec["anvil"],
        "--host",
        "127.0.0.1",
        "--port",
        str(inner),
        "--chain-id",
        str(spec["chain_id"]),
        "--accounts",
        "10",
        "--balance",
        "1000000",
        "--quiet",  # no banner with the development keys in the log
        "--no-mining",  # the gate mines, under its write lock
        "--order",
        "fifo",  # blocks take the pool in arrival order: a replay reproduces them exactly
        *ANVIL_HISTORY_ARGS,
    ]
    if spec.get("cache_path"):
        args += ["--cache-path", spec["cache_path"]]
    if spec.get("load_state"):
        args += ["--load-state", spec["load_state"]]
    if spec.get("genesis_time") is not None:  # the genesis anvil makes is the saved one
        args += ["--timestamp", str(int(spec["genesis_time"]))]
    anvil = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=sys.stderr,
                             stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)  # fmt: skip
    upstream = f"http://127.0.0.1:{inner}"
    if not _wait_anvil(upstream, anvil, float(spec.get("timeout", 20))):
        anvil.kill()
        anvil.wait()
        print("neuroledger gate: anvil did not start", file=sys.stderr, flush=True)
        return 1
    try:
        journal, head, pending, replayed = _recover(spec, upstream)
    except (NodeStateCorruptError, OSError, NodeRPCError) as exc:
        anvil.kill()
        anvil.wait()
        Path(spec["info"]).write_text(json.dumps({"error": str(exc)}))
        print(f"neuroledger gate: {exc}", file=sys.stderr, flush=True)
        return 3
    info = {"pid": os.getpid(), "anvil_pid": anvil.pid, "isolated": why_not is None,
            "why_not_isolated": why_not, "replayed": replayed}  # fmt: skip
    Path(spec["info"]).write_text(json.dumps(info))
    credential = Path(spec["credential"]).read_bytes().strip()
    gate = Gate(upstream, credential, float(spec.get("block_time") or 0), journal, head, pending)
    config = uvicorn.Config(
        gate, log_level="warning", access_log=False, lifespan="on",
        ws="none", timeout_keep_alive=30, limit_concurrency=512, h11_max_incomplete_event_size=16384,
    )  # fmt: skip
    server = uvicorn.Server(config)

    async def watch() -> None:
        while anvil.poll() is None and not server.should_exit:
            await asyncio.sleep(0.2)
        server.should_exit = True

    async def run() -> None:
        watcher = asyncio.create_task(watch())
        miner = asyncio.create_task(gate.mine_every(gate.block_time)) if gate.block_time else None
        await server.serve(sockets=[listener])
        watcher.cancel()
        if miner is not None:
            miner.cancel()

    try:
        asyncio.run(run())
    finally:
        if anvil.poll() is None:
            anvil.terminate()
            try:
                anvil.wait(timeout=10)
            except subprocess.TimeoutExpired:
                anvil.kill()
                anvil.wait()
    return 0 if anvil.returncode in (0, -signal.SIGTERM, None) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
