"""Durable file helpers: atomic replace with fsync, and advisory locks."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from neuroledger.errors import DiskFullError

__all__ = [
    "ReportingReader",
    "atomic_write",
    "atomic_writer",
    "file_lock",
    "fsync_dir",
    "is_disk_full",
]


def fsync_dir(path: Path) -> None:
    """Flush a directory entry so that a rename inside it survives a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file."""
    with atomic_writer(path, mode=mode) as out:
        out.write(data)


@contextlib.contextmanager
def atomic_writer(path: Path, *, mode: int = 0o600) -> Iterator[BinaryIO]:
    """A file to stream into that replaces ``path`` only when the block ends without error.

    The bytes go to a temporary file in the same directory, are fsynced, renamed
    over ``path``, and the directory is fsynced. If anything fails (the block, the
    flush, the fsync, the rename), the temporary file is removed and ``path`` is
    left as it was; a full disk raises :class:`DiskFullError`, naming the path.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:
        _raise_if_full(exc, path)
        raise
    out = os.fdopen(fd, "wb", buffering=1024 * 1024)
    done = False
    try:
        yield out
        out.flush()
        os.fsync(fd)
        out.close()
        os.replace(tmp, path)
        done = True
    except OSError as exc:
        _raise_if_full(exc, path)
        raise
    finally:
        if not done:
            with contextlib.suppress(OSError):  # closing flushes again, and may fail again
                out.close()
            tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the file system (or the user's quota) is full."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _raise_if_full(exc: OSError, path: Path) -> None:
    if is_disk_full(exc):
        raise DiskFullError(
            f"no space left on the device to write {path} (nothing was replaced); free some "
            "space and run the command again"
        ) from exc


@contextlib.contextmanager
def file_lock(path: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold an advisory ``flock`` on ``path`` (created if missing) for the block.

    The kernel drops the lock when the holder dies, so a crash never leaves it stale.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class ReportingReader(io.RawIOBase):
    """A binary reader that reports how many bytes each read returned (for progress bars)."""

    def __init__(self, raw: BinaryIO, report: Callable[[int], None]) -> None:
        self._raw = raw
        self._report = report

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        self._report(len(data))
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        data = self._raw.read(-1 if size is None else size)
        self._report(len(data))
        return data

    def readline(self, size: int | None = -1) -> bytes:
        line = self._raw.readline(-1 if size is None else size)
        self._report(len(line))
        return line
