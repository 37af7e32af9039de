"""The filesystem backend of the blob store.

Layout under the store root: ``sha256/<first two hex digits>/<digest>``,
read-only files. A blob is written to an unnamed ``O_TMPFILE`` file in the
store, fsynced, then linked under its digest and the directory fsynced: a
crash at any point leaves either the whole blob or nothing, and no temporary
file to collect. Where the filesystem cannot link such files (overlayfs,
gVisor) a named temporary file in ``tmp/`` is used instead; its writer holds an
``flock`` on it, and opening the store removes every temporary file whose
writer is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from neuroledger._fs import fsync_dir
from neuroledger.errors import BlobCorruptError, BlobNotFoundError, StoreError
from neuroledger.store._base import is_digest

__all__ = ["CHUNK_SIZE", "FileStore"]

#: Read and write granularity: 1 MiB.
CHUNK_SIZE = 1 << 20


def _unnamed_files_work(directory: Path) -> bool:
    """Whether ``directory`` supports O_TMPFILE files that can later be linked in.

    Some filesystems (overlayfs among them) create them but refuse the link.
    """
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY, 0o600)
    except OSError:
        return False
    probe = directory / f".probe.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        os.link(f"/proc/self/fd/{fd}", probe, follow_symlinks=True)
    except OSError:
        return False
    finally:
        os.close(fd)
    probe.unlink()
    return True


class FileStore:
    """Blobs as files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._blobs = root / "sha256"
        self._tmp = root / "tmp"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(exist_ok=True)
        self._unnamed = _unnamed_files_work(self._tmp)
        self._sweep_stale()

    def path(self, digest: str) -> Path:
        """Where blob ``digest`` lives (whether or not it is there)."""
        self._check_digest(digest)
        return self._blobs / digest[:2] / digest

    # -- writes ----------------------------------------------------------------------
    def put(self, data: bytes) -> str:
        """Store ``data``; return its digest."""
        digest = hashlib.sha256(data).hexdigest()
        if self.has(digest):
            return digest
        self._write(digest, iter((data,)))
        return digest

    def put_stream(self, stream: BinaryIO) -> str:
        """Store everything ``stream`` yields, 1 MiB at a time; return its digest."""
        hasher = hashlib.sha256()

        def chunks() -> Iterator[bytes]:
            while chunk := stream.read(CHUNK_SIZE):
                hasher.update(chunk)
                yield chunk

        return self._write(None, chunks(), hasher)

    def put_file(self, path: Path) -> str:
        """Store the file at ``path``; return its digest."""
        with open(path, "rb") as fh:
            return self.put_stream(fh)

    def _write(
        self, digest: str | None, chunks: Iterator[bytes], hasher: hashlib._Hash | None = None
    ) -> str:
        fd, tmp_name = self._open_tmp()
        try:
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            os.fsync(fd)
            if digest is None:
                assert hasher is not None
                digest = hasher.hexdigest()
            target = self.path(digest)
            target.parent.mkdir(exist_ok=True)
            os.fchmod(fd, 0o444)
            try:
                if tmp_name is None:
                    os.link(f"/proc/self/fd/{fd}", target, follow_symlinks=True)
                else:
                    os.link(tmp_name, target)
            except FileExistsError:
                pass  # stored before: blobs are immutable, so the bytes are the same
            fsync_dir(target.parent)
            return digest
        finally:
            os.close(fd)
            if tmp_name is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp_name)

    def _open_tmp(self) -> tuple[int, str | None]:
        try:
            if self._unnamed:
                return os.open(self._tmp, os.O_TMPFILE | os.O_WRONLY, 0o600), None
            name = str(self._tmp / f"{os.getpid()}.{secrets.token_hex(8)}.tmp")
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)  # marks the file as being written
            return fd, name
        except OSError as exc:
            raise StoreError(f"cannot write to the store at {self.root}: {exc}") from None

    def _sweep_stale(self) -> None:
        # A temporary file nobody holds a lock on belongs to a writer that died.
        for leftover in self._tmp.glob("*.tmp"):
            try:
                fd = os.open(leftover, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer
            else:
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
            finally:
                os.close(fd)

    # -- reads -----------------------------------------------------------------------
    def has(self, digest: str) -> bool:
        """Whether the blob is in the store."""
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        """Size of the blob in bytes."""
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise self._missing(digest) from None

    def chunks(self, digest: str) -> Iterator[bytes]:
        """Yield the blob 1 MiB at a time; the digest is checked before the last chunk.

        On :class:`BlobCorruptError` the caller must discard what it received.
        """
        try:
            fh = open(self.path(digest), "rb")  # noqa: SIM115 (closed below, in a generator)
        except FileNotFoundError:
            raise self._missing(digest) from None
        with fh:
            hasher = hashlib.sha256()
            held = fh.read(CHUNK_SIZE)
            hasher.update(held)
            while chunk := fh.read(CHUNK_SIZE):
                hasher.update(chunk)
                yield held
                held = chunk
            self._check(digest, hasher.hexdigest())
            if held:
                yield held

    def get(self, digest: str, *, max_size: int | None = None) -> bytes:
        """Return the blob's bytes, checked against ``digest``."""
        if max_size is not None and self.size(digest) > max_size:
            raise StoreError(
                f"blob {digest} is {self.size(digest)} bytes, over the {max_size}-byte limit "
                "for this read; stream it with chunks() instead"
            )
        try:
            data = self.path(digest).read_bytes()
        except FileNotFoundError:
            raise self._missing(digest) from None
        self._check(digest, hashlib.sha256(data).hexdigest())
        return data

    def delete(self, digest: str) -> bool:
        """Remove the blob; True if it was there."""
        target = self.path(digest)
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        fsync_dir(target.parent)
        return True

    # -- helpers ---------------------------------------------------------------------
    def _check(self, digest: str, actual: str) -> None:
        if actual != digest:
            raise BlobCorruptError(
                f"blob {digest} in {self.root} is corrupt (its bytes hash to {actual}); "
                "restore it from a copy or register the content again"
            )

    def _missing(self, digest: str) -> BlobNotFoundError:
        return BlobNotFoundError(
            f"blob {digest} is not in the store at {self.root}; fetch it from its owner "
            "or point NEUROLEDGER_HOME at the home that holds it"
        )

    @staticmethod
    def _check_digest(digest: str) -> None:
        if not is_digest(digest):
            raise StoreError(f"{digest!r} is not a SHA-256 digest (64 lowercase hex digits)")
