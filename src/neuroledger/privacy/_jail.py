"""The job launcher: build the job's world, run it as an unprivileged init's child, release outputs.

Run by :mod:`neuroledger.privacy._sandbox` as ``python -I -S _jail.py SPEC``; it
imports only the standard library so that it starts fast and trusts nothing
outside it. Three processes take part:

``J`` (this script) unshares new mount, network, PID, IPC and UTS namespaces
(and a user namespace when not run as root), builds a new root on a tmpfs that
holds only read-only binds of the Python installation and the job's input and
code, plus one size-bounded tmpfs for the job's outputs and scratch space, and
pivots into it. It drops to an unprivileged uid (nobody, when run as root) with
an empty capability bounding set, then forks

``C``, PID 1 of the new PID namespace, which cannot be traced (not dumpable) and
dies with ``J`` (parent-death signal). ``C`` forks

``G``, the job: rlimits (memory, CPU, file size, open files, processes), no new
privileges, Landlock (read the installation and input, write only the job's
tmpfs, no device, socket or FIFO nodes, no TCP), then ``execve`` of Python on
the algorithm.

When ``G`` exits, or the wall-time limit passes, ``C`` kills every process left
in the namespace and reaps them all before it exits. Only then does ``J`` open
each declared output with ``O_NOFOLLOW``, check with ``fstat`` that it is a
regular file, and stream it to the parent over its stdout; nothing of the job
is alive by then, so nothing can swap a file for a link. The parent never
touches the job's files. The job's stdout and stderr go to a file the parent
opened in the owner's directory (never to the requester).

Stdout of ``J`` carries frames: ``b"F" + len(name):2 + name + len(data):8 + data``
per released output, then ``b"E" + len(json):4 + json`` with the outcome.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import platform
import resource
import signal
import stat
import struct
import sys
import time
from pathlib import Path
from types import ModuleType


def _sibling(name: str) -> ModuleType:
    """A module of this directory, loaded by path: this script runs with ``-I -S``, outside
    the package, and must not put its directory on ``sys.path``."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_neuroledger_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


landlock = _sibling("_landlock")
landlock_abi = landlock.landlock_abi

_CLONE_NEWNS, _CLONE_NEWUTS, _CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
_CLONE_NEWUSER, _CLONE_NEWPID, _CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18
_MNT_DETACH = 2
_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE, _PR_CAPBSET_DROP, _PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}

#: The uid and gid a job runs as when the owner's process is root.
NOBODY = 65534
EXIT_NOT_CONFINED = 97


_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:  # fmt: skip
    landlock.check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


# -- J: the world --------------------------------------------------------------------------
def _enter_namespaces(root_user: bool) -> None:
    flags = _CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWPID | _CLONE_NEWIPC | _CLONE_NEWUTS
    uid, gid = os.getuid(), os.getgid()
    if not root_user:
        flags |= _CLONE_NEWUSER
    landlock.check(_libc.unshare(flags), "unshare(namespaces)")
    if not root_user:  # map our own ids, so files keep their owner
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")


def _mount_flags(path: str) -> int:
    """The flags a bind of ``path`` must keep (a user namespace cannot clear them)."""
    st = os.statvfs(path)
    flags = 0
    for bit, mflag in ((os.ST_NOSUID, _MS_NOSUID), (os.ST_NODEV, _MS_NODEV),
                       (os.ST_NOEXEC, _MS_NOEXEC), (os.ST_NOATIME, 1024),
                       (os.ST_NODIRATIME, 2048), (os.ST_RELATIME, 1 << 21)):  # fmt: skip
        if st.f_flag & bit:
            flags |= mflag
    return flags


def _bind(newroot: str, path: str, *, writable: bool = False) -> None:
    """Bind ``path`` at the same place under ``newroot`` (read-only unless ``writable``)."""
    if os.path.islink(path):  # e.g. /lib -> usr/lib on merged-/usr systems
        target = newroot + path
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        if not os.path.lexists(target):
            os.symlink(os.readlink(path), target)
        return
    if not os.path.exists(path):
        return
    target = newroot + path
    if os.path.isdir(path):
        os.makedirs(target, mode=0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        if not os.path.exists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
    _mount(path, target, None, _MS_BIND | _MS_REC)
    flags = _MS_REMOUNT | _MS_BIND | _MS_NOSUID | _mount_flags(path)
    if not writable:
        flags |= _MS_RDONLY
    _mount(None, target, None, flags)


def _build_root(spec: dict[str, object], owner_uid: int) -> None:
    """Mount the job's world on a tmpfs and pivot into it."""
    newroot = str(spec["newroot"])
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    _mount("nl-job-root", newroot, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=4m,mode=0755")
    for path in spec["read"]:  # type: ignore[attr-defined]
        _bind(newroot, str(path))
    for dev in ("/dev/null", "/dev/zero", "/dev/urandom"):
        _bind(newroot, dev, writable=dev != "/dev/urandom")
    rw = str(spec["rw"])
    os.makedirs(newroot + rw, mode=0o755, exist_ok=True)
    disk = int(spec["disk_mb"])  # type: ignore[call-overload]
    _mount("nl-job-rw", newroot + rw, "tmpfs", _MS_NOSUID | _MS_NODEV,
           f"size={disk}m,nr_inodes=4096,mode=0700,uid={owner_uid},gid={owner_uid}")  # fmt: skip
    for sub in (str(spec["output"]), str(spec["workdir"])):
        os.makedirs(newroot + sub, mode=0o700, exist_ok=True)
        os.chown(newroot + sub, owner_uid, owner_uid)
    os.chdir(newroot)
    call = _PIVOT_ROOT.get(platform.machine())
    if call is None:
        raise OSError(f"no pivot_root syscall number known for {platform.machine()}")
    landlock.check(_libc.syscall(call, b".", b"."), "pivot_root")
    landlock.check(_libc.umount2(b".", _MNT_DETACH), "umount old root")
    os.chdir("/")
    _mount(None, "/", None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)


def _drop_privileges(root_user: bool) -> None:
    """An empty capability bounding set, then an unprivileged uid with no capabilities."""
    for cap in range(64):
        if _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # past the last capability this kernel knows
    if root_user:
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)  # clears the permitted and effective sets
    else:
        # In our own user namespace: capset(all zero) for this thread.
        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

        data = (ctypes.c_uint32 * 6)()
        landlock.check(_libc.capset(ctypes.byref(Header(0x20080522, 0)), data), "capset")


# -- G: the job's own confinement ------------------------------------------------------------
def _limits(spec: dict[str, object]) -> None:
    def limit(which: int, value: int) -> None:
        resource.setrlimit(which, (value, value))

    memory = int(spec["memory_mb"]) * 1024 * 1024  # type: ignore[call-overload]
    cpu = int(spec["cpu_seconds"])  # type: ignore[call-overload]
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU, then SIGKILL
    limit(resource.RLIMIT_FSIZE, int(spec["output_mb"]) * 1024 * 1024)  # type: ignore[call-overload]
    limit(resource.RLIMIT_NOFILE, int(spec["open_files"]))  # type: ignore[call-overload]
    limit(resource.RLIMIT_NPROC, int(spec["processes"]))  # type: ignore[call-overload]
    limit(resource.RLIMIT_CORE, 0)


def _job(spec: dict[str, object]) -> None:
    """G: confine, then become the algorithm. Never returns."""
    try:
        os.chdir(str(spec["workdir"]))
        _limits(spec)
        landlock.check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(no_new_privs)")
        read = [str(p) for p in spec["read"]]  # type: ignore[attr-defined]
        landlock.restrict(read, [str(spec["output"]), str(spec["workdir"])])
        argv = [str(spec["python"]), "-I", str(spec["algorithm"]), str(spec["input"]),
                str(spec["output"])]  # fmt: skip
        os.execve(argv[0], argv, spec["env"])  # type: ignore[arg-type]
    except OSError as exc:
        sys.stderr.write(f"neuroledger-sandbox: cannot confine the job: {exc}\n")
    os._exit(EXIT_NOT_CONFINED)


# -- C: PID 1 of the job's namespace ---------------------------------------------------------
def _init(spec: dict[str, object], report: int) -> None:
    """C: run G, kill and reap everything when it ends or the wall time passes. Never returns."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    started = time.monotonic()
    deadline = started + float(spec["wall_seconds"])  # type: ignore[arg-type]
    job = os.fork()
    if job == 0:
        os.close(report)
        _job(spec)
    status, timed_out = None, False
    while status is None:
        try:
            pid, wstatus = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == job:
            status = wstatus
        elif pid == 0:
            if time.monotonic() > deadline:
                timed_out = True
                os.kill(job, signal.SIGKILL)
            time.sleep(0.01)
    seconds = time.monotonic() - started
    # PID 1: kill(-1) reaches every process of the namespace but this one.
    with contextlib.suppress(ProcessLookupError):
        os.kill(-1, signal.SIGKILL)
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    outcome = {"timed_out": timed_out, "seconds": seconds, "exit": None, "signal": None}
    if status is not None and os.WIFEXITED(status):
        outcome["exit"] = os.WEXITSTATUS(status)
    elif status is not None and os.WIFSIGNALED(status):
        outcome["signal"] = os.WTERMSIG(status)
    os.write(report, json.dumps(outcome).encode())
    os._exit(0)


# -- J again: release ------------------------------------------------------------------------
def _release(spec: dict[str, object], out: int) -> tuple[list[str], list[str]]:
    """Stream each declared output to ``out``; return (withheld names, missing names)."""
    directory = str(spec["output"])
    declared = [str(n) for n in spec["outputs"]]  # type: ignore[attr-defined]
    limit = int(spec["output_mb"]) * 1024 * 1024  # type: ignore[call-overload]
    released = set()
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        present = sorted(os.listdir(dir_fd))
        for name in declared:
            if name not in present:
                continue
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
            except OSError:  # a symbolic link (ELOOP) or gone
                continue
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
                    continue
                chunks, size = [], 0
                while size <= limit:
                    chunk = os.read(fd, 1 << 20)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
                if size > limit:
                    continue
            finally:
                os.close(fd)
            data = b"".join(chunks)
            encoded = name.encode()
            _write_all(out, b"F" + struct.pack(">H", len(encoded)) + encoded
                       + struct.pack(">Q", len(data)))  # fmt: skip
            _write_all(out, data)
            released.add(name)
    finally:
        os.close(dir_fd)
    withheld = [n for n in present if n not in released]
    missing = [n for n in declared if n not in released]
    return withheld, missing


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def main(spec_path: str) -> None:
    """J: the whole run; exits 97 (and says why on stderr) when the job cannot be confined."""
    spec = json.loads(Path(spec_path).read_text())
    out = os.dup(1)
    os.dup2(2, 1)  # the job's stdout goes where its stderr goes: the owner's log
    root_user = os.geteuid() == 0
    job_uid = NOBODY if root_user else os.getuid()
    try:
        _enter_namespaces(root_user)
        _build_root(spec, job_uid)
        _drop_privileges(root_user)
    except OSError as exc:
        sys.stderr.write(f"neuroledger-sandbox: cannot confine the job: {exc}\n")
        os._exit(EXIT_NOT_CONFINED)
    read_end, write_end = os.pipe()
    init = os.fork()
    if init == 0:
        os.close(read_end)
        os.close(out)
        _init(spec, write_end)
    os.close(write_end)
    os.waitpid(init, 0)
    report = b""
    while chunk := os.read(read_end, 4096):
        report += chunk
    outcome = json.loads(report) if report else {"timed_out": False, "seconds": 0.0,
                                                  "exit": None, "signal": None, "lost": True}  # fmt: skip
    withheld, missing = _release(spec, out)
    outcome.update(withheld=withheld, missing=missing)
    trailer = json.dumps(outcome).encode()
    _write_all(out, b"E" + struct.pack(">I", len(trailer)) + trailer)
    os.close(out)
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1])
