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
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neuroledger._fs import atomic_write, file_lock
from neuroledger.chain._anvil import (
    START_TIMEOUT,
    _free_port,
    _is_our_anvil,
    _one_genesis,
    _pid_alive,
    _port_free,
    find_anvil,
    wait_for_rpc,
)
from neuroledger.chain._journal import decode_state, read_journal
from neuroledger.chain._node_status import NodeStatus, node_status
from neuroledger.chain._rpc import gate_snapshot, gate_sync
from neuroledger.config import EMBEDDED_CHAIN_ID
from neuroledger.errors import (
    NodeError,
    NodeLockedError,
    NodeStateCorruptError,
    PortInUseError,
)

__all__ = ["EmbeddedNode", "NodeStatus"]


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
        return node_status(self)

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
            "timeout": START_TIMEOUT,
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
        deadline = time.monotonic() + START_TIMEOUT
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
        return gate_sync(url or self._url(), require, headers=self.auth_headers())

    def _snapshot(self, url: str) -> int:
        """Ask the gate to save the whole state now; return the block it holds."""
        return gate_snapshot(url, headers=self.auth_headers())
