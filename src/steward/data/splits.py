"""Stratified train/validation/test splits with a seed, or the user's own split column."""

from __future__ import annotations

import numpy as np
import pandas as pd

from steward.config.models import SplitConfig

SPLITS = ("train", "validation", "test")
_ALIASES = {"train": "train", "training": "train", "validation": "validation", "valid": "validation",
            "val": "validation", "dev": "validation", "test": "test", "testing": "test"}


def assign_splits(frame: pd.DataFrame, cfg: SplitConfig, stratify: bool) -> np.ndarray:
    """Split name per row. Stratified by label where every label has enough rows for it."""
    from sklearn.model_selection import train_test_split

    n = len(frame)
    idx = np.arange(n)
    out = np.full(n, "train", dtype=object)
    holdout = cfg.validation + cfg.test
    if n == 0 or holdout == 0:
        return out
    labels = frame["label"].to_numpy() if stratify else None
    # Labels too rare to appear in every split stay in train, rather than failing the whole split.
    if labels is not None:
        counts = pd.Series(labels).value_counts()
        rare = set(counts[counts < 3].index)
        pool = idx[~np.isin(labels, list(rare))] if rare else idx
        strat = labels[pool] if len(set(labels[pool])) > 1 else None
    else:
        pool, strat = idx, None
    if len(pool) < 3:
        return out
    _, held = train_test_split(pool, test_size=holdout, random_state=cfg.seed, stratify=strat)
    if cfg.validation and cfg.test:
        held_strat = labels[held] if strat is not None and pd.Series(labels[held]).value_counts().min() >= 2 else None
        val, test = train_test_split(held, test_size=cfg.test / holdout, random_state=cfg.seed, stratify=held_strat)
        out[val] = "validation"
        out[test] = "test"
    else:
        out[held] = "validation" if cfg.validation else "test"
    return out


def from_column(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Map the user's split column to canonical names; returns (names, valid mask)."""
    mapped = values.astype(str).str.strip().str.lower().map(_ALIASES)
    return mapped.fillna("").to_numpy(dtype=object), mapped.notna().to_numpy()
