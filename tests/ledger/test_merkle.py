"""The RFC 9162 Merkle tree: known answers (transparency-dev/merkle's vectors), then properties on random sizes."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steward.errors import ProofError
from steward.ledger import merkle

VECTORS = json.loads((Path(__file__).parents[1] / "fixtures" / "merkle" / "vectors.json").read_text())
# transparency-dev/merkle testonly/constants.go: the eight leaf inputs and the root of every prefix
LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                     "606162636465666768696a6b6c6d6e6f")]
ROOTS = ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
         "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
         "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
         "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
         "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
         "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
         "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
         "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
         "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]
TREE = merkle.MemoryNodes([merkle.leaf_hash(x) for x in LEAVES])


def b64(v: str | None) -> bytes:
    return base64.b64decode(v or "")


def hashes(v: list[str] | None) -> list[bytes]:
    return [b64(h) for h in v or []]


def naive_root(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 9162 §2.1.1, over the leaf hashes."""
    if not leaves:
        return merkle.EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = merkle.split(len(leaves))
    return merkle.node_hash(naive_root(leaves[:k]), naive_root(leaves[k:]))


@pytest.mark.parametrize("size", range(9))
def test_root_of_every_prefix_is_the_reference_root(size: int) -> None:
    assert merkle.root(TREE, size).hex() == ROOTS[size]


@pytest.mark.parametrize("case", VECTORS["inclusion"], ids=lambda c: c["file"].removeprefix("testdata/"))
def test_inclusion_vectors(case: dict) -> None:
    args = (case["leafIdx"], case["treeSize"], b64(case["leafHash"]), hashes(case["proof"]), b64(case["root"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(*args)
        return
    merkle.verify_inclusion(*args)
    if case["treeSize"] <= len(LEAVES) and case["root"] and b64(case["root"]) == merkle.root(TREE, case["treeSize"]):
        # the same tree as ours: we must also produce the reference proof, hash for hash
        assert merkle.inclusion_proof(TREE, case["leafIdx"], case["treeSize"]) == hashes(case["proof"])


@pytest.mark.parametrize("case", VECTORS["consistency"], ids=lambda c: c["file"].removeprefix("testdata/"))
def test_consistency_vectors(case: dict) -> None:
    args = (case["size1"], case["size2"], b64(case["root1"]), b64(case["root2"]), hashes(case["proof"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_consistency(*args)
        return
    merkle.verify_consistency(*args)
    if case["size2"] <= len(LEAVES):
        assert merkle.consistency_proof(TREE, case["size1"], case["size2"]) == hashes(case["proof"])


def test_the_reference_happy_paths_were_all_reproduced() -> None:
    """Guards the two tests above against skipping their proof-generation check for every case."""
    happy = [c for c in VECTORS["inclusion"] + VECTORS["consistency"] if c["desc"] == "happy path"]
    assert len(happy) == 10
    assert all(c.get("treeSize", c.get("size2")) <= len(LEAVES) for c in happy)


def _tree(n: int) -> tuple[merkle.MemoryNodes, list[bytes]]:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    return merkle.MemoryNodes(leaves), leaves


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 600), st.data())
def test_inclusion_proofs_verify_and_stay_logarithmic(n: int, data: st.DataObject) -> None:
    tree, leaves = _tree(n)
    assert merkle.root(tree, n) == naive_root(leaves)
    i = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(tree, i, n)
    assert len(proof) <= math.ceil(math.log2(n))
    merkle.verify_inclusion(i, n, leaves[i], proof, merkle.root(tree, n))
    if proof:  # any flipped bit, and any other entry's hash, fails
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:k], bytes([proof[k][0] ^ 1]) + proof[k][1:], *proof[k + 1:]]
        with pytest.raises(ProofError):
            merkle.verify_inclusion(i, n, leaves[i], bad, merkle.root(tree, n))
        with pytest.raises(ProofError):
            merkle.verify_inclusion(i, n, leaves[(i + 1) % n], proof, merkle.root(tree, n))


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 600), st.data())
def test_consistency_proofs_verify_and_catch_a_rewrite(n: int, data: st.DataObject) -> None:
    tree, leaves = _tree(n)
    m = data.draw(st.integers(1, n - 1))
    proof = merkle.consistency_proof(tree, m, n)
    assert len(proof) <= 2 * math.ceil(math.log2(n))
    merkle.verify_consistency(m, n, merkle.root(tree, m), merkle.root(tree, n), proof)
    # rewrite one of the first m entries and recompute everything: no proof can join the two heads
    j = data.draw(st.integers(0, m - 1))
    forged, _ = _tree(0)
    for k, h in enumerate(leaves):
        forged.append(merkle.leaf_hash(b"edited") if k == j else h)
    with pytest.raises(ProofError):
        merkle.verify_consistency(m, n, merkle.root(tree, m), merkle.root(forged, n),
                                  merkle.consistency_proof(forged, m, n))


def test_truncation_and_a_fork_are_named() -> None:
    tree, _ = _tree(10)
    other, _ = _tree(0)
    for i in range(10):
        other.append(merkle.leaf_hash(b"fork" + bytes([i])))
    with pytest.raises(ProofError, match="entries were removed"):
        merkle.verify_consistency(10, 6, merkle.root(tree, 10), merkle.root(tree, 6), [])
    with pytest.raises(ProofError, match="rewritten"):
        merkle.verify_consistency(10, 10, merkle.root(tree, 10), merkle.root(other, 10), [])


def test_appending_completes_each_subtree_once() -> None:
    tree = merkle.MemoryNodes()
    done = [tree.append(merkle.leaf_hash(bytes([i]))) for i in range(8)]
    assert [len(d) for d in done] == [1, 2, 1, 3, 1, 2, 1, 4]  # 1 + trailing one bits of the index
    assert done[-1][-1] == (3, 0, merkle.root(tree, 8))
