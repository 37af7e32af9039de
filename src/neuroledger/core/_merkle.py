"""RFC 9162 Merkle trees: hashing, an append-only tree, inclusion and consistency proofs.

Leaf hash ``SHA-256(0x00 || entry)``, node hash ``SHA-256(0x01 || left || right)``
(RFC 9162 §2.1.1). Proof generation follows §2.1.3.1 and §2.1.4.1; verification
follows §2.1.3.2 and §2.1.4.2 and fails unless every proof hash is consumed and
the result matches exactly.

>>> tree = MerkleTree()
>>> for entry in (b"a", b"b", b"c"):
...     _ = tree.append(leaf_hash(entry))
>>> proof = tree.inclusion_proof(2, 3)
>>> verify_inclusion(leaf_hash(b"c"), 2, 3, proof, tree.root(3))
>>> verify_consistency(2, 3, tree.consistency_proof(2, 3), tree.root(2), tree.root(3))
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from neuroledger.errors import InvalidProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "leaf_hash",
    "node_hash",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
#: The root of the empty tree: SHA-256 of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 leaf hash of ``entry``."""
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over a list of leaf hashes (reference implementation, O(n))."""
    if not leaf_hashes:
        return EMPTY_ROOT
    if len(leaf_hashes) == 1:
        return leaf_hashes[0]
    k = _split(len(leaf_hashes))
    return node_hash(root_of(leaf_hashes[:k]), root_of(leaf_hashes[k:]))


class MerkleTree:
    """An append-only Merkle tree keeping the hash of every complete subtree.

    ``levels[h]`` holds, 32 bytes each, the hashes of the complete subtrees of
    height ``h`` in order; any subtree hash is then one lookup, and proofs cost
    O(log n) lookups and hashes.
    """

    def __init__(self) -> None:
        self.levels: list[bytearray] = [bytearray()]

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self.levels[0]) // HASH_SIZE

    def append(self, leaf: bytes) -> int:
        """Append a leaf hash; return its index."""
        index = self.size
        self.extend([leaf])
        return index

    def extend(self, leaves: Sequence[bytes]) -> None:
        """Append many leaf hashes, level by level (much faster than one by one)."""
        if not leaves:
            return
        old = self.size
        self.levels[0] += b"".join(leaves)
        new = old + len(leaves)
        sha = _sha256
        h = 0
        while (new >> (h + 1)) > (old >> (h + 1)):
            below = self.levels[h]
            if h + 1 == len(self.levels):
                self.levels.append(bytearray())
            above = self.levels[h + 1]
            view = memoryview(below)
            first, last = old >> (h + 1), new >> (h + 1)
            above += b"".join(
                sha(b"\x01" + view[64 * i : 64 * i + 64]).digest() for i in range(first, last)
            )
            h += 1

    def leaf(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        return bytes(self.levels[0][index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def _complete(self, height: int, index: int) -> bytes:
        return bytes(self.levels[height][index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def subtree(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for a range that RFC 9162's recursion produces (lo aligned)."""
        n = hi - lo
        if n & (n - 1) == 0:  # complete subtree, aligned by construction
            height = n.bit_length() - 1
            return self._complete(height, lo >> height)
        k = _split(n)
        return node_hash(self.subtree(lo, lo + k), self.subtree(lo + k, hi))

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (all by default)."""
        size = self.size if size is None else size
        self._check_size(size)
        return EMPTY_ROOT if size == 0 else self.subtree(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The audit path of leaf ``index`` in the tree of the first ``size`` leaves."""
        self._check_size(size)
        if not 0 <= index < size:
            raise InvalidProofError(f"leaf {index} is not in a tree of size {size}")
        proof: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            k = _split(hi - lo)
            if index < lo + k:
                proof.append(self.subtree(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self.subtree(lo, lo + k))
                lo += k
        proof.reverse()
        return proof

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """The proof that the tree of size ``old`` is a prefix of the tree of size ``new``."""
        self._check_size(new)
        if not 0 < old <= new:
            raise InvalidProofError(f"no consistency proof from size {old} to size {new}")
        proof: list[bytes] = []
        lo, hi, m, complete = 0, new, old, True
        while True:
            n = hi - lo
            if m == n:
                if not complete:
                    proof.append(self.subtree(lo, hi))
                break
            k = _split(n)
            if m <= k:
                proof.append(self.subtree(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self.subtree(lo, lo + k))
                lo, m, complete = lo + k, m - k, False
        proof.reverse()
        return proof

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise InvalidProofError(f"tree size {size} is beyond the log's {self.size} entries")


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an inclusion proof (RFC 9162 §2.1.3.2); raise :class:`InvalidProofError`."""
    if not 0 <= index < size:
        raise InvalidProofError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != HASH_SIZE:
            raise InvalidProofError("inclusion proof holds a hash that is not 32 bytes")
        if sn == 0:
            raise InvalidProofError("inclusion proof is longer than the tree allows")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProofError("inclusion proof is shorter than the tree requires")
    if r != root:
        raise InvalidProofError("inclusion proof does not lead to the root")


def verify_consistency(
    old: int, new: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """Check a consistency proof (RFC 9162 §2.1.4.2); raise :class:`InvalidProofError`."""
    if any(len(p) != HASH_SIZE for p in proof):
        raise InvalidProofError("consistency proof holds a hash that is not 32 bytes")
    if not 0 <= old <= new:
        raise InvalidProofError(f"size {old} cannot precede size {new}")
    if old == new:
        if proof:
            raise InvalidProofError("consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise InvalidProofError("equal tree sizes with different roots")
        return
    if old == 0:
        if proof:
            raise InvalidProofError("consistency proof from the empty tree must be empty")
        return
    if not proof:
        raise InvalidProofError("consistency proof is empty")
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise InvalidProofError("consistency proof is longer than the trees allow")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProofError("consistency proof is shorter than the trees require")
    if fr != old_root or sr != new_root:
        raise InvalidProofError("consistency proof does not lead to both roots")
