"""Exact and near-duplicate detection (MinHash LSH via datasketch), with label-conflict findings.

The first occurrence of a text is kept; later copies are dropped with a reason naming the kept row.
Copies whose labels disagree are a finding of their own: they are label noise, not just redundancy.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from steward.data.config import DedupConfig
from steward.hashing import sha256_text

_NON_WORD = re.compile(r"[\W_]+")


def dedup_key(text: str) -> str:
    """Case-, space- and punctuation-insensitive key: 'Hello, World!' and 'hello world' collide."""
    return sha256_text(_NON_WORD.sub(" ", text.casefold()).strip())


def shingles(text: str, kind: str, n: int) -> set[bytes]:
    norm = _NON_WORD.sub(" ", text.casefold()).strip()
    if kind == "word":
        words = norm.split()
        if len(words) < n:
            return {" ".join(words).encode()} if words else {b""}
        return {" ".join(words[i:i + n]).encode() for i in range(len(words) - n + 1)}
    if len(norm) < n:
        return {norm.encode()}
    return {norm[i:i + n].encode() for i in range(len(norm) - n + 1)}


@dataclass
class DedupResult:
    """Row positions to drop with a reason and the row_id each one duplicates."""

    drop: dict[int, tuple[str, int]] = field(default_factory=dict)  # position -> (reason, kept row_id)
    exact_groups: int = 0
    near_pairs: int = 0
    conflicts: list[dict[str, object]] = field(default_factory=list)


def find_exact(texts: Sequence[str], labels: Sequence[str], row_ids: Sequence[int], result: DedupResult) -> None:
    groups: dict[str, list[int]] = defaultdict(list)
    for pos, t in enumerate(texts):
        groups[dedup_key(t)].append(pos)
    for members in groups.values():
        if len(members) < 2:
            continue
        result.exact_groups += 1
        counts = Counter(labels[p] for p in members)
        if len(counts) == 1:
            keep = members[0]
            for p in members[1:]:
                result.drop[p] = ("duplicate_exact", row_ids[keep])
            continue
        (top, n_top), *rest = counts.most_common()
        tie = rest and rest[0][1] == n_top
        result.conflicts.append({"kind": "exact", "row_ids": [row_ids[p] for p in members],
                                 "labels": dict(counts), "resolution": "all dropped (tie)" if tie
                                 else f"kept majority label {top!r}"})
        if tie:
            for p in members:
                result.drop[p] = ("duplicate_label_conflict", -1)
        else:
            keep = next(p for p in members if labels[p] == top)
            for p in members:
                if p != keep:
                    reason = "duplicate_exact" if labels[p] == top else "duplicate_label_conflict"
                    result.drop[p] = (reason, row_ids[keep])


def minhashes(texts: Sequence[str], cfg: DedupConfig) -> list:  # type: ignore[type-arg]
    from datasketch import MinHash

    return MinHash.bulk((shingles(t, cfg.shingle, cfg.ngram) for t in texts), num_perm=cfg.num_perm, seed=cfg.seed)


def _lsh(cfg: DedupConfig):  # type: ignore[no-untyped-def]
    """An LSH index for candidate retrieval. Candidates are then confirmed against ``cfg.threshold``;
    the index itself is capped at 0.9 because datasketch cannot band a higher threshold (b < 2)."""
    from datasketch import MinHashLSH

    return MinHashLSH(threshold=min(cfg.threshold, 0.9), num_perm=cfg.num_perm)


def find_near(texts: Sequence[str], labels: Sequence[str] | None, row_ids: Sequence[int], cfg: DedupConfig,
              result: DedupResult) -> None:
    """Greedy in file order: a row whose MinHash matches an earlier kept row above the threshold is dropped.

    ``labels=None`` skips the label-conflict check (NER rows, whose near-duplicates differ in tags anyway).
    """
    positions = [p for p in range(len(texts)) if p not in result.drop]
    mhs = minhashes([texts[p] for p in positions], cfg)
    lsh = _lsh(cfg)
    kept_mh: dict[int, object] = {}
    for pos, mh in zip(positions, mhs, strict=True):
        match = None
        best = 0.0
        for cand in lsh.query(mh):
            sim = mh.jaccard(kept_mh[cand])  # LSH gives candidates; confirm with the estimate
            if sim >= cfg.threshold and sim > best:
                match, best = cand, sim
        if match is None:
            lsh.insert(pos, mh)
            kept_mh[pos] = mh
            continue
        result.near_pairs += 1
        if labels is None or labels[pos] == labels[match]:
            result.drop[pos] = ("duplicate_near", row_ids[match])
        else:
            result.drop[pos] = ("near_duplicate_label_conflict", row_ids[match])
            result.conflicts.append({"kind": "near", "row_ids": [row_ids[match], row_ids[pos]],
                                     "labels": [labels[match], labels[pos]], "similarity": round(best, 3),
                                     "resolution": f"kept first row {row_ids[match]}"})


def find_duplicates(texts: Sequence[str], labels: Sequence[str], row_ids: Sequence[int], cfg: DedupConfig,
                    *, near_labels: bool = True) -> DedupResult:
    """Exact groups first (majority label kept), then near duplicates among the survivors."""
    result = DedupResult()
    if cfg.exact:
        find_exact(texts, labels, row_ids, result)
    if cfg.near:
        find_near(texts, labels if near_labels else None, row_ids, cfg, result)
    return result


def leakage(train_texts: Iterable[str], other_texts: Sequence[str], cfg: DedupConfig) -> np.ndarray:
    """Boolean mask over ``other_texts``: True where a train text is an exact or near duplicate."""
    train_list = list(train_texts)
    train_keys = {dedup_key(t) for t in train_list}
    hit = np.array([dedup_key(t) in train_keys for t in other_texts], dtype=bool)
    # Always near-checked, even when near-dedup is off: leakage is what the held-out figures rest on.
    if not train_list or not len(other_texts):
        return hit
    lsh = _lsh(cfg)
    train_mh = minhashes(train_list, cfg)
    for i, mh in enumerate(train_mh):
        lsh.insert(i, mh)
    for j, mh in enumerate(minhashes(list(other_texts), cfg)):
        if not hit[j] and any(mh.jaccard(train_mh[c]) >= cfg.threshold for c in lsh.query(mh)):
            hit[j] = True
    return hit
