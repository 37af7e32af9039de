"""An asset's lineage for its page: ancestors and descendants, as a drawn graph and as
nested lists a reader can fold.

Both come from the index's parent edges (``AssetRegistered``'s parents), walked breadth
first up to ``depth`` generations each way and at most ``cap`` assets in all, so a page
stays small however wide the lineage is; the page says when it was cut.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Lineage", "lineage"]

_COLUMN = 190  # px between generations
_ROW = 34  # px between assets of one generation
_BOX = (160, 24)


@dataclass
class Lineage:
    """The assets around one asset: generation -> keys, the edges, and folding trees."""

    root: str
    generations: dict[int, list[str]] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)  # (parent, child)
    titles: dict[str, str] = field(default_factory=dict)
    cut: bool = False

    def tree(self, up: bool) -> list[dict[str, Any]]:
        """Nested ``{key, title, children}`` from the root outwards (parents if ``up``)."""
        seen: set[str] = set()

        def grow(key: str, gen: int) -> list[dict[str, Any]]:
            step = -1 if up else 1
            nxt = self.generations.get(gen + step, [])
            linked = [k for k in nxt if ((k, key) if up else (key, k)) in self.edges]
            out = []
            for k in linked:
                first = k not in seen
                seen.add(k)
                out.append({"key": k, "title": self.titles.get(k, ""),
                            "children": grow(k, gen + step) if first else [], "again": not first})  # fmt: skip
            return out

        return grow(self.root, 0)

    def drawing(self) -> dict[str, Any]:
        """Boxes and arrows for an SVG: ancestors to the left, descendants to the right."""
        gens = sorted(self.generations)
        tallest = max((len(v) for v in self.generations.values()), default=1)
        height = tallest * _ROW + 16
        x0 = -gens[0] * _COLUMN + 8 if gens else 8
        place: dict[str, tuple[int, int]] = {}
        boxes = []
        for g in gens:
            keys = self.generations[g]
            top = (height - len(keys) * _ROW) // 2
            for i, k in enumerate(keys):
                x, y = x0 + g * _COLUMN, top + i * _ROW + 4
                place[k] = (x, y)
                boxes.append({"key": k, "x": x, "y": y, "label": k[:10] + "…" + k[-4:],
                              "title": self.titles.get(k, ""), "root": k == self.root})  # fmt: skip
        w, h = _BOX
        arrows = [
            {"x1": place[p][0] + w, "y1": place[p][1] + h // 2,
             "x2": place[c][0], "y2": place[c][1] + h // 2}
            for p, c in sorted(self.edges) if p in place and c in place
        ]  # fmt: skip
        width = (gens[-1] - gens[0] + 1) * _COLUMN if gens else _COLUMN
        return {"width": width, "height": height, "boxes": boxes, "arrows": arrows,
                "box_w": w, "box_h": h}  # fmt: skip


def lineage(db: sqlite3.Connection, root: str, *, depth: int = 3, cap: int = 60) -> Lineage:
    """The ancestors and descendants of asset ``root`` up to ``depth`` generations each."""
    root = root.lower()
    found = Lineage(root=root, generations={0: [root]})
    placed = {root}
    for up in (True, False):
        frontier = [root]
        for step in range(1, depth + 1):
            nxt: list[str] = []
            for key in frontier:
                sql = ("SELECT parent FROM edges WHERE child = ?" if up
                       else "SELECT child FROM edges WHERE parent = ?")  # fmt: skip
                for (other,) in db.execute(sql + " ORDER BY block, 1", (key,)).fetchall():
                    found.edges.add((other, key) if up else (key, other))
                    if other in placed:
                        continue
                    if len(placed) >= cap:
                        found.cut = True
                        continue
                    placed.add(other)
                    nxt.append(other)
            if not nxt:
                break
            found.generations[-step if up else step] = nxt
            frontier = nxt
        else:
            far = frontier and db.execute(
                "SELECT 1 FROM edges WHERE " + ("child" if up else "parent") + " IN ("
                + ",".join("?" * len(frontier)) + ") LIMIT 1", frontier).fetchone()  # fmt: skip
            found.cut = found.cut or bool(far)
    keys = sorted(placed)
    rows = db.execute(
        "SELECT key, title FROM entities WHERE kind = 'asset' AND key IN ("
        + ",".join("?" * len(keys)) + ")", keys).fetchall()  # fmt: skip
    found.titles = {k: t or "" for k, t in rows}
    # edges whose ends were cut away are not drawn; keep only placed ends
    found.edges = {(p, c) for p, c in found.edges if p in placed and c in placed}
    return found
