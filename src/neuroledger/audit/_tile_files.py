"""The files of a tile log: which bundles and tiles a growth writes, how they are written
(temporary name, fsync, rename, directory fsync), and the clean-up of a crashed write."""

from __future__ import annotations

import os
import secrets
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from neuroledger._fs import fsync_dir
from neuroledger.audit._tiles import TILE_WIDTH, encode_bundle, entries_path, tile_path
from neuroledger.core import HASH_SIZE, MerkleTree

__all__ = [
    "drop_superseded_partials",
    "resource_path",
    "sweep_uncommitted",
    "tile_files",
    "write_files",
]


def resource_path(level: int | None, index: int, width: int | None = None) -> str:
    """The path of an entry bundle (level None) or a tile."""
    if level is None:
        return entries_path(index, width=width)
    return tile_path(level, index, width=width)


def sweep_uncommitted(root: Path, size: int) -> None:
    """Remove tiles and bundles a crashed materialization wrote beyond the committed size."""
    for leftover in (root / "tile").rglob(".*.tmp") if (root / "tile").exists() else ():
        leftover.unlink(missing_ok=True)
    levels: list[int | None] = [None]
    level = 0
    while (root / "tile" / str(level)).exists():
        levels.append(level)
        level += 1
    for lvl in levels:
        nodes = size // TILE_WIDTH ** (lvl or 0)
        full, width = divmod(nodes, TILE_WIDTH)
        index = full
        while True:  # uncommitted full tiles are contiguous from the first missing one
            path = root / resource_path(lvl, index)
            if not path.exists():
                break
            path.unlink()
            index += 1
        for tile in (full, full + 1):
            partial_dir = root / (resource_path(lvl, tile) + ".p")
            if not partial_dir.is_dir():
                continue
            for child in partial_dir.iterdir():
                too_wide = tile > full or not child.name.isdigit() or int(child.name) > width
                if too_wide or child.name.startswith("."):
                    child.unlink()


def tile_files(
    tree: MerkleTree, pending: list[bytes], old: int, new: int, entries: list[bytes]
) -> dict[str, bytes]:
    """The bundles and tiles that grow the log from ``old`` to ``new`` entries, by path."""
    files: dict[str, bytes] = {}
    # Entry bundles from the one holding `old` to the one holding `new - 1`.
    stream = pending + entries
    base = (old // TILE_WIDTH) * TILE_WIDTH
    for bundle in range(old // TILE_WIDTH, (new - 1) // TILE_WIDTH + 1):
        lo = bundle * TILE_WIDTH
        hi = min(lo + TILE_WIDTH, new)
        files[entries_path(bundle, width=hi - lo)] = encode_bundle(stream[lo - base : hi - base])
    # Tiles: at level L, the hashes of complete subtrees of 256**L leaves.
    level = 0
    while new // TILE_WIDTH**level:
        nodes_old = old // TILE_WIDTH**level
        nodes_new = new // TILE_WIDTH**level
        hashes = tree.levels[8 * level]
        first_tile = nodes_old // TILE_WIDTH
        last_tile = (nodes_new - 1) // TILE_WIDTH
        for tile in range(first_tile, last_tile + 1):
            lo = tile * TILE_WIDTH
            hi = min(lo + TILE_WIDTH, nodes_new)
            if hi <= lo:
                continue
            files[tile_path(level, tile, width=hi - lo)] = bytes(
                hashes[lo * HASH_SIZE : hi * HASH_SIZE]
            )
        level += 1
    return files


def drop_superseded_partials(root: Path, files: dict[str, bytes]) -> None:
    """Delete the partial versions of tiles and bundles that are now full (the spec allows it)."""
    for rel in files:
        if ".p/" in rel:
            continue
        partial_dir = root / (rel + ".p")
        if partial_dir.is_dir():
            shutil.rmtree(partial_dir, ignore_errors=True)


def write_files(root: Path, files: dict[str, bytes]) -> None:
    """Write every file to a temporary name and fsync it, then rename all and fsync dirs.

    Files are written by a few threads at once: creating and syncing a file
    is a system call that waits, and the calls overlap.
    """
    token = secrets.token_hex(4)
    targets = [root / rel for rel in files]
    for parent in {t.parent for t in targets}:
        parent.mkdir(parents=True, exist_ok=True)

    def stage(target: Path, data: bytes) -> tuple[Path, Path]:
        tmp = target.with_name(f".{target.name}.{token}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        return tmp, target

    if len(files) > 4:
        with ThreadPoolExecutor(max_workers=8) as pool:
            staged = list(pool.map(stage, targets, files.values()))
    else:
        staged = [stage(t, d) for t, d in zip(targets, files.values(), strict=True)]
    dirs = set()
    for tmp, target in staged:
        os.replace(tmp, target)
        dirs.add(target.parent)
    for directory in dirs:
        fsync_dir(directory)
