"""What the embedded node of a home is doing: running or not, where, and whether its saved
state (snapshot and journal) passes the check a start would make."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from neuroledger.chain._journal import decode_state, journal_segments, read_journal
from neuroledger.chain._rpc import rpc_call
from neuroledger.config import EMBEDDED_CHAIN_ID
from neuroledger.errors import NodeRPCError, NodeStateCorruptError

if TYPE_CHECKING:
    from neuroledger.chain._node import EmbeddedNode

__all__ = ["NodeStatus", "node_status"]


@dataclass(frozen=True)
class NodeStatus:
    """What is known about the embedded node of a home."""

    running: bool
    pid: int | None = None
    port: int | None = None
    url: str | None = None
    chain_id: int = EMBEDDED_CHAIN_ID
    block_number: int | None = None
    state_file: str | None = None
    state_block: int | None = None
    state_bytes: int | None = None
    state_problem: str | None = None  # why the saved state fails its check, if it does
    journal_bytes: int = 0  # changes since the snapshot, replayed by the next start
    isolated: bool | None = None  # anvil reachable only through the gate

    def to_json(self) -> dict[str, Any]:
        """Return the status as a JSON-ready dict."""
        return asdict(self)


def node_status(node: EmbeddedNode) -> NodeStatus:
    """Report whether the node runs, where, and what the last dump holds; the saved
    state is checked (header, SHA-256, decompression) as a start would check it."""
    state_block = state_bytes = None
    problem = None
    journal_from = 0
    if node.state_path.exists():
        state_bytes = node.state_path.stat().st_size
        try:
            header, _ = decode_state(node.state_path)
            state_block = int(header["block"])
            journal_from = int(header.get("journal", 0))
        except NodeStateCorruptError as exc:
            problem = str(exc)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problem = f"chain state {node.state_path} cannot be read: {exc}"
    journal_bytes = 0
    if problem is None:
        try:
            read_journal(node.journal_dir, journal_from)
        except NodeStateCorruptError as exc:
            problem = str(exc)
        for number, path in journal_segments(node.journal_dir):
            if number >= journal_from:
                with contextlib.suppress(OSError):
                    journal_bytes += path.stat().st_size
    saved = NodeStatus(
        running=False,
        chain_id=node.chain_id,
        state_file=str(node.state_path) if node.state_path.exists() else None,
        state_block=state_block,
        state_bytes=state_bytes,
        state_problem=problem,
        journal_bytes=journal_bytes,
    )
    record = node._live_record()
    if record is None:
        return saved
    url = record["url"]
    block = None
    with contextlib.suppress(NodeRPCError):
        block = int(rpc_call(url, "eth_blockNumber", timeout=2.0), 16)
    isolated = None
    with contextlib.suppress(OSError, ValueError):
        isolated = bool(json.loads((node.chain_dir / "gate.json").read_text())["isolated"])
    return dataclasses.replace(saved, running=True, isolated=isolated, pid=record["pid"],
                               port=record["port"], url=url, block_number=block)  # fmt: skip
