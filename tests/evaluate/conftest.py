"""Transparent classifiers whose right answers are known, and a context builder for probe tests.

The probes take any :class:`steward.inference.Predictor`; these rule-based ones make the expected figures
exact (a model biased on purpose must fail the fairness gate, an unbiased one must pass).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from steward.evaluate.config import EvaluateConfig
from steward.evaluate.probes import EvalContext

POSITIVE_WORDS = {"good", "great", "love", "excellent"}
NEGATIVE_WORDS = {"bad", "awful", "hate", "terrible"}


class KeywordSentiment:
    """Positive iff the text has more positive than negative keywords. ``favour`` adds a bias toward
    positive for texts mentioning a term (a model biased on purpose)."""

    labels: ClassVar[list[str]] = ["0", "1"]

    def __init__(self, favour: str | None = None, confidence: float = 0.9) -> None:
        self.favour, self.confidence, self.calls = favour, confidence, 0

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += len(texts)
        out = []
        for t in texts:
            words = t.lower().split()
            score = sum(w in POSITIVE_WORDS for w in words) - sum(w in NEGATIVE_WORDS for w in words)
            if self.favour is not None and self.favour in words:
                score = 1
            p1 = self.confidence if score > 0 else 1 - self.confidence
            out.append([1 - p1, p1])
        return np.array(out)


def sentiment_rows(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """Texts with a known sentiment keyword and a gender column; she/he equally likely in both classes."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = int(rng.integers(0, 2))
        gender = "female" if rng.random() < 0.5 else "male"
        pronoun = "she" if gender == "female" else "he"
        word = sorted(POSITIVE_WORDS if label else NEGATIVE_WORDS)[i % 4]
        rows.append({"text": f"{pronoun} said the service was {word} today", "label": str(label), "gender": gender})
    return pd.DataFrame(rows)


def make_ctx(predictor: Any, frame: pd.DataFrame, cfg: EvaluateConfig | None = None,
             train: pd.DataFrame | None = None, **kw: Any) -> EvalContext:
    cfg = cfg or EvaluateConfig(bootstrap=200)
    labels = list(predictor.labels)
    y = np.array([labels.index(str(v)) for v in frame["label"]])
    train = train if train is not None else frame.iloc[:0]
    return EvalContext(predictor=predictor, task="classification", labels=labels, texts=frame["text"].tolist(), y=y,
                       frame=frame, sensitive_columns=[c for c in ("gender",) if c in frame], cfg=cfg,
                       train_texts=train["text"].tolist(), train_y=np.array([labels.index(str(v)) for v in train["label"]],
                                                                            dtype=int), **kw)


@pytest.fixture
def rows() -> pd.DataFrame:
    return sentiment_rows()
