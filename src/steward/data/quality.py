"""Quality filters: length, share of letters, and language (offline lingua detector)."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from steward.data.config import QualityConfig

# Languages the detector chooses among besides the allowed ones. A detector that only knows the allowed
# languages would call everything one of them; this set covers the languages most often mixed into
# support and review data without loading all 75 lingua models.
_CANDIDATES = ("EN", "DE", "FR", "ES", "IT", "PT", "NL", "SV", "DA", "NB", "FI", "PL", "CS", "RO", "HU",
               "TR", "RU", "UK", "EL", "AR", "HE", "HI", "ZH", "JA", "KO", "ID", "VI", "TL", "SW")


def alpha_ratio(texts: pd.Series) -> np.ndarray:
    """Share of letters among non-space characters (0 for an all-space text)."""
    letters = texts.str.count(r"[^\W\d_]").to_numpy(dtype=float)
    non_space = texts.str.count(r"\S").to_numpy(dtype=float)
    return np.divide(letters, non_space, out=np.zeros_like(letters), where=non_space > 0)


@functools.lru_cache(maxsize=8)
def _detector(allowed: tuple[str, ...], low_accuracy: bool):  # type: ignore[no-untyped-def]
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    codes = {c.upper() for c in allowed} | set(_CANDIDATES)
    unknown = [c for c in codes if not hasattr(IsoCode639_1, c)]
    if unknown:
        from steward.errors import ConfigError

        raise ConfigError(f"data.quality.languages: unknown ISO 639-1 code(s) {sorted(unknown)}; use codes like en, de")
    builder = LanguageDetectorBuilder.from_iso_codes_639_1(*(getattr(IsoCode639_1, c) for c in sorted(codes)))
    return (builder.with_low_accuracy_mode() if low_accuracy else builder).build()


def _top(values) -> tuple[str | None, float]:  # type: ignore[no-untyped-def]
    if not values:
        return None, 0.0
    return values[0].language.iso_code_639_1.name.lower(), float(values[0].value)


def detect_languages(texts: list[str], allowed: tuple[str, ...]) -> list[tuple[str | None, float]]:
    """(ISO 639-1 code, confidence) of the most likely language of each text.

    Two passes: lingua's low-accuracy (trigram) mode is ~5x faster and right on almost every text; the
    few it places outside ``allowed`` are re-judged by the high-accuracy mode before anything is dropped.
    """
    fast = [_top(v) for v in _detector(allowed, True).compute_language_confidence_values_in_parallel(texts)]
    recheck = [i for i, (lang, _) in enumerate(fast) if lang is not None and lang not in allowed]
    if recheck:
        slow = _detector(allowed, False).compute_language_confidence_values_in_parallel([texts[i] for i in recheck])
        for i, values in zip(recheck, slow, strict=True):
            fast[i] = _top(values)
    return fast


def quality_reasons(frame: pd.DataFrame, cfg: QualityConfig, task: str = "classification") -> pd.Series:
    """A reason string per row ('' = passes). The first failing check wins.

    Tagged (NER) rows skip the share-of-letters check: a table of scores or prices is still labelled
    token by token (CoNLL-2003 has hundreds), and dropping it would remove the entities it tags.
    """
    texts = frame["text"]
    lengths = texts.str.len().to_numpy()
    reasons = np.full(len(frame), "", dtype=object)
    reasons[lengths < cfg.min_chars] = "too_short"
    reasons[(reasons == "") & (lengths > cfg.max_chars)] = "too_long"
    if task != "ner":
        reasons[(reasons == "") & (alpha_ratio(texts) < cfg.min_alpha_ratio)] = "mostly_non_alphabetic"
    if cfg.languages:
        allowed = tuple(sorted(c.lower() for c in cfg.languages))
        judged = np.flatnonzero((reasons == "") & (texts.str.count(r"\S+").to_numpy() >= cfg.language_min_words))
        if len(judged):
            langs = detect_languages(texts.iloc[judged].tolist(), allowed)
            for pos, (lang, conf) in zip(judged, langs, strict=True):
                if lang is not None and lang not in allowed and conf >= cfg.language_min_confidence:
                    reasons[pos] = f"wrong_language:{lang}"
    return pd.Series(reasons, index=frame.index)
