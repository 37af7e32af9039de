"""Whole-log verification: every tile, every bundle, every checkpoint, named on failure.

:func:`verify_log` reads a tlog-tiles directory with nothing but the log's
public key. It checks the signature of the served checkpoint and of every
earlier one, the cosignature of every witness whose key it is given, that the
partial tiles and bundles of every earlier checkpoint are still served, recomputes each tile from the entry bundles, and compares every
file on disk with what it must hold. When the entry bundles and the level-0
tiles disagree, the signed root decides which one was altered, so the report
names the damaged file and the position in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from neuroledger.audit._log import HISTORY_DIR
from neuroledger.audit._note import NoteVerifier, open_checkpoint, parse_note, signed_message
from neuroledger.audit._tiles import TILE_WIDTH, decode_bundle, entries_path, tile_path
from neuroledger.core import HASH_SIZE, MerkleTree, leaf_hash
from neuroledger.errors import AuditError

__all__ = ["LogReport", "Problem", "verify_log"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong, and where."""

    place: str
    message: str

    def __str__(self) -> str:
        return f"{self.place}: {self.message}"


@dataclass
class LogReport:
    """The outcome of :func:`verify_log`."""

    origin: str
    size: int = 0
    checkpoints: int = 0
    tiles: int = 0
    bundles: int = 0
    cosigned_by: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


def _read(root: Path, rel: str) -> bytes | None:
    try:
        return (root / rel).read_bytes()
    except FileNotFoundError:
        return None


def verify_log(
    root: Path, verifier: NoteVerifier, witnesses: Sequence[NoteVerifier] = ()
) -> LogReport:
    """Verify the log at ``root`` against its public key (and the cosignatures of the
    ``witnesses`` it carries); return what is wrong, by place."""
    report = LogReport(origin=verifier.name)
    try:
        served = (root / "checkpoint").read_text()
        checkpoint = open_checkpoint(served, verifier)
    except FileNotFoundError:
        raise AuditError(f"no checkpoint at {root}; is this a log directory?") from None
    except (AuditError, UnicodeDecodeError) as exc:
        report.problems.append(Problem("checkpoint", f"does not verify: {exc}"))
        return report
    _check_cosignatures(served, witnesses, report)
    size = checkpoint.size
    report.size = size

    # Entries and level-0 hashes, side by side.
    from_bundles: list[bytes | None] = []
    from_tiles: list[bytes | None] = []
    bundle_places: list[str] = []
    tile_places: list[str] = []
    full, width = divmod(size, TILE_WIDTH)
    for index in range(full + (1 if width else 0)):
        w = TILE_WIDTH if index < full else width
        b_rel, t_rel = entries_path(index, width=w), tile_path(0, index, width=w)
        bundle_places += [b_rel] * w
        tile_places += [t_rel] * w
        report.bundles += 1
        report.tiles += 1
        raw = _read(root, b_rel)
        entries: list[bytes] = []
        if raw is None:
            report.problems.append(Problem(b_rel, "missing"))
        else:
            try:
                entries = decode_bundle(raw, where=b_rel)
            except AuditError as exc:
                report.problems.append(Problem(b_rel, str(exc).split(": ", 1)[-1]))
            if entries and len(entries) != w:
                report.problems.append(Problem(b_rel, f"holds {len(entries)} entries, not {w}"))
        hashes = [leaf_hash(e) for e in entries[:w]]
        from_bundles += hashes + [None] * (w - len(hashes))
        tile = _read(root, t_rel)
        if tile is None or len(tile) != w * HASH_SIZE:
            report.problems.append(
                Problem(
                    t_rel,
                    "missing" if tile is None else f"is {len(tile)} bytes, not {w * HASH_SIZE}",
                )
            )
            from_tiles += [None] * w
        else:
            from_tiles += [tile[i * HASH_SIZE : (i + 1) * HASH_SIZE] for i in range(w)]

    def root_of(leaves: list[bytes | None]) -> bytes | None:
        if any(x is None for x in leaves):
            return None
        tree = MerkleTree()
        tree.extend([x for x in leaves if x is not None])
        return tree.root()

    root_b, root_t = root_of(from_bundles), root_of(from_tiles)
    # The signed root says which side is right; every difference is then a damaged file on the other.
    if root_b == checkpoint.root or root_t == checkpoint.root:
        if root_b == checkpoint.root:
            truth, other, places = from_bundles, from_tiles, tile_places
            template = "hash {k} (entry {i}) differs from the hash of the entry"
        else:
            truth, other, places = from_tiles, from_bundles, bundle_places
            template = "entry {k} (log index {i}) was altered: it no longer hashes to its leaf"
        for i, (good, bad) in enumerate(zip(truth, other, strict=True)):
            if bad is not None and good != bad:
                report.problems.append(Problem(places[i], template.format(k=i % TILE_WIDTH, i=i)))
    else:
        report.problems.append(
            Problem(
                "checkpoint",
                f"root matches neither the entry bundles nor the level-0 tiles of size {size}",
            )
        )
        for i, (b, t) in enumerate(zip(from_bundles, from_tiles, strict=True)):
            if b != t:
                report.problems.append(
                    Problem(
                        f"{bundle_places[i]} / {tile_places[i]}",
                        f"entry {i} and its leaf hash disagree",
                    )
                )
        return report

    tree = MerkleTree()
    tree.extend([x for x in truth if x is not None])

    # Higher-level tiles, full and partial, and every partial file still on disk.
    level = 1
    while size // TILE_WIDTH**level:
        nodes = size // TILE_WIDTH**level
        level_hashes = tree.levels[8 * level]
        n_full, n_width = divmod(nodes, TILE_WIDTH)
        for index in range(n_full + (1 if n_width else 0)):
            w = TILE_WIDTH if index < n_full else n_width
            rel = tile_path(level, index, width=w)
            report.tiles += 1
            _compare(
                root,
                rel,
                bytes(
                    level_hashes[
                        index * TILE_WIDTH * HASH_SIZE : (index * TILE_WIDTH + w) * HASH_SIZE
                    ]
                ),
                report,
            )
        level += 1
    _check_other_partials(root, tree, truth, size, report)

    # Every checkpoint the log signed must be a prefix of this tree, and a client that
    # knows it must still find its partial tiles.
    history = sorted(
        (root / HISTORY_DIR).glob("*"), key=lambda p: int(p.name) if p.name.isdigit() else -1
    )
    for path in history:
        rel = f"{HISTORY_DIR}/{path.name}"
        try:
            old = open_checkpoint(path.read_text(), verifier)
        except (AuditError, UnicodeDecodeError) as exc:
            report.problems.append(Problem(rel, f"does not verify: {exc}"))
            continue
        report.checkpoints += 1
        if old.size > size:
            report.problems.append(
                Problem(
                    rel,
                    f"size {old.size} is beyond the served checkpoint ({size}): the log was rolled back",
                )
            )
        elif tree.root(old.size) != old.root:
            report.problems.append(
                Problem(
                    rel, f"root of size {old.size} is not consistent with the served checkpoint"
                )
            )
        else:
            for partial in partial_resources(old.size):
                # The spec lets a log drop a partial once the full tile is served.
                full_rel = partial.rsplit(".p/", 1)[0]
                if not (root / partial).is_file() and not (root / full_rel).is_file():
                    report.problems.append(
                        Problem(
                            partial,
                            f"missing: a partial tile of checkpoint size {old.size}, "
                            "which clients that know that checkpoint fetch",
                        )
                    )
    return report


def partial_resources(size: int) -> list[str]:
    """The partial tiles and entry bundle a tree of ``size`` leaves is served with."""
    out = []
    if size % TILE_WIDTH:
        out.append(entries_path(size // TILE_WIDTH, width=size % TILE_WIDTH))
    level = 0
    while nodes := size // TILE_WIDTH**level:
        if nodes % TILE_WIDTH:
            out.append(tile_path(level, nodes // TILE_WIDTH, width=nodes % TILE_WIDTH))
        level += 1
    return out


def _check_cosignatures(text: str, witnesses: Sequence[NoteVerifier], report: LogReport) -> None:
    """Each known witness's cosignature on the served checkpoint must verify."""
    note = parse_note(text)
    known = {(w.name, w.key_id): w for w in witnesses}
    for sig in note.signatures:
        witness = known.get((sig.name, sig.key_id))
        if witness is None:
            continue
        try:
            message, raw = signed_message(witness, note.text, sig.blob)
            good = witness.check(message, raw)
        except AuditError:
            good = False
        if good:
            report.cosigned_by.append(witness.name)
        else:
            report.problems.append(
                Problem("checkpoint", f"the cosignature by witness {sig.name} does not verify")
            )


def _compare(root: Path, rel: str, expected: bytes, report: LogReport) -> None:
    actual = _read(root, rel)
    if actual is None:
        report.problems.append(Problem(rel, "missing"))
    elif actual != expected:
        if len(actual) != len(expected):
            report.problems.append(Problem(rel, f"is {len(actual)} bytes, not {len(expected)}"))
            return
        first = next(i for i in range(len(actual)) if actual[i] != expected[i])
        report.problems.append(
            Problem(
                rel, f"hash {first // HASH_SIZE} (byte {first}) differs from the recomputed tree"
            )
        )


def _check_other_partials(
    root: Path, tree: MerkleTree, truth: list[bytes | None], size: int, report: LogReport
) -> None:
    """Partial tiles and bundles kept for earlier checkpoints must be prefixes of the tree."""
    tile_dir = root / "tile"
    for path in sorted(tile_dir.rglob("*")):
        rel = str(path.relative_to(root))
        if not path.is_file() or path.name.startswith(".") or ".p/" not in rel:
            continue
        base, width_text = rel.rsplit(".p/", 1)
        parts = base.split("/")
        try:
            width = int(width_text)
            index = int("".join(p.removeprefix("x") for p in parts[2:]))
        except ValueError:
            report.problems.append(Problem(rel, "not a tile name"))
            continue
        if parts[1] == "entries":
            lo = index * TILE_WIDTH
            if lo + width > size:
                continue  # beyond the served checkpoint: not covered yet
            if (lo + width) == size:
                continue  # checked above
            try:
                entries = decode_bundle(path.read_bytes(), where=rel)
            except AuditError as exc:
                report.problems.append(Problem(rel, str(exc).split(": ", 1)[-1]))
                continue
            for i, entry in enumerate(entries):
                if lo + i >= len(truth) or leaf_hash(entry) != truth[lo + i]:
                    report.problems.append(
                        Problem(rel, f"entry {i} (log index {lo + i}) was altered")
                    )
                    break
            continue
        level = int(parts[1])
        lo = index * TILE_WIDTH
        nodes = size // TILE_WIDTH**level
        if lo + width > nodes or lo + width == nodes:
            continue
        hashes = tree.levels[8 * level]
        _compare(root, rel, bytes(hashes[lo * HASH_SIZE : (lo + width) * HASH_SIZE]), report)
