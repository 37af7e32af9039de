"""The write-ahead journal of a tile log: entries appended but not yet written as tiles.

The journal of the log at ``root`` is the sibling directory ``<root>.journal``, so that
the served tree holds only published resources. It holds one file per base size (the
log's materialized size when the file was started); each append is one record
(entry count, payload length, SHA-256 of the payload, then the entry-bundle encoding)
written and fsynced before the append returns. On open, :meth:`Journal.recover` keeps
the intact prefix of the newest usable file (a torn or damaged last record was never
acknowledged) and returns the entries after the materialized size.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from neuroledger._fs import fsync_dir
from neuroledger.audit._tiles import decode_bundle, encode_bundle
from neuroledger.errors import LogCorruptError

__all__ = ["Journal", "journal_dir", "journal_record", "parse_journal"]

#: Where logs of older versions kept their journal: inside the served directory.
_OLD_JOURNAL_DIR = ".journal"
_BATCH_HEADER = 4 + 4 + 32  # entry count, payload length, SHA-256 of the payload


def journal_dir(root: Path) -> Path:
    """The journal of the log at ``root``: a sibling directory, so that the served tree
    holds only published resources (back up both)."""
    return root.parent / f"{root.name}.journal"


class Journal:
    """The journal files of one log; writes go to the file of the current base size."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.directory = journal_dir(root)
        self._fd: int | None = None

    def _path(self, base: int) -> Path:
        return self.directory / str(base)

    def start(self, base: int) -> None:
        """Start the file of entries after ``base`` (the materialized size); drop older ones."""
        self.directory.mkdir(mode=0o700, exist_ok=True)
        self.close()
        self._fd = os.open(self._path(base), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        fsync_dir(self.directory)
        for old in self.directory.iterdir():
            if old.name.isdigit() and int(old.name) < base:
                old.unlink()

    def recover(self, base: int) -> list[bytes]:
        """The journaled entries after ``base``, from the newest file at or below it; the file
        is cut to its intact prefix, rewritten at ``base`` if it started earlier, and started."""
        old = self.root / _OLD_JOURNAL_DIR
        if old.is_dir() and not self.directory.exists():
            # A log of an older version: its journal leaves the served tree.
            old.rename(self.directory)
            fsync_dir(self.root)
            fsync_dir(self.directory.parent)
        bases = (
            sorted(int(p.name) for p in self.directory.iterdir() if p.name.isdigit())
            if self.directory.exists()
            else []
        )
        usable = [b for b in bases if b <= base]
        replay: list[bytes] = []
        if usable:
            start = usable[-1]
            path = self._path(start)
            data = path.read_bytes()
            entries, good = parse_journal(data)
            if good < len(data):  # a torn or damaged last batch: never acknowledged
                with open(path, "r+b") as fh:
                    fh.truncate(good)
                    os.fsync(fh.fileno())
            if len(entries) >= base - start:
                replay = entries[base - start :]
            if start != base:
                # Rewrite what is left into a journal based at the materialized size.
                self._path(base).write_bytes(journal_record(replay) if replay else b"")
        self.start(base)
        return replay

    def write(self, record: bytes) -> None:
        """Append one record (from :func:`journal_record`) durably; on failure, none of it."""
        assert self._fd is not None, "start the journal first"
        offset = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            view = memoryview(record)
            while view:
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
        except BaseException:
            os.ftruncate(self._fd, offset)
            raise

    def close(self) -> None:
        """Release the open journal file."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def journal_record(entries: Sequence[bytes]) -> bytes:
    """One batch as a journal record: count, length, SHA-256, then the bundle encoding."""
    payload = encode_bundle(entries)
    return (
        len(entries).to_bytes(4, "big")
        + len(payload).to_bytes(4, "big")
        + hashlib.sha256(payload).digest()
        + payload
    )


def parse_journal(data: bytes) -> tuple[list[bytes], int]:
    """The entries of every intact batch record, and the length of the intact prefix."""
    entries: list[bytes] = []
    position = 0
    while position + _BATCH_HEADER <= len(data):
        count = int.from_bytes(data[position : position + 4], "big")
        length = int.from_bytes(data[position + 4 : position + 8], "big")
        digest = data[position + 8 : position + 40]
        end = position + _BATCH_HEADER + length
        if end > len(data):
            break
        payload = data[position + _BATCH_HEADER : end]
        if hashlib.sha256(payload).digest() != digest:
            break
        try:
            batch = decode_bundle(payload)
        except LogCorruptError:
            break
        if len(batch) != count:
            break
        entries.extend(batch)
        position = end
    return entries, position
