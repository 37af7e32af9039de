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


def _load_json_module() -> Any:
    """``neuroledger._json`` by file, without importing the whole package (the gate starts
    with every embedded node, and the package's imports take a second)."""
    import importlib.util

    if __package__:  # imported as part of the package (tests, type checks)
        from neuroledger import _json

        return _json
    spec = importlib.util.spec_from_file_location(
        "_neuroledger_json", Path(__file__).resolve().parents[1] / "_json.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


loads_bounded = _load_json_module().loads_bounded

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


class Gate:
    """The ASGI app that checks and forwards JSON-RPC requests."""

    def __init__(self, upstream: str, credential: bytes, block_time: float = 0.0) -> None:
        self.upstream = upstream
        self.block_time = block_time
        self.expected = b"Bearer " + credential
        self.client: httpx.AsyncClient | None = None
        self.write_lock = asyncio.Lock()
        self.dev_accounts: set[str] | None = None

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
        allowed: list[dict[str, Any]] = []
        refused: dict[int, dict[str, Any]] = {}
        for c in calls:
            why = None if authorized else await self._refusal(c)
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
        if self.dev_accounts is None:
            self.dev_accounts = {
                str(a).lower() for a in (await self._rpc("eth_accounts", []) or [])
            }
        return sender in self.dev_accounts

    async def _forward_allowed(self, body: bytes, calls: list[dict[str, Any]]
                               ) -> tuple[int, bytes]:  # fmt: skip
        """Forward; requests that change state go one at a time, and sends are mined."""
        if not any(_changes_state(c.get("method")) for c in calls):
            return await self._forward(body)
        async with self.write_lock:
            result = await self._forward(body)
            if not self.block_time and any(c.get("method") in SEND_METHODS for c in calls):
                await self._mine_pending()
            return result

    async def mine_every(self, seconds: float) -> None:
        """A block every ``seconds``, empty or not, as a real network makes them (under the
        write lock, so that a state dump never sees a block half mined)."""
        while True:
            await asyncio.sleep(seconds)
            async with self.write_lock:
                await self._rpc("evm_mine", [])

    async def _rpc(self, method: str, params: list[Any]) -> Any:
        status, body = await self._forward(
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
        )
        reply = json.loads(body) if status == 200 else {}
        return reply.get("result")

    async def _mine_pending(self) -> None:
        """Mine blocks until the pool holds no transaction that is ready to be mined."""
        for _ in range(1000):
            status = await self._rpc("txpool_status", [])
            if not status or int(str(status.get("pending", "0x0")), 16) == 0:
                return
            await self._rpc("evm_mine", [])

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
    ]
    if spec.get("load_state"):
        args += ["--load-state", spec["load_state"]]
    anvil = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=sys.stderr,
                             stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)  # fmt: skip
    upstream = f"http://127.0.0.1:{inner}"
    if not _wait_anvil(upstream, anvil, float(spec.get("timeout", 20))):
        anvil.kill()
        anvil.wait()
        print("neuroledger gate: anvil did not start", file=sys.stderr, flush=True)
        return 1
    info = {"pid": os.getpid(), "anvil_pid": anvil.pid, "isolated": why_not is None,
            "why_not_isolated": why_not}  # fmt: skip
    Path(spec["info"]).write_text(json.dumps(info))
    credential = Path(spec["credential"]).read_bytes().strip()
    gate = Gate(upstream, credential, float(spec.get("block_time") or 0))
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
