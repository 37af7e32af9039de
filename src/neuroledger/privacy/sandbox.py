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
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from neuroledger.errors import SandboxError
from neuroledger.privacy import _jail
from neuroledger.privacy._jail import landlock_abi

__all__ = ["JobLimits", "SandboxResult", "check_isolation", "declared_outputs", "run_sandboxed"]


@dataclass(frozen=True)
class JobLimits:
    """Resource limits of one job."""

    memory_mb: int = 1024
    cpu_seconds: int = 60
    wall_seconds: float = 120.0
    output_mb: int = 64
    open_files: int = 64


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
            "cannot create a network namespace for jobs "
            f"({probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else 'denied'}); "
            "enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)"
        )
    _ISOLATION_OK = True


_ISOLATION_OK = False


_PROBE = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
flags = 0x40000000 if os.geteuid() == 0 else 0x40000000 | 0x10000000
if libc.unshare(flags) != 0:
    raise SystemExit(os.strerror(ctypes.get_errno()))
"""


# -- the parent's side -----------------------------------------------------------------------
def _python_roots() -> list[str]:
    """What a job may read: the Python installation, its packages, and system libraries."""
    import neuroledger

    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    roots.add(os.path.dirname(os.path.realpath(sys.executable)))
    roots.add(str(Path(neuroledger.__file__).resolve().parents[1]))
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
) -> SandboxResult:
    """Run ``algorithm`` on a read-only copy of ``data``; release declared outputs to ``release_to``."""
    limits = limits or JobLimits()
    check_isolation()
    with tempfile.TemporaryDirectory(prefix="nl-job-") as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        (root / "out").mkdir()
        (root / "scratch").mkdir()
        (root / "code").mkdir()
        job_input = root / "in" / data.name
        shutil.copyfile(data, job_input)
        job_input.chmod(0o444)
        (root / "in").chmod(0o555)
        code = root / "code" / "algorithm.py"
        shutil.copyfile(algorithm, code)
        code.chmod(0o444)
        spec = {
            "python": sys.executable,
            "algorithm": str(code),
            "input": str(job_input),
            "output": str(root / "out"),
            "workdir": str(root / "scratch"),
            "read": [*_python_roots(), str(root / "in"), str(root / "code")],
            "write": [str(root / "out"), str(root / "scratch")],
            "env": {
                "PATH": "/usr/bin:/bin",
                "HOME": str(root / "scratch"),
                "TMPDIR": str(root / "scratch"),
                "LANG": "C.UTF-8",
                "OPENBLAS_NUM_THREADS": "1",
                "OMP_NUM_THREADS": "1",
                "MPLBACKEND": "Agg",
            },
            "memory_mb": limits.memory_mb,
            "cpu_seconds": limits.cpu_seconds,
            "output_mb": limits.output_mb,
            "open_files": limits.open_files,
        }
        spec_path = root / "spec.json"
        spec_path.write_text(json.dumps(spec))
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", _jail.__file__, str(spec_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        )
        timed_out = False
        try:
            _, stderr_bytes = process.communicate(timeout=limits.wall_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(process.pid, signal.SIGKILL)
            _, stderr_bytes = process.communicate()
        seconds = time.monotonic() - started
        stderr = stderr_bytes.decode("utf-8", "replace")[-4000:]
        code_ = process.returncode
        result = SandboxResult("failed", "", code_, seconds, stderr_tail=stderr)
        if timed_out:
            result.status, result.reason = "killed", f"wall-time limit of {limits.wall_seconds:g} s"
        elif code_ in (-signal.SIGXCPU, -signal.SIGKILL) and seconds < limits.wall_seconds:
            result.status, result.reason = "killed", f"CPU limit of {limits.cpu_seconds} s"
        elif code_ == -signal.SIGXFSZ:
            result.status, result.reason = "killed", f"output size limit of {limits.output_mb} MB"
        elif "MemoryError" in stderr or "Cannot allocate memory" in stderr:
            result.status, result.reason = "killed", f"memory limit of {limits.memory_mb} MB"
        elif code_ == 97:
            result.reason = stderr.strip().splitlines()[-1] if stderr.strip() else "not confined"
        elif code_ != 0:
            last = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit code {code_}"
            result.reason = f"the algorithm failed: {last}"
        else:
            result.status, result.reason = "succeeded", "ok"
            release_to.mkdir(parents=True, exist_ok=True)
            for entry in sorted(os.listdir(root / "out")):
                path = root / "out" / entry
                if entry in outputs and path.is_file() and not path.is_symlink():
                    shutil.copyfile(path, release_to / entry)
                    result.released[entry] = release_to / entry
                else:
                    result.withheld.append(entry)
            missing = [n for n in outputs if n not in result.released]
            if missing:
                result.status = "failed"
                result.reason = (
                    f"the algorithm did not write its declared outputs: {', '.join(missing)}"
                )
        return result
