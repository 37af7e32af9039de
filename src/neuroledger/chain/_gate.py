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

Run by :class:`neuroledger.chain._node.EmbeddedNode` as
``python -I .../chain/_gate.py SPEC.json`` (by file: it imports no more than it needs).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

if not __package__:  # run as a script: import the package this file belongs to
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from neuroledger._json import loads_bounded
from neuroledger.chain._anvil import ANVIL_HISTORY_ARGS
from neuroledger.chain._gate_durability import GateDurability
from neuroledger.chain._gate_journal import GateJournal
from neuroledger.chain._gate_policy import (
    DENIED,
    DEV_SENDER,
    NEVER,
    REFUSED_METHODS,
    changes_state,
    is_public,
    rpc_error,
)
from neuroledger.chain._gate_process import (
    die_with_parent,
    isolate,
    recover,
    wait_anvil,
)
from neuroledger.errors import GateError, NodeRPCError, NodeStateCorruptError

__all__ = ["Gate", "main"]


# Any other anvil_/evm_ method (evm_revert, anvil_reorg, anvil_rollback, anvil_loadState,
# anvil_reset, anvil_dropTransaction, ...) is followed by a snapshot: the journal does not
# replay what it cannot reproduce exactly.


MAX_BODY = 32 * 1024 * 1024
_INNER_PORT = 8545


class Gate(GateDurability):
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
        # Browsers may read the public methods from any page (the explorer's in-browser
        # checks): answer CORS preflights, and never allow the credential's header.
        cors = [(b"access-control-allow-origin", b"*")]
        if scope["method"] == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": [*cors,
                        (b"access-control-allow-methods", b"POST"),
                        (b"access-control-allow-headers", b"content-type"),
                        (b"access-control-max-age", b"600")]})  # fmt: skip
            await send({"type": "http.response.body", "body": b""})
            return
        status, body = await self._handle(scope, receive)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), *cors]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope: dict[str, Any], receive: Any) -> tuple[int, bytes]:
        if scope["method"] != "POST":
            return 405, json.dumps(rpc_error(None, -32600, "send JSON-RPC with POST")).encode()
        authorized = any(
            name == b"authorization" and hmac.compare_digest(value, self.expected)
            for name, value in scope["headers"]
        )
        raw = bytearray()
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if len(raw) > MAX_BODY:
                return 413, json.dumps(rpc_error(None, -32600, "request too large")).encode()
            if not message.get("more_body"):
                break
        try:
            payload = loads_bounded(bytes(raw), max_bytes=MAX_BODY, max_depth=16)
        except ValueError as exc:
            return 400, json.dumps(rpc_error(None, -32700, f"parse error: {exc}")).encode()
        batch = isinstance(payload, list)
        calls = payload if batch else [payload]
        if not calls or not all(isinstance(c, dict) for c in calls):
            return 400, json.dumps(rpc_error(None, -32600, "invalid request")).encode()
        if authorized and not batch and str(payload.get("method", "")).startswith("neuroledger_"):
            return 200, json.dumps(await self._own_method(payload)).encode()
        allowed: list[dict[str, Any]] = []
        refused: dict[int, dict[str, Any]] = {}
        for c in calls:
            why = self._never(c) or (None if authorized else await self._refusal(c))
            if why is None:
                allowed.append(c)
            else:
                refused[id(c)] = rpc_error(c.get("id"), -32601, why)
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
            return NEVER.format(method=method)
        if isinstance(method, str) and method.startswith("neuroledger_"):
            return f"{method[:64]} is the gate's own method: call it alone, with the credential"
        return None

    async def _refusal(self, call: dict[str, Any]) -> str | None:
        """Why a caller without the credential may not make ``call`` (None: it may)."""
        method = call.get("method")
        if not is_public(method):
            return DENIED.format(method=str(method)[:64])
        if method == "eth_sendRawTransaction" and await self._from_dev_account(call):
            # anvil's development keys are published: signing with one is no proof of anything.
            return DEV_SENDER
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
                return rpc_error(call.get("id"), -32601, f"no gate method {str(method)[:64]}")
        except (GateError, OSError) as exc:
            return rpc_error(call.get("id"), -32000, str(exc))
        return {"jsonrpc": "2.0", "id": call.get("id"), "result": result}

    # -- forwarding, mining, journaling ----------------------------------------------------
    async def _forward_allowed(self, body: bytes, calls: list[dict[str, Any]]
                               ) -> tuple[int, bytes]:  # fmt: skip
        """Forward; requests that change state go one at a time, are journaled, and sends
        are mined."""
        if not any(changes_state(c.get("method")) for c in calls):
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
    why_not = isolate()
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
                             stderr=subprocess.STDOUT, preexec_fn=die_with_parent)  # fmt: skip
    upstream = f"http://127.0.0.1:{inner}"
    if not wait_anvil(upstream, anvil, float(spec.get("timeout", 20))):
        anvil.kill()
        anvil.wait()
        print("neuroledger gate: anvil did not start", file=sys.stderr, flush=True)
        return 1
    try:
        journal, head, pending, replayed = recover(spec, upstream)
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
