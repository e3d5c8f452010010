"""Harmful-text screening with an offline profanity/toxicity classifier (alt-profanity-check)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from steward.errors import DependencyMissingError


@lru_cache(maxsize=1)
def _model() -> tuple[Any, Any, tuple[np.ndarray, ...] | None]:
    """The package's vectorizer and model, plus the model's linear form when it has one.

    alt-profanity-check's model is a CalibratedClassifierCV over LinearSVCs with sigmoid calibration. Its
    ``predict_proba`` spends ~5 ms per call in scikit-learn's input validation, which is most of a served
    request's guard time; the same probabilities are mean_k expit(-(a_k (x·w_k + c_k) + b_k)), computed
    here with one sparse product (a test checks they equal the library's to float precision).
    """
    try:
        import profanity_check.profanity_check as pc
    except ImportError as exc:  # pragma: no cover - core dependency
        raise DependencyMissingError("harmful-text screening needs alt-profanity-check: "
                                     "pip install alt-profanity-check") from exc
    model, form = pc.model, None
    try:
        cal = model.calibrated_classifiers_
        if getattr(model, "method", None) == "sigmoid" and all(len(c.calibrators) == 1 for c in cal):
            form = (np.stack([c.estimator.coef_[0] for c in cal]), np.array([c.estimator.intercept_[0] for c in cal]),
                    np.array([c.calibrators[0].a_ for c in cal]), np.array([c.calibrators[0].b_ for c in cal]))
    except (AttributeError, IndexError):
        form = None  # another model shape: use the library's own predict_proba
    return pc.vectorizer, model, form


def toxicity_scores(texts: Sequence[str]) -> np.ndarray:
    """Probability in [0, 1] that each text is abusive or profane."""
    if not texts:
        return np.zeros(0)
    from scipy.special import expit

    vectorizer, model, form = _model()
    x = vectorizer.transform(list(texts))
    if form is None:
        return np.clip(np.asarray(model.predict_proba(x)[:, 1], dtype=float), 0.0, 1.0)
    w, c, a, b = form
    return np.clip(expit(-(a * (x @ w.T + c) + b)).mean(1), 0.0, 1.0)
