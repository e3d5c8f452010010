"""Harmful-text screening with an offline profanity/toxicity classifier (alt-profanity-check)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from steward.errors import DependencyMissingError, ModelIntegrityError


@lru_cache(maxsize=1)
def _model() -> tuple[Any, Any, tuple[np.ndarray, ...] | None]:
    """The package's vectorizer and model, plus the model's linear form when it has one.

    alt-profanity-check's model is a CalibratedClassifierCV over LinearSVCs with sigmoid calibration. Its
    ``predict_proba`` spends ~5 ms per call in scikit-learn's input validation, which is most of a served
    request's guard time; the same probabilities are mean_k expit(-(a_k (x·w_k + c_k) + b_k)), computed
    here with one sparse product (a test checks they equal the library's to float precision).
    """
    vectorizer, model = _load_checked()
    form = None
    try:
        cal = model.calibrated_classifiers_
        if getattr(model, "method", None) == "sigmoid" and all(len(c.calibrators) == 1 for c in cal):
            form = (np.stack([c.estimator.coef_[0] for c in cal]), np.array([c.estimator.intercept_[0] for c in cal]),
                    np.array([c.calibrators[0].a_ for c in cal]), np.array([c.calibrators[0].b_ for c in cal]))
    except (AttributeError, IndexError):
        form = None  # another model shape: use the library's own predict_proba
    return vectorizer, model, form


# sha256 of the model files of the alt-profanity-check release pyproject.toml pins (1.9.1). They are joblib
# pickles, and loading a pickle runs whatever code it holds: a file that is not the audited release's is
# refused before it is opened. The package's own module is not imported — it unpickles both files on import.
PINNED_SHA256 = {
    "vectorizer.joblib": "19c5200dc6a41f026e0558e2f164f5fe8d8f58e502b46b37e4385037fcfa4831",
    "model.joblib": "aeafc04849d4d93db4721cf30a86ebf22085595294b8a07d51918e7fa98f538b",
}


def _load_checked(pinned: dict[str, str] | None = None) -> tuple[Any, Any]:
    """alt-profanity-check's vectorizer and model, each loaded only after its hash matched the pin."""
    import importlib.util
    from pathlib import Path

    from steward.hashing import sha256_file

    spec = importlib.util.find_spec("profanity_check")  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - core dependency
        raise DependencyMissingError("harmful-text screening needs alt-profanity-check: "
                                     "pip install alt-profanity-check==1.9.1")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    loaded = []
    for name, want in (pinned or PINNED_SHA256).items():
        path = folder / name
        got = sha256_file(path) if path.is_file() else "missing"
        if got != want:
            raise ModelIntegrityError(f"{path}: sha256 {got[:16]}…, expected {want[:16]}… (alt-profanity-check "
                                      f"1.9.1). It is a pickle, which runs code when loaded, so it is not loaded. "
                                      f"Fix: pip install --force-reinstall alt-profanity-check==1.9.1")
        import joblib

        loaded.append(joblib.load(path))
    return loaded[0], loaded[1]


@lru_cache(maxsize=1)
def _term_weights() -> tuple[Any, dict[str, int], np.ndarray, np.ndarray] | None:
    """For the one-text path: the vectorizer's analyzer and vocabulary, the idf, and each model's weights
    times the idf (TF-IDF with l2 norm, no sublinear tf or binary counts, which is what the package ships)."""
    vectorizer, _, form = _model()
    p = vectorizer.get_params()
    if form is None or p.get("norm") != "l2" or p.get("sublinear_tf") or p.get("binary") or not p.get("use_idf"):
        return None
    idf = np.asarray(vectorizer.idf_, dtype=float)
    return vectorizer.build_analyzer(), vectorizer.vocabulary_, idf, form[0] * idf


def _one_text(text: str, terms: tuple[Any, dict[str, int], np.ndarray, np.ndarray]) -> np.ndarray:
    """x·w_k for one text, without building a sparse matrix: the service scores one text per request, and
    TfidfVectorizer.transform spends ~0.45 ms of a 0.66 ms call on per-call set-up (2026-11-27)."""
    analyze, vocab, idf, w_idf = terms
    counts: dict[int, int] = {}
    for tok in analyze(text):
        j = vocab.get(tok)
        if j is not None:
            counts[j] = counts.get(j, 0) + 1
    if not counts:
        return np.zeros(w_idf.shape[0])
    ids = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
    tf = np.fromiter(counts.values(), dtype=float, count=len(counts))
    norm = float(np.sqrt(((tf * idf[ids]) ** 2).sum()))
    return (w_idf[:, ids] @ tf) / norm


def toxicity_scores(texts: Sequence[str]) -> np.ndarray:
    """Probability in [0, 1] that each text is abusive or profane."""
    if not texts:
        return np.zeros(0)
    from scipy.special import expit

    vectorizer, model, form = _model()
    terms = _term_weights() if len(texts) <= 4 else None
    if terms is not None and form is not None:
        xw = np.stack([_one_text(t, terms) for t in texts])
    else:
        x = vectorizer.transform(list(texts))
        if form is None:
            return np.clip(np.asarray(model.predict_proba(x)[:, 1], dtype=float), 0.0, 1.0)
        xw = x @ form[0].T
    _, c, a, b = form
    return np.clip(expit(-(a * (xw + c) + b)).mean(1), 0.0, 1.0)
