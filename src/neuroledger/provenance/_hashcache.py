"""A cache of file digests keyed by what ``stat`` says about the file.

A file whose path, size, mtime, ctime, inode and device are all unchanged is
not re-hashed. ctime cannot be set by user programs (``touch -r`` and
``os.utime`` change it), so restoring an mtime after an edit does not fool the
cache. As in git's "racily clean" rule, a file modified within a second of the
moment it was hashed is not cached, since a later write in the same clock tick
could leave every stat field unchanged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

__all__ = ["FileKey", "HashCache"]

_RACY_NS = 1_000_000_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    device INTEGER NOT NULL,
    digest TEXT NOT NULL
) WITHOUT ROWID;
"""


class FileKey(NamedTuple):
    """What identifies one version of a file."""

    path: str
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int


class HashCache:
    """File digests in an SQLite database."""

    def __init__(self, path: Path, *, racy_window_ns: int = _RACY_NS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.racy_window_ns = racy_window_ns
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def lookup(self, keys: Sequence[FileKey]) -> dict[FileKey, str]:
        """The cached digest of every key whose stat fields all match."""
        wanted = {k.path: k for k in keys}
        hits: dict[FileKey, str] = {}
        paths = list(wanted)
        for start in range(0, len(paths), 500):
            chunk = paths[start : start + 500]
            rows = self._db.execute(
                "SELECT path, size, mtime_ns, ctime_ns, inode, device, digest FROM files "
                f"WHERE path IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for row in rows:
                key = FileKey(*row[:6])
                if wanted.get(key.path) == key:
                    hits[key] = row[6]
        return hits

    def store(self, entries: Iterable[tuple[FileKey, str]], *, now_ns: int) -> None:
        """Remember digests, skipping files modified too close to ``now_ns`` to be trusted."""
        rows = [
            (*key, digest)
            for key, digest in entries
            if now_ns - max(key.mtime_ns, key.ctime_ns) >= self.racy_window_ns
        ]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?)", rows)

    def close(self) -> None:
        """Close the database."""
        self._db.close()
