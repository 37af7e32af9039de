"""Primitives every feature builds on: RFC 8785 canonical JSON and RFC 9162 Merkle trees.

This package imports nothing of NeuroLedger but :mod:`neuroledger.errors`; feature
packages (provenance, audit, federated, privacy) share it instead of each other's
internals.

>>> from neuroledger.core import MerkleTree, canonical, leaf_hash
>>> tree = MerkleTree()
>>> tree.append(leaf_hash(canonical({"event": "start"})))
0
>>> len(tree.root(1))
32
"""

from typing import TYPE_CHECKING

from neuroledger._lazy import lazy_exports

if TYPE_CHECKING:
    from neuroledger.core._jcs import canonical, digest_of
    from neuroledger.core._merkle import (
        EMPTY_ROOT,
        HASH_SIZE,
        MerkleTree,
        leaf_hash,
        node_hash,
        root_of,
        verify_consistency,
        verify_inclusion,
    )

__getattr__, __dir__ = lazy_exports(__name__, __file__)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "canonical",
    "digest_of",
    "leaf_hash",
    "node_hash",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]
