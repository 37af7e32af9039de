"""Compute-to-data: run an approved algorithm on private data in an isolated process.

The algorithm is a Python file run as ``python -I ALGORITHM INPUT OUTPUT_DIR``
in a child process that, before it execs the algorithm, confines itself:

- **no network**: a new network namespace (only a loopback interface, down),
  and Landlock's TCP rules deny every bind and connect;
- **files**: Landlock lets it read the Python installation and the read-only
  copy of the input, and write only inside its output directory and a scratch
  directory; everything else (the owner's home, keys, other data) is denied;
- **limits**: address space (memory), CPU seconds, file size and open files
  by ``setrlimit``; wall time by the parent, which kills the process group;
- no new privileges, an empty environment, a fresh working directory.

After it exits, only the output files the algorithm declares (a module-level
``OUTPUTS = ["name", ...]`` literal, covered by the owner's approval of the
algorithm's digest) are released; anything else it wrote is withheld.

This needs Linux with Landlock (5.13+; TCP rules from 6.7) and unprivileged
or root network namespaces. Where either is missing, :func:`check_isolation`
says so and jobs are refused rather than run unconfined.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuroledger._fs import atomic_write
from neuroledger.errors import SandboxError
from neuroledger.privacy import _jail
from neuroledger.privacy._landlock import landlock_abi

__all__ = ["JobLimits", "SandboxResult", "check_isolation", "declared_outputs", "run_sandboxed"]


@dataclass(frozen=True)
class JobLimits:
    """Resource limits of one job."""

    memory_mb: int = 1024
    cpu_seconds: int = 60
    wall_seconds: float = 120.0
    output_mb: int = 64  # the largest single file
    disk_mb: int = 256  # all the job writes: outputs and scratch, in one tmpfs
    open_files: int = 64
    processes: int = 64


@dataclass
class SandboxResult:
    """What a sandboxed run produced."""

    status: str  # "succeeded", "failed", "killed"
    reason: str
    exit_code: int
    seconds: float
    released: dict[str, Path] = field(default_factory=dict)
    withheld: list[str] = field(default_factory=list)
    stderr_tail: str = ""


def declared_outputs(code: bytes) -> list[str]:
    """The ``OUTPUTS`` list an algorithm declares (plain file names)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError) as exc:
        raise SandboxError(
            f"the algorithm is not valid Python ({exc}); fix it and resubmit"
        ) from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "OUTPUTS" for t in node.targets
        ):
            try:
                names = ast.literal_eval(node.value)
            except ValueError:
                break
            if (
                isinstance(names, list | tuple)
                and names
                and all(isinstance(n, str) for n in names)
                and all(n and "/" not in n and n not in (".", "..") for n in names)
            ):
                return list(names)
            break
    raise SandboxError(
        'the algorithm declares no outputs; add a module-level literal such as OUTPUTS = ["summary.json"]'
    )


def check_isolation() -> None:
    """Raise :class:`SandboxError` unless this machine can confine a job.

    The probe (a child that creates a network namespace) runs until it succeeds
    once per process; a machine that could confine a job still can.
    """
    global _ISOLATION_OK
    if _ISOLATION_OK:
        return
    if not sys.platform.startswith("linux"):
        raise SandboxError("compute-to-data jobs need Linux (Landlock and network namespaces)")
    if landlock_abi() < 1:
        raise SandboxError(
            "this kernel has no Landlock (Linux 5.13+ with landlock in the lsm= list); jobs are "
            "refused rather than run unconfined"
        )
    probe = subprocess.run(
        [sys.executable, "-I", "-c", _PROBE], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        raise SandboxError(
            "cannot create the namespaces jobs run in "
            f"({probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else 'denied'}); "
            "enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)"
        )
    _ISOLATION_OK = True


_ISOLATION_OK = False


_PROBE = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
# network, mount, PID, IPC and UTS namespaces; and a user namespace when not root
flags = 0x40000000 | 0x00020000 | 0x20000000 | 0x08000000 | 0x04000000
if os.geteuid() != 0:
    flags |= 0x10000000
if libc.unshare(flags) != 0:
    raise SystemExit(os.strerror(ctypes.get_errno()))
"""


# -- the parent's side -----------------------------------------------------------------------
def _python_roots() -> list[str]:
    """What a job may read: the Python installation, its packages, and system libraries."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    roots.add(os.path.dirname(os.path.realpath(sys.executable)))
    roots.add(str(Path(__file__).resolve().parents[2]))  # where neuroledger is installed
    for entry in sys.path:
        real = os.path.realpath(entry) if entry else ""
        if real.endswith(("site-packages", "dist-packages")) and os.path.isdir(real):
            roots.add(real)
    roots.update(["/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/share/zoneinfo",
                  "/etc/ld.so.cache"])  # fmt: skip
    return sorted(roots)


def run_sandboxed(
    algorithm: Path,
    data: Path,
    *,
    outputs: Sequence[str],
    limits: JobLimits | None = None,
    release_to: Path,
    log_path: Path | None = None,
) -> SandboxResult:
    """Run ``algorithm`` on a read-only copy of ``data``; release declared outputs to ``release_to``.

    What the job prints goes to ``log_path`` (the owner's; by default ``release_to``'s
    sibling ``job.log``) and its tail to :attr:`SandboxResult.stderr_tail`; the
    result's ``reason`` is one of a few fixed categories that never quote the job.
    """
    limits = limits or JobLimits()
    check_isolation()
    log_path = log_path or release_to.parent / "job.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nl-job-") as tmp:
        root = Path(tmp)
        for sub in ("in", "code", "newroot"):
            (root / sub).mkdir()
        job_input = root / "in" / data.name
        shutil.copyfile(data, job_input)
        job_input.chmod(0o444)
        (root / "in").chmod(0o555)
        code = root / "code" / "algorithm.py"
        shutil.copyfile(algorithm, code)
        code.chmod(0o444)
        (root / "code").chmod(0o555)
        root.chmod(0o711)  # the job's uid (nobody, under root) must reach in/ and code/
        rw = root / "rw"
        spec = {
            "python": sys.executable,
            "algorithm": str(code),
            "input": str(job_input),
            "newroot": str(root / "newroot"),
            "rw": str(rw),
            "output": str(rw / "out"),
            "workdir": str(rw / "scratch"),
            "outputs": list(outputs),
            "read": [*_python_roots(), str(root / "in"), str(root / "code")],
            "env": {
                "PATH": "/usr/bin:/bin",
                "HOME": str(rw / "scratch"),
                "TMPDIR": str(rw / "scratch"),
                "LANG": "C.UTF-8",
                "OPENBLAS_NUM_THREADS": "1",
                "OMP_NUM_THREADS": "1",
                "MPLBACKEND": "Agg",
            },
            "memory_mb": limits.memory_mb,
            "cpu_seconds": limits.cpu_seconds,
            "wall_seconds": limits.wall_seconds,
            "output_mb": limits.output_mb,
            "disk_mb": limits.disk_mb,
            "open_files": limits.open_files,
            "processes": limits.processes + 3,  # the launcher and the namespace's init too
        }
        spec_path = root / "spec.json"
        spec_path.write_text(json.dumps(spec))
        spec_path.chmod(0o444)
        started = time.monotonic()
        with open(log_path, "wb") as log:
            os.fchmod(log.fileno(), 0o600)
            process = subprocess.Popen(
                [sys.executable, "-I", "-S", _jail.__file__, str(spec_path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            )
            try:
                stream, _ = process.communicate(timeout=limits.wall_seconds + 30)
            except subprocess.TimeoutExpired:  # the launcher itself hung: kill it, the job dies too
                os.killpg(process.pid, signal.SIGKILL)
                stream, _ = process.communicate(timeout=30)
        seconds = time.monotonic() - started
        return _outcome(stream, process.returncode, seconds, limits, release_to, log_path)


def _log_tail(path: Path) -> str:
    with open(path, "rb") as f:
        f.seek(max(0, os.fstat(f.fileno()).st_size - 4000))
        return f.read().decode("utf-8", "replace")


def _frames(stream: bytes) -> tuple[dict[str, bytes], dict[str, Any] | None]:
    """Parse the launcher's frames: released files, then the outcome."""
    files: dict[str, bytes] = {}
    i = 0
    while i < len(stream):
        kind = stream[i : i + 1]
        if kind == b"F":
            (name_len,) = struct.unpack(">H", stream[i + 1 : i + 3])
            name = stream[i + 3 : i + 3 + name_len].decode()
            (size,) = struct.unpack(">Q", stream[i + 3 + name_len : i + 11 + name_len])
            start = i + 11 + name_len
            files[name] = stream[start : start + size]
            i = start + size
        elif kind == b"E":
            (size,) = struct.unpack(">I", stream[i + 1 : i + 5])
            outcome: dict[str, Any] = json.loads(stream[i + 5 : i + 5 + size])
            return files, outcome
        else:
            break
    return files, None


def _outcome(stream: bytes, code: int | None, seconds: float, limits: JobLimits,
             release_to: Path, log_path: Path) -> SandboxResult:  # fmt: skip
    tail = _log_tail(log_path)
    try:
        files, outcome = _frames(stream)
    except (struct.error, ValueError, UnicodeDecodeError):
        files, outcome = {}, None
    result = SandboxResult("failed", "", code if code is not None else -1, seconds,
                           stderr_tail=tail)  # fmt: skip
    if outcome is None:
        result.reason = (
            "the job could not be confined on this machine; the owner's job log says why"
            if code == _jail.EXIT_NOT_CONFINED
            else "the sandbox failed; the owner's job log says why"
        )
        return result
    exit_code, sig = outcome.get("exit"), outcome.get("signal")
    result.exit_code = exit_code if exit_code is not None else -(sig or 0)
    result.seconds = float(outcome.get("seconds", seconds))
    result.withheld = list(outcome.get("withheld", []))
    if outcome.get("timed_out"):
        result.status, result.reason = "killed", f"wall-time limit of {limits.wall_seconds:g} s"
    elif sig in (signal.SIGXCPU, signal.SIGKILL):
        result.status, result.reason = "killed", f"CPU limit of {limits.cpu_seconds} s"
    elif sig == signal.SIGXFSZ:
        result.status, result.reason = "killed", f"output size limit of {limits.output_mb} MB"
    elif "MemoryError" in tail or "Cannot allocate memory" in tail:
        result.status, result.reason = "killed", f"memory limit of {limits.memory_mb} MB"
    elif exit_code == _jail.EXIT_NOT_CONFINED:
        result.reason = (
            "the job could not be confined on this machine; the owner's job log says why"
        )
    elif sig is not None:
        result.reason = f"the algorithm was ended by signal {sig}"
    elif exit_code != 0:
        result.reason = f"the algorithm failed (exit code {exit_code}); the owner has its log"
    elif outcome.get("missing"):
        result.reason = (
            "the algorithm did not write its declared outputs as regular files: "
            + ", ".join(outcome["missing"])
        )
    else:
        result.status, result.reason = "succeeded", "ok"
        release_to.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            target = release_to / name
            atomic_write(target, content, mode=0o600)
            result.released[name] = target
    return result
