"""A minimal JSON-RPC client over HTTP for node management (no web3 needed)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

__all__ = ["RPCFailure", "rpc_batch", "rpc_call"]


class RPCFailure(Exception):
    """Raised when the node cannot be reached or answers with an error."""


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
        raise RPCFailure(str(reply["error"].get("message", reply["error"])))
    return reply["result"]


def rpc_batch(
    url: str,
    calls: list[tuple[str, list[Any]]],
    *,
    timeout: float = 5.0,
    headers: dict[str, str] | None = None,
) -> list[Any]:
    """Call several methods in one JSON-RPC batch; return their results in order."""
    payload = [
        {"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)
    ]
    replies = _post(url, payload, timeout, headers)
    if not isinstance(replies, list) or len(replies) != len(calls):
        raise RPCFailure(f"the node answered a batch of {len(calls)} with {replies!r:.200}")
    results = []
    for reply in sorted(replies, key=lambda r: int(r["id"])):
        if "error" in reply:
            raise RPCFailure(str(reply["error"].get("message", reply["error"])))
        results.append(reply["result"])
    return results


def _post(url: str, payload: Any, timeout: float, headers: dict[str, str] | None) -> Any:
    """POST one JSON-RPC request or batch; its decoded answer, or :class:`RPCFailure`."""
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
        raise RPCFailure(str(exc)) from exc
