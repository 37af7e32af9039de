"""Reads of the lineage index that walk its graph or compare manifests."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

__all__ = ["closest", "edges", "paths", "walk"]


def walk(db: sqlite3.Connection, asset_id: str, column: str) -> dict[str, int]:
    """Assets reachable from ``asset_id`` along ``column`` (parent: up, child: down), by depth."""
    join = "p.child = w.id" if column == "parent" else "p.parent = w.id"
    rows = db.execute(
        f"""
        WITH RECURSIVE walk(id, depth) AS (
            SELECT ?, 0
            UNION
            SELECT p.{column}, w.depth + 1 FROM parents p JOIN walk w ON {join}
        )
        SELECT id, MIN(depth) FROM walk WHERE depth > 0 GROUP BY id
        """,
        (asset_id,),
    ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def edges(db: sqlite3.Connection, ids: Iterable[str]) -> list[tuple[str, str]]:
    """(child, parent) edges among ``ids``."""
    wanted = set(ids)
    out = []
    for child in sorted(wanted):
        for (parent,) in db.execute(
            "SELECT parent FROM parents WHERE child = ? ORDER BY position", (child,)
        ):
            if parent in wanted:
                out.append((child, str(parent)))
    return out


def paths(db: sqlite3.Connection, descendant: str, ancestor: str, *, limit: int = 100
          ) -> list[list[str]]:  # fmt: skip
    """Derivation paths from ``descendant`` up to ``ancestor`` (at most ``limit``)."""
    reachable = set(walk(db, descendant, "parent"))
    if ancestor not in reachable:
        return []
    reachable.add(ancestor)
    found: list[list[str]] = []

    def extend(path: list[str]) -> None:
        if len(found) >= limit:
            return
        here = path[-1]
        if here == ancestor:
            found.append(path)
            return
        for (parent,) in db.execute(
            "SELECT parent FROM parents WHERE child = ? ORDER BY position", (here,)
        ):
            if parent in reachable:
                extend([*path, str(parent)])

    extend([descendant])
    return found


def closest(db: sqlite3.Connection, model_name: str, files: Iterable[tuple[str, str]]
            ) -> str | None:  # fmt: skip
    """The asset whose manifest shares the most files with ``files`` (or, failing
    that, has the same model name); None when nothing is alike."""
    pairs = list(files)
    best: dict[str, int] = {}
    for name, digest in pairs:
        for (asset,) in db.execute(
            "SELECT f.asset FROM files f JOIN assets a ON a.id = f.asset "
            "WHERE f.digest = ? AND f.name = ?",
            (digest, name),
        ):
            best[asset] = best.get(asset, 0) + 1
    if best:
        return max(sorted(best), key=lambda a: best[a])
    row = db.execute(
        "SELECT f.asset FROM files f JOIN assets a ON a.id = f.asset WHERE f.model_name = ? "
        "ORDER BY a.block DESC LIMIT 1",
        (model_name,),
    ).fetchone()
    return None if row is None else str(row[0])
