"""A transparency log on the filesystem, in the C2SP tlog-tiles layout.

Appends come in batches. A batch is durable before :meth:`TileLog.append` returns:
it is appended to a journal (``<log>.journal/<first index>``, beside the log directory,
never in it) as one record with its SHA-256, and the journal is fsynced: one write and one fsync per batch. The
tiles and entry bundles are written when a checkpoint is signed
(:meth:`TileLog.checkpoint`, which the spec requires for every checkpointed
size): each file goes to a temporary name, is fsynced and renamed, the
directories are fsynced, then the size record (``.neuroledger-log.json``) is
replaced atomically and a fresh journal started. On open, the tiles are
loaded up to the recorded size and the journal is replayed after it; a batch
record that is torn or fails its hash (a crash mid-write) is cut off, and it
was never acknowledged.

The directory can be served as it is by any static file server: ``checkpoint``
and ``tile/…`` are the tlog-tiles resources. Entries not yet checkpointed live only
in the journal, outside the directory, so serving it never publishes them early.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from neuroledger._fs import atomic_write, file_lock
from neuroledger.audit._journal import Journal, journal_dir, journal_record
from neuroledger.audit._note import (
    Checkpoint,
    NoteSigner,
    open_checkpoint,
    parse_note,
    sign_checkpoint,
)
from neuroledger.audit._tile_files import (
    drop_superseded_partials,
    sweep_uncommitted,
    tile_files,
    write_files,
)
from neuroledger.audit._tiles import (
    TILE_WIDTH,
    decode_bundle,
    entries_path,
    tile_path,
)
from neuroledger.core import HASH_SIZE, MerkleTree, verify_consistency
from neuroledger.errors import AuditError, LogCorruptError, SignatureError

__all__ = ["HISTORY_DIR", "STATE_FILE", "LogState", "TileLog", "journal_dir"]

STATE_FILE = ".neuroledger-log.json"
#: Every checkpoint the log signed, by tree size.
HISTORY_DIR = ".checkpoints"
_TILE_BYTES = TILE_WIDTH * HASH_SIZE


@dataclass(frozen=True)
class LogState:
    """The committed state of a log: its origin, size and root, and its last checkpoint."""

    origin: str
    size: int
    root: bytes
    checkpoint_size: int
    checkpoint_root: bytes

    def to_json(self) -> dict[str, object]:
        """The state as stored."""
        return {
            "origin": self.origin,
            "size": self.size,
            "root": base64.b64encode(self.root).decode(),
            "checkpoint_size": self.checkpoint_size,
            "checkpoint_root": base64.b64encode(self.checkpoint_root).decode(),
        }


class TileLog:
    """An append-only log of byte entries under ``root``, signed by ``signer``."""

    def __init__(
        self,
        root: Path,
        state: LogState,
        tree: MerkleTree,
        pending: list[bytes],
        signer: NoteSigner | None,
    ) -> None:
        self.root = root
        self.origin = state.origin
        self.signer = signer
        self._state = state
        self._tree = tree
        self._pending = pending  # entries of the partial bundle at the materialized size
        self._unmaterialized: list[bytes] = []  # journaled entries after the materialized size
        self._journal = Journal(root)
        self._lock = root / ".lock"

    # -- life cycle ------------------------------------------------------------------
    @classmethod
    def create(cls, root: Path, *, origin: str, signer: NoteSigner) -> TileLog:
        """A new empty log with a signed checkpoint of size 0."""
        if (root / STATE_FILE).exists():
            raise AuditError(f"a log already exists at {root}; open it instead of creating it")
        if signer.name != origin:
            raise AuditError(f"the log key is named {signer.name!r} but the origin is {origin!r}")
        root.mkdir(parents=True, exist_ok=True)
        empty = MerkleTree().root()
        state = LogState(
            origin=origin, size=0, root=empty, checkpoint_size=0, checkpoint_root=empty
        )
        log = cls(root, state, MerkleTree(), [], signer)
        log._commit(state)
        log._start_journal()
        log.checkpoint()
        return log

    @classmethod
    def open(cls, root: Path, *, signer: NoteSigner | None = None) -> TileLog:
        """Open a log; rebuild its tree from its level-0 tiles and check the committed root."""
        try:
            data = json.loads((root / STATE_FILE).read_text())
            state = LogState(
                origin=str(data["origin"]),
                size=int(data["size"]),
                root=base64.b64decode(data["root"]),
                checkpoint_size=int(data["checkpoint_size"]),
                checkpoint_root=base64.b64decode(data["checkpoint_root"]),
            )
        except FileNotFoundError:
            raise AuditError(
                f"no log at {root}; create one with `neuroledger audit create`"
            ) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise LogCorruptError(f"{root / STATE_FILE} is unreadable ({exc})") from None
        if signer is not None and signer.name != state.origin:
            raise SignatureError(f"the key {signer.name!r} is not the key of log {state.origin!r}")
        tree = MerkleTree()
        full, width = divmod(state.size, TILE_WIDTH)
        for index in range(full + (1 if width else 0)):
            w = TILE_WIDTH if index < full else width
            path = tile_path(0, index, width=w)
            raw = cls._read(root, path, w * HASH_SIZE)
            tree.levels[0] += raw
        cls._rebuild_levels(tree)
        if tree.root() != state.root:
            raise LogCorruptError(
                f"the level-0 tiles of {root} do not hash to the committed root of size "
                f"{state.size}; run `neuroledger audit verify` to find the damaged file"
            )
        pending: list[bytes] = []
        if width:
            path = entries_path(full, width=width)
            pending = decode_bundle((root / path).read_bytes(), where=str(root / path))
            if len(pending) != width:
                raise LogCorruptError(f"{root / path} holds {len(pending)} entries, not {width}")
        log = cls(root, state, tree, pending, signer)
        sweep_uncommitted(root, state.size)
        log._replay_journal()
        return log

    # -- journal ---------------------------------------------------------------------
    def _start_journal(self) -> None:
        """Start the journal of entries after the materialized size; drop older journals."""
        self._journal.start(self._state.size)

    def _replay_journal(self) -> None:
        replay = self._journal.recover(self._state.size)
        if replay:
            self._tree.extend([hashlib.sha256(b"\x00" + e).digest() for e in replay])
            self._unmaterialized = replay

    @staticmethod
    def _read(root: Path, path: str, length: int) -> bytes:
        try:
            raw = (root / path).read_bytes()
        except FileNotFoundError:
            raise LogCorruptError(f"{root / path} is missing") from None
        if len(raw) != length:
            raise LogCorruptError(f"{root / path} is {len(raw)} bytes, not {length}")
        return raw

    @staticmethod
    def _rebuild_levels(tree: MerkleTree) -> None:
        leaves = bytes(tree.levels[0])
        tree.levels = [bytearray()]
        tree.extend([leaves[i : i + HASH_SIZE] for i in range(0, len(leaves), HASH_SIZE)])

    # -- reads -----------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Number of durable entries (materialized in tiles or journaled)."""
        return self._state.size + len(self._unmaterialized)

    @property
    def state(self) -> LogState:
        """The committed state."""
        return self._state

    @property
    def tree(self) -> MerkleTree:
        """The in-memory Merkle tree (read-only use)."""
        return self._tree

    def root_hash(self, size: int | None = None) -> bytes:
        """Root of the tree of ``size`` entries (the committed size by default)."""
        return self._tree.root(self.size if size is None else size)

    def entry(self, index: int) -> bytes:
        """Entry ``index``, read from its bundle."""
        if not 0 <= index < self.size:
            raise AuditError(f"entry {index} is not in the log (size {self.size})")
        materialized = self._state.size
        if index >= materialized:
            return self._unmaterialized[index - materialized]
        bundle, offset = divmod(index, TILE_WIDTH)
        full = (bundle + 1) * TILE_WIDTH <= materialized
        path = entries_path(bundle, width=None if full else materialized % TILE_WIDTH)
        entries = decode_bundle((self.root / path).read_bytes(), where=str(self.root / path))
        return entries[offset]

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Inclusion proof of entry ``index`` in the tree of ``size`` (committed by default)."""
        return self._tree.inclusion_proof(index, self.size if size is None else size)

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        """Consistency proof from size ``old`` to ``new`` (committed by default)."""
        new = self.size if new is None else new
        return [] if old == new else self._tree.consistency_proof(old, new)

    # -- writes ----------------------------------------------------------------------
    def append(self, entries: Sequence[bytes]) -> int:
        """Append a batch durably (one journal write and fsync); return its first index."""
        if not entries:
            return self.size
        record = journal_record(entries)  # refuses oversized entries before anything changes
        with file_lock(self._lock):
            first = self.size
            self._journal.write(record)
            sha = hashlib.sha256
            self._tree.extend([sha(b"\x00" + entry).digest() for entry in entries])
            self._unmaterialized.extend(entries)
            return first

    def materialize(self) -> None:
        """Write the tiles and entry bundles of every journaled entry; start a fresh journal."""
        with file_lock(self._lock):
            old, new = self._state.size, self.size
            if new == old:
                return
            files = tile_files(self._tree, self._pending, old, new, self._unmaterialized)
            write_files(self.root, files)
            state = LogState(
                origin=self.origin, size=new, root=self._tree.root(new),
                checkpoint_size=self._state.checkpoint_size,
                checkpoint_root=self._state.checkpoint_root,
            )  # fmt: skip
            self._commit(state)
            bundle_start = (new // TILE_WIDTH) * TILE_WIDTH
            combined = self._pending + self._unmaterialized
            self._pending = (
                combined[len(combined) - (new - bundle_start) :] if new > bundle_start else []
            )
            self._unmaterialized = []
            self._start_journal()
            drop_superseded_partials(self.root, files)

    def close(self) -> None:
        """Release the journal file."""
        self._journal.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def _commit(self, state: LogState) -> None:
        atomic_write(self.root / STATE_FILE, json.dumps(state.to_json()).encode(), mode=0o644)
        self._state = state

    def checkpoint(self) -> str:
        """Sign a checkpoint of the committed size and publish it at ``<root>/checkpoint``.

        The log refuses to sign a checkpoint that is not consistent with the
        last one it signed (a rolled-back or forked state).
        """
        if self.signer is None:
            raise SignatureError("this log was opened without its key; it cannot sign checkpoints")
        self.materialize()
        with file_lock(self._lock):
            state = self._state
            if state.size < state.checkpoint_size:
                raise AuditError(
                    f"log {self.origin} is at size {state.size}, below its last signed checkpoint "
                    f"({state.checkpoint_size}); it was rolled back and must not sign again"
                )
            if state.checkpoint_size:
                verify_consistency(
                    state.checkpoint_size, state.size,
                    self.consistency_proof(state.checkpoint_size, state.size),
                    state.checkpoint_root, state.root,
                )  # fmt: skip
            text = sign_checkpoint(
                Checkpoint(origin=self.origin, size=state.size, root=state.root), self.signer
            )
            # History first (what `audit verify` checks successive checkpoints against),
            # then the served file.
            atomic_write(self.root / HISTORY_DIR / str(state.size), text.encode(), mode=0o644)
            atomic_write(self.root / "checkpoint", text.encode(), mode=0o644)
            self._commit(
                LogState(
                    origin=state.origin,
                    size=state.size,
                    root=state.root,
                    checkpoint_size=state.size,
                    checkpoint_root=state.root,
                )
            )
            return text

    def checkpoint_text(self, size: int) -> str:
        """The signed checkpoint of ``size`` as published, with every cosignature a witness
        added to it (the served one when it is of that size, else the log's history)."""
        history = self.root / HISTORY_DIR / str(size)
        try:
            text = history.read_text()
        except FileNotFoundError:
            raise AuditError(
                f"log {self.origin} never signed a checkpoint of size {size}"
            ) from None
        with contextlib.suppress(FileNotFoundError, SignatureError):
            served = (self.root / "checkpoint").read_text()
            if parse_note(served).text == parse_note(text).text and len(served) > len(text):
                return served
        return text

    def signed_checkpoint(self) -> Checkpoint:
        """The published checkpoint, verified with the log's key."""
        if self.signer is None:
            raise SignatureError("open the log with its key, or use verify_log with its vkey")
        return open_checkpoint((self.root / "checkpoint").read_text(), self.signer.verifier)
