"""The shared inference path: batches grouped by length, results in input order, padding without effect."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from steward.inference import TorchClassifier, length_batches


def _cost(lengths: list[int], batches: list[list[int]], pass_cost: float) -> float:
    return sum(pass_cost + len(b) * max(lengths[i] for i in b) for b in batches)


def _brute_force(lengths: list[int], max_size: int, pass_cost: float) -> float:
    """Least cost over every way of cutting the sorted rows into consecutive groups (small n only)."""
    ls = sorted(lengths)
    best = float("inf")
    for cuts in itertools.product([0, 1], repeat=len(ls) - 1):
        groups, start = [], 0
        for k, c in enumerate(cuts, start=1):
            if c:
                groups.append(ls[start:k])
                start = k
        groups.append(ls[start:])
        if all(len(g) <= max_size for g in groups):
            best = min(best, sum(pass_cost + len(g) * g[-1] for g in groups))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_length_batches_cover_every_row_once_and_cost_least(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lengths = [int(x) for x in rng.integers(3, 60, size=11)]
    for max_size, pass_cost in ((4, 30.0), (11, 30.0), (11, 5.0), (3, 100.0)):
        batches = length_batches(lengths, max_size, pass_cost)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        assert all(1 <= len(b) <= max_size for b in batches)
        assert _cost(lengths, batches, pass_cost) == pytest.approx(_brute_force(lengths, max_size, pass_cost))


def test_length_batches_trade_padding_against_passes() -> None:
    lengths = [10, 50, 11, 49, 12, 48]
    # Passes cost nothing: no row is padded at all.
    assert all(len({lengths[i] for i in b}) == 1 for b in length_batches(lengths, 8, 0.0))
    # Passes cost a lot: as few as the size limit allows.
    assert len(length_batches(lengths, 8, 1e6)) == 1
    assert len(length_batches(lengths, 4, 1e6)) == 2
    # In between: the short and the long rows go in separate passes.
    assert sorted(sorted(lengths[i] for i in b) for b in length_batches(lengths, 8, 30.0)) == [[10, 11, 12],
                                                                                             [48, 49, 50]]
    assert length_batches([], 8, 30.0) == []


TEXTS = ["ok", "the parcel never arrived and nobody answers the phone at all, for three weeks now", "refund",
         "my card was charged twice", "", "a b c d e f g h i j k l m n o p q r s t u v w x y z " * 3, "thanks"]


def test_scores_do_not_depend_on_the_company_a_text_keeps(tiny_classifier: Path) -> None:
    clf = TorchClassifier.load(tiny_classifier, max_length=64, batch_size=4)
    alone = np.vstack([clf.predict_with_embeddings([t])[0] for t in TEXTS])
    emb_alone = np.vstack([clf.predict_with_embeddings([t])[1] for t in TEXTS])
    proba, emb = clf.predict_with_embeddings(TEXTS)
    np.testing.assert_allclose(proba, alone, atol=1e-5)
    np.testing.assert_allclose(emb, emb_alone, atol=1e-5)
    assert clf.calls == 2 * len(TEXTS) + len(TEXTS)
    # Token-id rows (explanations) take the same path and agree with the texts they came from.
    rows = [clf.token_ids(t) for t in TEXTS]
    np.testing.assert_allclose(clf.logits_from_ids(rows), clf.logits(TEXTS), atol=1e-5)


def test_left_padding_tokenizers_are_padded_on_the_left(tiny_classifier: Path) -> None:
    """A tokenizer that pads on the left (as causal-LM classifiers expect) gets its rows right-aligned."""
    clf = TorchClassifier.load(tiny_classifier, max_length=64, batch_size=8)
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    real = clf._outputs

    def spy(ids, mask, embeddings):  # type: ignore[no-untyped-def]
        seen.append((np.asarray(ids), np.asarray(mask)))
        return real(ids, mask, embeddings)

    clf._outputs = spy  # type: ignore[method-assign]
    clf.tokenizer.padding_side = "left"
    clf.pass_cost_tokens = 10_000  # one pass, so the short text is padded
    clf.logits(["ok", "the parcel never arrived and nobody answers"])
    ids, mask = seen[0]
    short = int(np.argmin(mask.sum(1)))
    assert mask[short, -1] == 1 and mask[short, 0] == 0
    assert ids[short, 0] == (clf.tokenizer.pad_token_id or 0)
