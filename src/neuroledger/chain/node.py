"""The embedded chain: an anvil node owned by one NeuroLedger home.

Lifetime: the node is a detached background process. ``neuroledger node start``
(or any command that needs a chain when no RPC URL is set) starts it; it keeps
running for the commands that follow until ``neuroledger node stop``.

Durability: anvil keeps its chain in memory; the gate in front of it
(:mod:`neuroledger.chain._gate`) journals every change it lets through
(``chain/journal/``, :mod:`neuroledger.chain._journal`). After every batch of writes
that NeuroLedger reports as confirmed, :meth:`EmbeddedNode.persist` asks the gate to
fsync the journal: a cost proportional to the batch, not to the chain's history. Now
and then (and at ``node stop``) the gate saves the whole state to ``chain/state.bin``
(temp file, fsync, rename, fsync of the directory) and deletes the journal segments
it holds. A ``kill -9`` of the node or of the client therefore loses nothing that was
reported as confirmed: the next start loads the snapshot and replays the journal,
checking that every block comes out with the hash it had. The snapshot carries a
SHA-256 in its header and each journal line a CRC; a file that fails its check is
never replaced or deleted, the node refuses to start and names the recovery.

Access: anvil runs in a network namespace of its own behind the gate
(:mod:`neuroledger.chain._gate`), which listens on the home's stable loopback
port (``chain/endpoint.json``; the same after every restart, so long-running
processes follow a restarted node). Requests that carry the home's credential
(``chain/credential``, mode 0600) may call every method; anyone else only the
standard read methods and ``eth_sendRawTransaction``.

Locking: ``chain/node.json`` records the running node (the gate's pid, port). A second
start on the same home finds the live node and reuses it; a record left by a
dead process is recovered. Start, stop and persist serialise on an ``flock``
that the kernel releases when its holder dies.

>>> from pathlib import Path
>>> node = EmbeddedNode(chain_dir=Path("/tmp/nl-doc/chain"))
>>> node.status().running
False
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from neuroledger._fs import atomic_write, file_lock
from neuroledger.chain._journal import decode_state, journal_segments, read_journal
from neuroledger.chain._rpc import rpc_call
from neuroledger.config import EMBEDDED_CHAIN_ID
from neuroledger.errors import (
    DiskFullError,
    NodeError,
    NodeLockedError,
    NodeRPCError,
    NodeStateCorruptError,
    PortInUseError,
)

__all__ = ["EmbeddedNode", "NodeStatus", "find_anvil", "start_dev_anvil", "wait_for_rpc"]

_START_TIMEOUT = 20.0


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
    if wait_for_rpc(url, proc, timeout=_START_TIMEOUT) is None:
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


class EmbeddedNode:
    """Starts, stops and persists the anvil node of one home."""

    def __init__(
        self,
        *,
        chain_dir: Path,
        anvil_path: Path | None = None,
        chain_id: int = EMBEDDED_CHAIN_ID,
        port: int | None = None,
        block_time: float = 0.0,
    ) -> None:
        self.chain_dir = chain_dir
        self.anvil_path = anvil_path
        self.chain_id = chain_id
        self.port = port
        self.block_time = block_time
        self._proc: subprocess.Popen[bytes] | None = None
        self._after_crash = False

    # -- paths ---------------------------------------------------------------------
    @property
    def record_path(self) -> Path:
        """``node.json``: pid and port of the running node (the lock record)."""
        return self.chain_dir / "node.json"

    @property
    def state_path(self) -> Path:
        """``state.bin``: the last durable state dump."""
        return self.chain_dir / "state.bin"

    @property
    def journal_dir(self) -> Path:
        """``journal/``: every change since the snapshot (see :mod:`neuroledger.chain._journal`)."""
        return self.chain_dir / "journal"

    @property
    def log_path(self) -> Path:
        """``anvil.log``: what anvil printed."""
        return self.chain_dir / "anvil.log"

    @property
    def _op_lock(self) -> Path:
        return self.chain_dir / ".lock"

    @property
    def credential_path(self) -> Path:
        """``credential``: the secret that unlocks every JSON-RPC method (mode 0600)."""
        return self.chain_dir / "credential"

    @property
    def endpoint_path(self) -> Path:
        """``endpoint.json``: the home's stable loopback port."""
        return self.chain_dir / "endpoint.json"

    def credential(self) -> str:
        """The home's node credential, created on first use."""
        self.chain_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.chain_dir, 0o700)
        try:
            return self.credential_path.read_text().strip()
        except FileNotFoundError:
            pass
        token = secrets.token_hex(32)
        with contextlib.suppress(FileExistsError):
            fd = os.open(self.credential_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(token)
                f.flush()
                os.fsync(f.fileno())
        return self.credential_path.read_text().strip()

    def auth_headers(self) -> dict[str, str]:
        """HTTP headers that authenticate this home to its node."""
        return {"Authorization": f"Bearer {self.credential()}"}

    def _stable_port(self) -> int:
        """The port this home's node listens on: chosen once, kept across restarts."""
        if self.port is not None:
            port = self.port
        else:
            try:
                port = int(json.loads(self.endpoint_path.read_text())["port"])
            except (FileNotFoundError, ValueError, KeyError, TypeError):
                port = _free_port()
        atomic_write(self.endpoint_path, json.dumps({"port": port}).encode(), mode=0o600)
        return port

    # -- status --------------------------------------------------------------------
    def _read_record(self) -> dict[str, Any] | None:
        try:
            record = json.loads(self.record_path.read_text())
        except FileNotFoundError:
            return None
        except ValueError:
            return {}
        return record if isinstance(record, dict) else {}

    def _live_record(self) -> dict[str, Any] | None:
        record = self._read_record()
        if not record:
            return None
        pid, spec = record.get("pid"), record.get("spec")
        if (
            isinstance(pid, int)
            and isinstance(spec, str)
            and _pid_alive(pid)
            and _is_our_anvil(pid, spec)
        ):
            return record
        return None

    def status(self) -> NodeStatus:
        """Report whether the node runs, where, and what the last dump holds; the saved
        state is checked (header, SHA-256, decompression) as a start would check it."""
        state_block = state_bytes = None
        problem = None
        journal_from = 0
        if self.state_path.exists():
            state_bytes = self.state_path.stat().st_size
            try:
                header, _ = decode_state(self.state_path)
                state_block = int(header["block"])
                journal_from = int(header.get("journal", 0))
            except NodeStateCorruptError as exc:
                problem = str(exc)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                problem = f"chain state {self.state_path} cannot be read: {exc}"
        journal_bytes = 0
        if problem is None:
            try:
                read_journal(self.journal_dir, journal_from)
            except NodeStateCorruptError as exc:
                problem = str(exc)
            for number, path in journal_segments(self.journal_dir):
                if number >= journal_from:
                    with contextlib.suppress(OSError):
                        journal_bytes += path.stat().st_size
        state_file = str(self.state_path) if self.state_path.exists() else None
        record = self._live_record()
        if record is None:
            return NodeStatus(
                running=False,
                chain_id=self.chain_id,
                state_file=state_file,
                state_block=state_block,
                state_bytes=state_bytes,
                state_problem=problem,
                journal_bytes=journal_bytes,
            )
        url = record["url"]
        block = None
        with contextlib.suppress(NodeRPCError):
            block = int(rpc_call(url, "eth_blockNumber", timeout=2.0), 16)
        isolated = None
        with contextlib.suppress(OSError, ValueError):
            isolated = bool(json.loads((self.chain_dir / "gate.json").read_text())["isolated"])
        return NodeStatus(
            running=True,
            isolated=isolated,
            pid=record["pid"],
            port=record["port"],
            url=url,
            chain_id=self.chain_id,
            block_number=block,
            state_file=state_file,
            state_block=state_block,
            state_bytes=state_bytes,
            state_problem=problem,
            journal_bytes=journal_bytes,
        )

    # -- start / stop ----------------------------------------------------------------
    def start(self, *, reset_state: bool = False) -> NodeStatus:
        """Start the node, or return the status of the one already running.

        ``reset_state`` moves an existing state file aside (it is never deleted)
        and starts an empty chain.
        """
        self.chain_dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self._op_lock):
            live = self._live_record()
            if live is not None:
                if reset_state:
                    raise NodeLockedError(
                        f"the node of this home runs (pid {live['pid']}); "
                        "run `neuroledger node stop` before resetting its state"
                    )
                return self.status()
            self._after_crash = self.record_path.exists()  # a record left by a dead node
            self.record_path.unlink(missing_ok=True)
            if reset_state:
                stamp = time.strftime("%Y%m%dT%H%M%S")
                if self.state_path.exists():
                    os.replace(self.state_path, self.chain_dir / f"state.{stamp}.bin.old")
                if self.journal_dir.exists():
                    os.replace(self.journal_dir, self.chain_dir / f"journal.{stamp}.old")
            load_file = None
            journal_from = 0
            genesis_time = None
            if self.state_path.exists():
                header, state_json = decode_state(self.state_path)
                journal_from = int(header.get("journal", 0))
                state_json, genesis_time = _one_genesis(state_json)
                load_file = self.chain_dir / "load-state.json"
                atomic_write(load_file, state_json)
            read_journal(self.journal_dir, journal_from)  # damage is reported before a start
            try:
                replayed = self._spawn(load_file, journal_from, genesis_time)
            finally:
                if load_file is not None:
                    load_file.unlink(missing_ok=True)
            if replayed or not self.state_path.exists():
                self._snapshot(self._url())  # the next start loads it instead of replaying
        return self.status()

    def _url(self) -> str:
        record = self._read_record() or {}
        url = record.get("url")
        if not isinstance(url, str):
            raise NodeError("the embedded node is not running; run `neuroledger node start`")
        return url

    def _spawn(self, load_file: Path | None, journal_from: int, genesis_time: int | None) -> int:
        """Start the gate (and anvil behind it); return how many journal records it replayed."""
        anvil = find_anvil(self.anvil_path)
        port = self._stable_port()
        # A node killed a moment ago may still hold it while the kernel tears it down.
        deadline = time.monotonic() + (5 if self._after_crash else 0)
        while not _port_free(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not _port_free(port):
            raise PortInUseError(
                f"port {port} on 127.0.0.1, this home's node endpoint, is in use by another "
                "program; stop that program, or choose another port with `--port` (or "
                "NEUROLEDGER_NODE_PORT): processes that follow this node must then be restarted"
            )
        self.credential()
        # anvil makes a temporary directory for old states even when it keeps none on
        # disk, and a killed anvil leaves it: keep it in the home, emptied at each start.
        cache = self.chain_dir / "anvil-tmp"
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(mode=0o700)
        spec_path = self.chain_dir / "gate.spec.json"
        info_path = self.chain_dir / "gate.json"
        info_path.unlink(missing_ok=True)
        spec = {
            "port": port,
            "anvil": str(anvil),
            "chain_id": self.chain_id,
            "load_state": str(load_file) if load_file is not None else None,
            "credential": str(self.credential_path),
            "info": str(info_path),
            "timeout": _START_TIMEOUT,
            "block_time": self.block_time,
            "journal_dir": str(self.journal_dir),
            "journal_from": journal_from,
            "state_path": str(self.state_path),
            "progress": str(self._progress_path),
            "genesis_time": genesis_time,
            "cache_path": str(cache),
        }
        atomic_write(spec_path, json.dumps(spec).encode())
        with self.log_path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-I", str(Path(__file__).with_name("_gate.py")), str(spec_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        if self._wait_ready(proc, url):
            self._proc = proc
            record = {"pid": proc.pid, "port": port, "url": url, "started": time.time(),
                      "spec": str(spec_path)}  # fmt: skip
            atomic_write(self.record_path, json.dumps(record).encode())
            return int(self._gate_info().get("replayed") or 0)
        error = self._gate_info().get("error")
        if error:
            raise NodeStateCorruptError(str(error))
        tail = self._log_tail()
        if "Address already in use" in tail:
            raise PortInUseError(
                f"the node could not listen on port {port}: it is in use; choose another with "
                "`--port` or stop the program that holds it"
            )
        raise NodeError(
            f"the node did not start (see {self.log_path}): {tail.strip().splitlines()[-1:]}"
        )

    @property
    def _progress_path(self) -> Path:
        return self.chain_dir / "recovery.json"

    def _gate_info(self) -> dict[str, Any]:
        try:
            info = json.loads((self.chain_dir / "gate.json").read_text())
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    def _wait_ready(self, proc: subprocess.Popen[bytes], url: str) -> bool:
        """Wait for the gate to answer; a replay of the journal that makes progress may
        take longer than a plain start."""
        self._progress_path.unlink(missing_ok=True)
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            chain_id = wait_for_rpc(url, proc, timeout=1.0)
            if chain_id is not None:
                self._progress_path.unlink(missing_ok=True)
                break
            with contextlib.suppress(OSError):
                if time.time() - self._progress_path.stat().st_mtime < 10:
                    deadline = max(deadline, time.monotonic() + 10)
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                return False
        if chain_id != self.chain_id:
            proc.kill()
            proc.wait()
            raise PortInUseError(
                f"another node answers on {url} (chain {chain_id}); choose another `--port`"
            )
        return True

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> bool:
        """Persist the state, then stop the node. Return False if none was running."""
        with file_lock(self._op_lock):
            record = self._live_record()
            if record is None:
                self.record_path.unlink(missing_ok=True)
                return False
            with contextlib.suppress(NodeError):
                self._snapshot(record["url"])  # the next start loads it instead of replaying
            pid = int(record["pid"])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while _pid_alive(pid) and time.monotonic() < deadline:
                if self._proc is not None and self._proc.pid == pid:
                    self._proc.poll()
                time.sleep(0.05)
            if _pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if self._proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=5)
                self._proc = None
            self.record_path.unlink(missing_ok=True)
            return True

    # -- durability --------------------------------------------------------------------
    def persist(self, url: str | None = None, *, require: Sequence[str] = ()) -> int:
        """Make every change so far durable; return the block number the node is at.

        Called after every confirmed write batch; returning means the batch survives
        a crash of the node or of this process. It costs one fsync of the gate's
        journal, shared with every client that asks at the same time. ``require``:
        transaction hashes that must be on chain: a node that was killed after mining
        them and restarted without them (their journal lines were never written)
        fails the call instead of reporting them as durable.
        """
        url = url or self._url()
        try:
            reply = rpc_call(url, "neuroledger_sync", [list(require)], timeout=120.0,
                             headers=self.auth_headers())  # fmt: skip
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

    def _snapshot(self, url: str) -> int:
        """Ask the gate to save the whole state now; return the block it holds."""
        try:
            reply = rpc_call(url, "neuroledger_snapshot", timeout=600.0,
                             headers=self.auth_headers())  # fmt: skip
        except NodeRPCError as exc:
            raise NodeError(
                f"could not save the chain state ({exc}); check `neuroledger node status`"
            ) from exc
        return int(reply["block"])
