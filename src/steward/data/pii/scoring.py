"""Span-level precision/recall for PII detection against labelled spans (pure functions, no I/O).

A gold span counts as found when a prediction of the same type overlaps it; a prediction counts as
correct when it overlaps a gold span of the same type. Overlap, not exact boundaries, because for
redaction what matters is that the value is covered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Span = tuple[str, int, int]  # (entity type, start, end)


@dataclass(frozen=True)
class PRF:
    tp_gold: int
    n_gold: int
    tp_pred: int
    n_pred: int

    @property
    def recall(self) -> float:
        return self.tp_gold / self.n_gold if self.n_gold else 0.0

    @property
    def precision(self) -> float:
        return self.tp_pred / self.n_pred if self.n_pred else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {"precision": round(self.precision, 4), "recall": round(self.recall, 4), "f1": round(self.f1, 4),
                "gold": self.n_gold, "predicted": self.n_pred}


def _overlaps(a: Span, b: Span) -> bool:
    return a[0] == b[0] and a[1] < b[2] and b[1] < a[2]


def score_spans(gold: Sequence[Iterable[Span]], pred: Sequence[Iterable[Span]],
                types: Iterable[str]) -> dict[str, PRF]:
    """Per-type PRF plus ``"ALL"`` (micro over ``types``)."""
    wanted = set(types)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for g_spans, p_spans in zip(gold, pred, strict=True):
        g = [s for s in g_spans if s[0] in wanted]
        p = [s for s in p_spans if s[0] in wanted]
        for s in g:
            c = counts[s[0]]
            c[1] += 1
            c[0] += any(_overlaps(s, q) for q in p)
        for s in p:
            c = counts[s[0]]
            c[3] += 1
            c[2] += any(_overlaps(s, q) for q in g)
    out = {t: PRF(*counts[t]) for t in sorted(wanted)}
    total = [sum(counts[t][i] for t in wanted) for i in range(4)]
    out["ALL"] = PRF(*total)
    return out
