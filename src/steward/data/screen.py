"""Harmful-text screening with an offline profanity/toxicity classifier (alt-profanity-check)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from steward.errors import DependencyMissingError


def toxicity_scores(texts: Sequence[str]) -> np.ndarray:
    """Probability in [0, 1] that each text is abusive or profane."""
    if not texts:
        return np.zeros(0)
    try:
        from profanity_check import predict_prob
    except ImportError as exc:  # pragma: no cover - core dependency
        raise DependencyMissingError("harmful-text screening needs alt-profanity-check: "
                                     "pip install alt-profanity-check") from exc
    return np.clip(np.asarray(predict_prob(list(texts)), dtype=float), 0.0, 1.0)
