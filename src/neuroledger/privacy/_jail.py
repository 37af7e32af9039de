"""The job launcher: confine this process (limits, no network, Landlock), then exec the job.

Run by :mod:`neuroledger.privacy.sandbox` as ``python -I -S _jail.py SPEC``; it
imports only the standard library so that it starts fast and trusts nothing
outside it.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys
from pathlib import Path

# Landlock (include/uapi/linux/landlock.h).
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_REMOVE_DIR, _FS_REMOVE_FILE, _FS_MAKE_CHAR, _FS_MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
_FS_MAKE_REG, _FS_MAKE_SOCK, _FS_MAKE_FIFO, _FS_MAKE_BLOCK = 1 << 8, 1 << 9, 1 << 10, 1 << 11
_FS_MAKE_SYM, _FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 12, 1 << 13, 1 << 14, 1 << 15
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1
_CLONE_NEWNET, _CLONE_NEWUSER = 0x40000000, 0x10000000
_PR_SET_NO_NEW_PRIVS = 38

_READ = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0 when Landlock is unavailable)."""
    libc = ctypes.CDLL(None, use_errno=True)
    abi = libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    return int(abi) if abi > 0 else 0


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _confine(spec: dict[str, object]) -> None:
    """Apply limits, the network namespace and Landlock to this process."""
    libc = ctypes.CDLL(None, use_errno=True)

    def fail(what: str) -> None:
        raise OSError(ctypes.get_errno(), f"{what}: {os.strerror(ctypes.get_errno())}")

    memory = int(spec["memory_mb"]) * 1024 * 1024  # type: ignore[call-overload]
    cpu = int(spec["cpu_seconds"])  # type: ignore[call-overload]
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU, then SIGKILL
    output = int(spec["output_mb"]) * 1024 * 1024  # type: ignore[call-overload]
    resource.setrlimit(resource.RLIMIT_FSIZE, (output, output))
    files = int(spec["open_files"])  # type: ignore[call-overload]
    resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    flags = _CLONE_NEWNET if os.geteuid() == 0 else _CLONE_NEWNET | _CLONE_NEWUSER
    if libc.unshare(flags) != 0:
        fail("unshare(network namespace)")
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        fail("prctl(no_new_privs)")

    abi = landlock_abi()
    if abi < 1:
        raise OSError("Landlock is not available")
    handled = (1 << 13) - 1  # ABI 1 rights
    if abi >= 2:
        handled |= _FS_REFER
    if abi >= 3:
        handled |= _FS_TRUNCATE
    if abi >= 5:
        handled |= _FS_IOCTL_DEV
    attr = _RulesetAttr(handled, 0, 0)
    size = 8
    if abi >= 4:
        attr.handled_access_net = _NET_BIND_TCP | _NET_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL
        size = 24
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        fail("landlock_create_ruleset")

    def allow(path: str, rights: int) -> None:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        if not os.path.isdir(path):
            rights &= _FILE_RIGHTS
        rule = _PathBeneathAttr(rights & handled, fd)
        if libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
            fail(f"landlock_add_rule({path})")
        os.close(fd)

    for path in spec["read"]:  # type: ignore[attr-defined]
        allow(str(path), _READ)
    for path in spec["write"]:  # type: ignore[attr-defined]
        allow(str(path), handled)
    allow("/dev/null", _FS_READ_FILE | _FS_WRITE_FILE)
    allow("/dev/urandom", _FS_READ_FILE)
    if libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0) != 0:
        fail("landlock_restrict_self")
    os.close(ruleset)


def _child_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    os.chdir(spec["workdir"])
    try:
        _confine(spec)
    except OSError as exc:
        sys.stderr.write(f"neuroledger-sandbox: cannot confine the job: {exc}\n")
        os._exit(97)
    argv = [spec["python"], "-I", spec["algorithm"], spec["input"], spec["output"]]
    os.execve(spec["python"], argv, spec["env"])


if __name__ == "__main__":
    _child_main(sys.argv[1])
