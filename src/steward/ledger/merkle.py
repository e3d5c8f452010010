"""The Merkle tree of a transparency log (RFC 9162 §2.1, the hashing of Certificate Transparency).

Leaves and interior nodes are hashed with different prefixes (0x00, 0x01), so a leaf can never pass for a
node. A tree of any size is defined over its leaves; what a log stores is the hash of every *complete*
subtree (``level``, ``index``: the 2**level leaves from index * 2**level), written once when its last leaf
is appended and never changed. From those, the hash of any prefix of the log, an inclusion proof and a
consistency proof each take O(log n) stored hashes, however large the log grows.

Written here rather than taken from a package: no maintained Python library implements RFC 9162 proofs
over a store of our own (the known-answer tests run the transparency-dev/merkle vectors).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

from steward.errors import ProofError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 MTH of one entry: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """An interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """The largest power of two smaller than n (n ≥ 2): where RFC 9162 splits a tree of n leaves."""
    return 1 << ((n - 1).bit_length() - 1)


class NodeStore(Protocol):
    """Where the hashes of complete subtrees live (memory, the audit database, the ledger's side file)."""

    def node(self, level: int, index: int) -> bytes: ...


class MemoryNodes:
    """Complete-subtree hashes in lists, one per level; appends in O(1) amortised."""

    def __init__(self, leaves: Sequence[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        for h in leaves:
            self.append(h)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; the (level, index, hash) of every subtree it completed, the leaf first."""
        new = completed_nodes(self, self.size, leaf)
        for level, _index, h in new:
            if level == len(self.levels):
                self.levels.append([])
            self.levels[level].append(h)
        return new

    def node(self, level: int, index: int) -> bytes:
        return self.levels[level][index]


def completed_nodes(store: NodeStore, size: int, leaf: bytes) -> list[tuple[int, int, bytes]]:
    """The nodes that appending ``leaf`` as entry ``size`` completes: the leaf, then each parent whose right
    child it just finished (as many as the trailing one bits of ``size``)."""
    out = [(0, size, leaf)]
    h, index, level = leaf, size, 0
    while index & 1:
        h = node_hash(store.node(level, index - 1), h)
        index >>= 1
        level += 1
        out.append((level, index, h))
    return out


def subtree_hash(store: NodeStore, lo: int, hi: int) -> bytes:
    """MTH of entries [lo, hi), where lo is a multiple of the split point, as in every RFC 9162 recursion."""
    n = hi - lo
    if n <= 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and lo % n == 0:
        return store.node(n.bit_length() - 1, lo // n)
    k = split(n)
    return node_hash(subtree_hash(store, lo, lo + k), subtree_hash(store, lo + k, hi))


def root(store: NodeStore, size: int) -> bytes:
    """The tree head's root hash over the first ``size`` entries."""
    return subtree_hash(store, 0, size)


def inclusion_proof(store: NodeStore, index: int, size: int) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(index, D[0:size]), leaf side first."""
    if not 0 <= index < size:
        raise ProofError(f"entry {index} is not in a tree of {size} entries")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split(hi - lo)
        if index < lo + k:
            path.append(subtree_hash(store, lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree_hash(store, lo, lo + k))
            lo += k
    return path[::-1]


def consistency_proof(store: NodeStore, old: int, new: int) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(old, D[0:new]): the hashes that show the first ``old`` entries unchanged."""
    if not 0 <= old <= new:
        raise ProofError(f"no consistency proof from size {old} to size {new}")
    if old in (0, new):
        return []
    path: list[bytes] = []
    lo, hi, whole = 0, new, True  # whole: D[lo:lo+m] is the old tree itself (SUBPROOF's flag b)
    m = old
    while m != hi - lo:
        k = split(hi - lo)
        if m <= k:
            path.append(subtree_hash(store, lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree_hash(store, lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        path.append(subtree_hash(store, lo, hi))
    return path[::-1]


def _check_hash(h: bytes, what: str) -> None:
    if len(h) != HASH_SIZE:
        raise ProofError(f"{what} is {len(h)} bytes, not a SHA-256 hash ({HASH_SIZE})")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2: the root that ``proof`` implies for ``leaf`` at ``index``."""
    if not 0 <= index < size:
        raise ProofError(f"entry {index} is not in a tree of {size} entries")
    _check_hash(leaf, "the leaf hash")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        _check_hash(p, "a proof hash")
        if sn == 0:
            raise ProofError(f"the inclusion proof is longer than a tree of {size} entries needs")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"the inclusion proof is shorter than a tree of {size} entries needs")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes) -> None:
    """Raise ``ProofError`` unless ``leaf`` is entry ``index`` of the tree with ``expected_root``."""
    _check_hash(expected_root, "the root hash")
    if root_from_inclusion(index, size, leaf, proof) != expected_root:
        raise ProofError(f"entry {index} is not in the tree of {size} entries with that root")


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162 §2.1.4.2: raise ``ProofError`` unless the tree (new, new_root) extends (old, old_root)."""
    if not 0 <= old <= new:
        raise ProofError(f"a log of {new} entries cannot extend one of {old}: entries were removed")
    if old == 0:  # every log extends the empty one; a verifier asking proves nothing (as transparency-dev)
        raise ProofError("a consistency proof from the empty tree proves nothing: check the newer tree alone")
    if old == new:
        if proof:
            raise ProofError(f"a consistency proof from size {old} to the same size must be empty")
        if old_root != new_root:
            raise ProofError(f"two different trees of {old} entries: the log was rewritten (or forked)")
        return
    if not proof:
        raise ProofError(f"an empty consistency proof cannot show size {old} grew into size {new}")
    _check_hash(old_root, "the old root hash")
    _check_hash(new_root, "the new root hash")
    for p in proof:
        _check_hash(p, "a proof hash")
    path = list(proof)
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"the consistency proof is longer than sizes {old} → {new} need")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise ProofError(f"the log of {new} entries is not an extension of the one of {old} entries "
                         "with that root: entries were changed, removed or reordered")
