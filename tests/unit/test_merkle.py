"""RFC 9162 Merkle code against the Certificate Transparency reference vectors, plus properties."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuroledger.core._merkle import (
    EMPTY_ROOT,
    MerkleTree,
    leaf_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from neuroledger.errors import InvalidProofError

VECTORS = json.loads((Path(__file__).parent / "data" / "rfc6962_vectors.json").read_text())
LEAVES = [bytes.fromhex(x) for x in VECTORS["leaves_hex"]]


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def reference_tree() -> MerkleTree:
    tree = MerkleTree()
    tree.extend([leaf_hash(x) for x in LEAVES])
    return tree


def test_empty_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert MerkleTree().root() == EMPTY_ROOT == root_of([])


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_of_the_reference_tree(size: int) -> None:
    tree = reference_tree()
    assert tree.root(size).hex() == VECTORS["roots_hex"][size - 1]
    assert root_of([leaf_hash(x) for x in LEAVES[:size]]) == tree.root(size)


@pytest.mark.parametrize(
    "case", VECTORS["inclusion"], ids=lambda c: f"{c['leafIdx']}-of-{c['treeSize']}"
)
def test_inclusion_vectors(case: dict) -> None:
    proof = [b64(p) for p in case["proof"] or []]
    tree = reference_tree()
    assert tree.inclusion_proof(case["leafIdx"], case["treeSize"]) == proof
    assert tree.leaf(case["leafIdx"]) == b64(case["leafHash"])
    verify_inclusion(
        b64(case["leafHash"]), case["leafIdx"], case["treeSize"], proof, b64(case["root"])
    )


@pytest.mark.parametrize(
    "case", VECTORS["consistency"], ids=lambda c: f"{c['size1']}-to-{c['size2']}"
)
def test_consistency_vectors(case: dict) -> None:
    proof = [b64(p) for p in case["proof"] or []]
    tree = reference_tree()
    if case["size1"] != case["size2"]:
        assert tree.consistency_proof(case["size1"], case["size2"]) == proof
    verify_consistency(case["size1"], case["size2"], proof, b64(case["root1"]), b64(case["root2"]))


def inclusion_mutations(case: dict) -> list[tuple[str, tuple]]:
    """The reference suite's ways of breaking a valid inclusion proof."""
    leaf, idx, size = b64(case["leafHash"]), case["leafIdx"], case["treeSize"]
    proof, root = [b64(p) for p in case["proof"] or []], b64(case["root"])
    out = [
        ("leafIdx+1", (leaf, idx + 1, size, proof, root)),
        ("leafIdx-1", (leaf, idx - 1, size, proof, root)),
        ("leafIdx^2", (leaf, idx ^ 2, size, proof, root)),
        ("treeSize*2", (leaf, idx, size * 2, proof, root)),
        ("treeSize/2", (leaf, idx, size // 2, proof, root)),
        ("wrong leaf", (leaf_hash(b"WrongLeaf"), idx, size, proof, root)),
        ("empty root", (leaf, idx, size, proof, b"")),
        ("random root", (leaf, idx, size, proof, leaf_hash(b"random"))),
        ("preceding garbage", (leaf, idx, size, [leaf_hash(b"g"), *proof], root)),
        ("trailing garbage", (leaf, idx, size, [*proof, leaf_hash(b"g")], root)),
        ("preceding root", (leaf, idx, size, [root, *proof], root)),
        ("trailing root", (leaf, idx, size, [*proof, root], root)),
    ]
    for i in range(len(proof)):
        broken = list(proof)
        broken[i] = bytes([broken[i][0] ^ 8]) + broken[i][1:]
        out.append((f"modified proof[{i}]", (leaf, idx, size, broken, root)))
        out.append((f"removed proof[{i}]", (leaf, idx, size, proof[:i] + proof[i + 1 :], root)))
    return out


@pytest.mark.parametrize(
    "case", VECTORS["inclusion"], ids=lambda c: f"{c['leafIdx']}-of-{c['treeSize']}"
)
def test_every_mutated_inclusion_vector_fails(case: dict) -> None:
    for name, args in inclusion_mutations(case):
        with pytest.raises(InvalidProofError):
            verify_inclusion(*args)
            pytest.fail(f"mutation {name!r} verified")


@pytest.mark.parametrize(
    "case", VECTORS["consistency"], ids=lambda c: f"{c['size1']}-to-{c['size2']}"
)
def test_every_mutated_consistency_vector_fails(case: dict) -> None:
    s1, s2 = case["size1"], case["size2"]
    proof, r1, r2 = [b64(p) for p in case["proof"] or []], b64(case["root1"]), b64(case["root2"])
    junk = leaf_hash(b"junk")
    mutations = [
        ("size1+1", (s1 + 1, s2, proof, r1, r2)),
        ("size1-1", (s1 - 1, s2, proof, r1, r2)),
        ("size2*2", (s1, s2 * 2, proof, r1, r2)),
        ("size2/2", (s1, s2 // 2, proof, r1, r2)),
        ("swapped roots", (s1, s2, proof, r2, r1) if r1 != r2 else (s1, s2, proof, junk, r1)),
        ("wrong root1", (s1, s2, proof, junk, r2)),
        ("wrong root2", (s1, s2, proof, r1, junk)),
        ("trailing garbage", (s1, s2, [*proof, junk], r1, r2)),
        ("preceding garbage", (s1, s2, [junk, *proof], r1, r2)),
    ]
    for i in range(len(proof)):
        broken = list(proof)
        broken[i] = bytes([broken[i][0] ^ 16]) + broken[i][1:]
        mutations.append((f"modified proof[{i}]", (s1, s2, broken, r1, r2)))
        mutations.append((f"truncated at {i}", (s1, s2, proof[:i], r1, r2)))
    for name, args in mutations:
        if (args[0] <= 0 and not args[2]) or (args[:2] == (s1, s2) and name.startswith("size")):
            continue  # from the empty tree everything is consistent; unchanged sizes
        with pytest.raises(InvalidProofError):
            verify_consistency(*args)
            pytest.fail(f"mutation {name!r} verified")


def test_bad_sizes_are_refused() -> None:
    tree = reference_tree()
    with pytest.raises(InvalidProofError, match="beyond"):
        tree.inclusion_proof(0, 9)
    with pytest.raises(InvalidProofError, match="not in a tree"):
        tree.inclusion_proof(8, 8)
    with pytest.raises(InvalidProofError):
        tree.consistency_proof(5, 4)
    with pytest.raises(InvalidProofError, match="32 bytes"):
        verify_inclusion(tree.leaf(0), 0, 2, [b"short"], tree.root(2))


# -- properties ----------------------------------------------------------------------

sizes = st.integers(min_value=1, max_value=300)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), size=sizes)
def test_every_inclusion_proof_verifies_and_every_mutation_fails(data, size: int) -> None:
    tree = MerkleTree()
    tree.extend([leaf_hash(i.to_bytes(4, "big")) for i in range(size)])
    n = data.draw(st.integers(min_value=1, max_value=size), label="tree size")
    index = data.draw(st.integers(min_value=0, max_value=n - 1), label="index")
    proof = tree.inclusion_proof(index, n)
    root = tree.root(n)
    assert root == root_of([tree.leaf(i) for i in range(n)])
    verify_inclusion(tree.leaf(index), index, n, proof, root)
    if proof:
        i = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="hash")
        bit = data.draw(st.integers(min_value=0, max_value=255), label="bit")
        broken = list(proof)
        broken[i] = (int.from_bytes(broken[i], "big") ^ (1 << bit)).to_bytes(32, "big")
        with pytest.raises(InvalidProofError):
            verify_inclusion(tree.leaf(index), index, n, broken, root)
        with pytest.raises(InvalidProofError):
            verify_inclusion(tree.leaf(index), index, n, proof[:-1], root)
    with pytest.raises(InvalidProofError):
        verify_inclusion(tree.leaf(index), index, n, [*proof, root], root)
    other = data.draw(st.integers(min_value=0, max_value=n - 1), label="other index")
    if other != index:
        with pytest.raises(InvalidProofError):
            verify_inclusion(tree.leaf(index), other, n, proof, root)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), size=sizes)
def test_every_consistency_proof_verifies_and_every_mutation_fails(data, size: int) -> None:
    tree = MerkleTree()
    tree.extend([leaf_hash(i.to_bytes(4, "big")) for i in range(size)])
    new = data.draw(st.integers(min_value=1, max_value=size), label="new")
    old = data.draw(st.integers(min_value=1, max_value=new), label="old")
    proof = tree.consistency_proof(old, new) if old != new else []
    verify_consistency(old, new, proof, tree.root(old), tree.root(new))
    if proof:
        i = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="hash")
        broken = list(proof)
        broken[i] = bytes([broken[i][0] ^ 1]) + broken[i][1:]
        with pytest.raises(InvalidProofError):
            verify_consistency(old, new, broken, tree.root(old), tree.root(new))
        with pytest.raises(InvalidProofError):
            verify_consistency(old, new, proof[1:], tree.root(old), tree.root(new))
        with pytest.raises(InvalidProofError):
            verify_consistency(old, new, [*proof, proof[0]], tree.root(old), tree.root(new))
        with pytest.raises(InvalidProofError):
            verify_consistency(old, new, proof, leaf_hash(b"x"), tree.root(new))
