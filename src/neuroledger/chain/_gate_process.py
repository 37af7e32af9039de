"""The gate process around the app: its own network namespace, death with its parent, waiting for anvil, and the recovery of the journal on start."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from neuroledger.chain._gate_journal import GateJournal
from neuroledger.chain._journal import (
    JournalWriter,
    read_journal,
    replay,
)
from neuroledger.chain._rpc import RPCConnection

__all__ = ["die_with_parent", "isolate", "recover", "wait_anvil"]


_CLONE_NEWUSER, _CLONE_NEWNET = 0x10000000, 0x40000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_PR_SET_PDEATHSIG = 1


def isolate() -> str | None:
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


def die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def wait_anvil(url: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            reply = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
                               timeout=1.0)  # fmt: skip
            if reply.status_code == 200:
                return True
        time.sleep(0.05)
    return False


def recover(spec: dict[str, Any], upstream: str
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
