"""A minimal JSON-RPC client over HTTP for node management (no web3 needed)."""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from neuroledger.errors import DiskFullError, NodeError, NodeRPCError

__all__ = ["RPCConnection", "gate_snapshot", "gate_sync", "rpc_call"]


def rpc_call(
    url: str,
    method: str,
    params: list[Any] | None = None,
    *,
    timeout: float = 5.0,
    headers: dict[str, str] | None = None,
) -> Any:
    """Call ``method`` on the JSON-RPC node at ``url`` and return its result."""
    reply = _post(url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []},
                  timeout, headers)  # fmt: skip
    if "error" in reply:
        raise NodeRPCError(str(reply["error"].get("message", reply["error"])))
    return reply["result"]


def _batch_payload(calls: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    return [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]


def _batch_results(replies: Any, count: int) -> list[Any]:
    """The results of a batch's replies in call order, or :class:`NodeRPCError` for any error."""
    if not isinstance(replies, list) or len(replies) != count:
        raise NodeRPCError(f"the node answered a batch of {count} with {replies!r:.200}")
    results = []
    for reply in sorted(replies, key=lambda r: int(r["id"])):
        if "error" in reply:
            raise NodeRPCError(str(reply["error"].get("message", reply["error"])))
        results.append(reply.get("result"))
    return results


def _post(url: str, payload: Any, timeout: float, headers: dict[str, str] | None) -> Any:
    """POST one JSON-RPC request or batch; its decoded answer, or :class:`NodeRPCError`."""
    req = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise NodeRPCError(str(exc)) from exc


class RPCConnection:
    """One kept-alive connection for many calls in a row (a replay makes tens of
    thousands): no new TCP connection per call, and no Nagle delay (TCP_NODELAY)."""

    def __init__(self, url: str, *, timeout: float = 60.0) -> None:
        parts = urllib.parse.urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def call(self, method: str, params: list[Any]) -> Any:
        """Call ``method``; return its result or raise :class:`NodeRPCError`."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        reply = self._post(body, method)
        if "error" in reply:
            raise NodeRPCError(f"{method}: {reply['error'].get('message', reply['error'])}")
        return reply.get("result")

    def _post(self, body: str, what: str) -> Any:
        try:
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout
                )
                self._conn.connect()
                assert self._conn.sock is not None
                self._conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conn.request("POST", "/", body.encode(), {"Content-Type": "application/json"})
            return json.loads(self._conn.getresponse().read())
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self.close()
            raise NodeRPCError(f"{what}: {exc}") from exc

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Several calls in one request (the node may run them in any order); their results."""
        return _batch_results(self._post(json.dumps(_batch_payload(calls)), "batch"), len(calls))

    def close(self) -> None:
        """Close the connection (the next call opens another)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def gate_sync(url: str, require: Sequence[str], *, headers: dict[str, str]) -> int:
    """Ask the gate to make every change so far durable (``neuroledger_sync``); return its
    block. ``require``: transaction hashes that must be on chain."""
    try:
        reply = rpc_call(url, "neuroledger_sync", [list(require)], timeout=120.0, headers=headers)
    except NodeRPCError as exc:
        message = str(exc)
        if "No space left" in message or "Disk quota" in message:
            raise DiskFullError(f"could not save the chain's journal: {message}") from exc
        if "were saved" in message:
            raise NodeError(message) from exc
        raise NodeError(
            f"could not save the chain state ({message}); check `neuroledger node status`"
        ) from exc
    return int(reply["block"])


def gate_snapshot(url: str, *, headers: dict[str, str]) -> int:
    """Ask the gate to save the whole state now (``neuroledger_snapshot``); return its block."""
    try:
        reply = rpc_call(url, "neuroledger_snapshot", timeout=600.0, headers=headers)
    except NodeRPCError as exc:
        raise NodeError(
            f"could not save the chain state ({exc}); check `neuroledger node status`"
        ) from exc
    return int(reply["block"])
