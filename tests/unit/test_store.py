"""The filesystem blob store: round trips, integrity checks, crash leaves no garbage."""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from neuroledger.errors import BlobCorruptError, BlobNotFoundError, StoreError
from neuroledger.store import BlobStore, FileStore
from neuroledger.store._files import CHUNK_SIZE


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "store")


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_filestore_implements_the_protocol(store: FileStore) -> None:
    assert isinstance(store, BlobStore)


def test_put_get_round_trip_and_layout(store: FileStore) -> None:
    digest = store.put(b"weights")
    assert digest == hashlib.sha256(b"weights").hexdigest()
    assert store.get(digest) == b"weights"
    assert store.path(digest) == store.root / "sha256" / digest[:2] / digest
    assert store.has(digest)
    assert store.size(digest) == 7


def test_put_is_idempotent(store: FileStore) -> None:
    first = store.put(b"same")
    second = store.put_stream(io.BytesIO(b"same"))
    assert first == second
    assert len(files_under(store.root / "sha256")) == 1


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, 3 * CHUNK_SIZE + 17])
def test_stream_round_trip(store: FileStore, size: int) -> None:
    data = os.urandom(size)
    digest = store.put_stream(io.BytesIO(data))
    assert digest == hashlib.sha256(data).hexdigest()
    assert b"".join(store.chunks(digest)) == data
    assert all(len(c) <= CHUNK_SIZE for c in store.chunks(digest))


def test_corrupt_blob_is_refused_on_every_read(store: FileStore) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 5)
    digest = store.put(data)
    path = store.path(digest)
    path.chmod(0o644)
    with open(path, "r+b") as fh:
        fh.seek(CHUNK_SIZE + 3)
        fh.write(b"\xff" if data[CHUNK_SIZE + 3] != 0xFF else b"\x00")
    with pytest.raises(BlobCorruptError, match="corrupt"):
        store.get(digest)
    with pytest.raises(BlobCorruptError):
        list(store.chunks(digest))


def test_missing_blob_and_bad_digest(store: FileStore) -> None:
    with pytest.raises(BlobNotFoundError, match="not in the store"):
        store.get("0" * 64)
    with pytest.raises(BlobNotFoundError):
        list(store.chunks("0" * 64))
    with pytest.raises(StoreError, match="not a SHA-256 digest"):
        store.get("../../etc/passwd")
    with pytest.raises(StoreError, match="not a SHA-256 digest"):
        store.has("ABC")


def test_max_size_guard(store: FileStore) -> None:
    digest = store.put(b"x" * 100)
    with pytest.raises(StoreError, match="over the 10-byte limit"):
        store.get(digest, max_size=10)


def test_delete(store: FileStore) -> None:
    digest = store.put(b"secret payload")
    assert store.delete(digest)
    assert not store.has(digest)
    assert not store.delete(digest)


def test_blobs_are_read_only(store: FileStore) -> None:
    digest = store.put(b"immutable")
    assert store.path(digest).stat().st_mode & 0o222 == 0


_WRITER = """
import sys, time
from pathlib import Path
from neuroledger.store import FileStore

class Slow:
    def read(self, n):
        print("writing", flush=True)
        time.sleep(0.05)
        return b"x" * n

FileStore(Path(sys.argv[1])).put_stream(Slow())
"""


def test_killed_writer_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "store"
    FileStore(root)
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(root)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    for _ in range(5):  # several chunks are on disk, unnamed
        assert proc.stdout.readline().startswith("writing")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert files_under(root / "sha256") == []  # no partial blob is visible
    FileStore(root)  # reopening collects the dead writer's temporary file, if any
    assert files_under(root) == []


def test_only_abandoned_temporaries_are_swept(tmp_path: Path) -> None:
    root = tmp_path / "store"
    FileStore(root)
    abandoned = root / "tmp" / "123.deadbeef.tmp"
    abandoned.write_bytes(b"partial")
    live = root / "tmp" / "456.cafe.tmp"
    live.write_bytes(b"in progress elsewhere")
    with open(live, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        FileStore(root)
    assert not abandoned.exists()
    assert live.exists()
