"""The marketplace's lineage walk, in Python: the same rule the contract applies.

A listing's contributors are the asset's distinct ancestors up to :data:`MAX_DEPTH`
generations, at most :data:`MAX_CONTRIBUTORS` of them. Nodes are expanded breadth-first
in the order their parents were registered; a generation that would pass the limit is
left out with every deeper one. The contract checks each expanded node's parent list
against the asset registry's ``parentsDigest``, so the lister must send exactly the
lists this walk reads, in this order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["MAX_CONTRIBUTORS", "MAX_DEPTH", "Walk", "walk_lineage"]

#: Generations the walk reaches, and the most contributors a listing pays.
MAX_DEPTH = 3
MAX_CONTRIBUTORS = 32


@dataclass(frozen=True)
class Walk:
    """The nodes the walk expanded with the parent lists it read (the listing's
    ``lineage`` argument), and the contributors it found, in contract order, with each
    one's generation."""

    expanded: list[str]
    lists: list[list[str]]
    ancestors: list[str]
    depth: dict[str, int]


def walk_lineage(asset: str, parents_of: Callable[[str], Sequence[str]]) -> Walk:
    """Walk ``asset``'s lineage; ``parents_of`` gives a node's registered parents in order."""
    expanded: list[str] = []
    lists: list[list[str]] = []
    found: list[str] = []
    depth: dict[str, int] = {}
    level = [asset]
    for generation in range(1, MAX_DEPTH + 1):
        following: list[str] = []
        full = False
        for node in level:
            parents = list(parents_of(node))
            expanded.append(node)
            lists.append(parents)
            for parent in parents:
                if parent == asset or parent in found or parent in following:
                    continue
                if len(found) + len(following) == MAX_CONTRIBUTORS:
                    full = True
                    break
                following.append(parent)
            if full:
                break
        if full or not following:
            break
        found.extend(following)
        depth.update(dict.fromkeys(following, generation))
        level = following
    return Walk(expanded=expanded, lists=lists, ancestors=found, depth=depth)
