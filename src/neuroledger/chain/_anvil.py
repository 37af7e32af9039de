"""Anvil processes: finding the binary, free ports, liveness checks, readiness, throw-away development nodes, and the genesis of a saved state."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from neuroledger.chain._rpc import rpc_call
from neuroledger.errors import (
    NodeError,
    NodeRPCError,
)

START_TIMEOUT = 20.0

__all__ = [
    "ANVIL_HISTORY_ARGS",
    "_dev_anvil_cache",
    "_free_port",
    "_is_our_anvil",
    "_one_genesis",
    "_pid_alive",
    "_port_free",
    "find_anvil",
    "start_dev_anvil",
    "wait_for_rpc",
]


def find_anvil(explicit: Path | None = None) -> Path:
    """Locate the anvil binary: an explicit path, the virtualenv's bin, then PATH."""
    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(explicit)
    candidates.append(Path(sys.executable).parent / "anvil")
    which = shutil.which("anvil")
    if which:
        candidates.append(Path(which))
    for cand in candidates:
        if cand.is_file() and os.access(cand, os.X_OK):
            return cand
    raise NodeError(
        "anvil is not installed; run `make demo` or `make test` (they install it with npm), "
        "or point NEUROLEDGER_ANVIL at an anvil binary"
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        with contextlib.suppress(OSError, IndexError):
            # A zombie (state Z) is dead but not yet reaped by its parent.
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _is_our_anvil(pid: int, spec: str) -> bool:
    """Whether ``pid`` is the gate started with spec file ``spec``."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return _pid_alive(pid)
    try:
        args = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    return any(a.endswith(b"_gate.py") for a in args) and spec.encode() in args


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the gate binds: connections of a previous run in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    """A free loopback port below the kernel's ephemeral range, where no outgoing
    connection can take it between now and the node's start (a home keeps its port)."""
    low = 32768
    with contextlib.suppress(OSError, ValueError, IndexError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(max(1024, low // 3), low)
        if _port_free(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_rpc(url: str, proc: subprocess.Popen[bytes], *, timeout: float) -> int | None:
    """Poll ``url`` until a node answers; return its chain id, or None if ``proc`` exits first
    or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            return int(rpc_call(url, "eth_chainId", timeout=1.0), 16)
        except NodeRPCError:
            time.sleep(0.05)
    return None


#: anvil keeps the states of this many recent blocks in memory and writes none to disk. By
#: default it spills older states to a directory under ~/.foundry that a killed anvil never
#: removes and that grows with the square of the chain's length (8 GB after 100,000 blocks
#: here). Nothing in NeuroLedger reads state deeper than a reorg or a confirmation depth.
ANVIL_HISTORY_ARGS = ("--prune-history", "256")


_dev_cache: Path | None = None


def _dev_anvil_cache() -> Path:
    """A directory for the temporary state directories of dev anvils, removed when this
    process exits: anvil makes one (under ~/.foundry by default) for a reorg even when it
    keeps no state on disk, and a killed anvil leaves it behind."""
    global _dev_cache
    if _dev_cache is None:
        import atexit
        import tempfile

        _dev_cache = Path(tempfile.mkdtemp(prefix="neuroledger-anvil-"))
        atexit.register(shutil.rmtree, _dev_cache, True)
    return _dev_cache


def start_dev_anvil(
    *extra: str, chain_id: int = 31337, port: int | None = None, anvil_path: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a bare anvil on loopback (no NeuroLedger state): an "external" chain for tests
    and benchmarks. The caller owns the process and kills it."""
    port = port if port is not None else _free_port()
    proc = subprocess.Popen(
        [str(find_anvil(anvil_path)), "--host", "127.0.0.1", "--port", str(port),
         "--chain-id", str(chain_id), *ANVIL_HISTORY_ARGS,
         "--cache-path", str(_dev_anvil_cache()), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    if wait_for_rpc(url, proc, timeout=START_TIMEOUT) is None:
        proc.kill()
        proc.wait()
        raise NodeError(f"anvil did not start on port {port}")
    return proc, url


def _one_genesis(state_json: bytes) -> tuple[bytes, int | None]:
    """The saved state with one block 0, and that block's timestamp.

    anvil makes a genesis block of its own (stamped with the start time) before it
    loads a state, and a later dump holds both; the next load would then take either
    as block 0. The oldest is the chain's: the others are dropped, and anvil is started
    with that genesis time, so that the genesis it makes is the same block."""
    state = json.loads(state_json)
    blocks = state.get("blocks") if isinstance(state, dict) else None
    if not isinstance(blocks, list):
        return state_json, None
    genesis = [b for b in blocks if int(b["header"]["number"], 16) == 0]
    if not genesis:
        return state_json, None
    first = min(int(b["header"]["timestamp"], 16) for b in genesis)
    if len(genesis) > 1:
        state["blocks"] = [
            b for b in blocks
            if int(b["header"]["number"], 16) != 0 or int(b["header"]["timestamp"], 16) == first
        ]  # fmt: skip
        state_json = json.dumps(state).encode()
    return state_json, first
