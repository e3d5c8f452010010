"""Stratified train/validation/test splits with a seed, or the user's own split column."""

from __future__ import annotations

import numpy as np
import pandas as pd

from steward.data.config import SplitConfig

SPLITS = ("train", "validation", "test")
_ALIASES = {"train": "train", "training": "train", "validation": "validation", "valid": "validation",
            "val": "validation", "dev": "validation", "test": "test", "testing": "test"}


def _cut(idx: np.ndarray, frac: float, labels: np.ndarray | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``idx`` into (keep, held) with ``frac`` held out: stratified when the labels allow it, else random.

    Small or very uneven sets cannot be stratified (sklearn needs every class in both parts); rather
    than fail the run they are split at random, which the split sizes in the summary make visible.
    """
    from sklearn.model_selection import train_test_split

    if len(idx) < 2 or frac <= 0:
        return idx, idx[:0]
    n_held = max(1, round(len(idx) * frac))
    if n_held >= len(idx):
        return idx[:0], idx
    strat = labels[idx] if labels is not None else None
    if strat is not None:
        counts = pd.Series(strat).value_counts()
        if counts.min() < 2 or n_held < len(counts) or len(idx) - n_held < len(counts):
            strat = None
    keep, held = train_test_split(idx, test_size=n_held, random_state=seed, stratify=strat)
    return np.sort(keep), np.sort(held)


def assign_splits(frame: pd.DataFrame, cfg: SplitConfig, stratify: bool) -> np.ndarray:
    """Split name per row, stratified by label where the label counts allow it."""
    n = len(frame)
    out = np.full(n, "train", dtype=object)
    holdout = cfg.validation + cfg.test
    if n == 0 or holdout == 0:
        return out
    labels = frame["label"].to_numpy() if stratify else None
    _, held = _cut(np.arange(n), holdout, labels, cfg.seed)
    if cfg.validation and cfg.test:
        val, test = _cut(held, cfg.test / holdout, labels, cfg.seed)
        out[val] = "validation"
        out[test] = "test"
    else:
        out[held] = "validation" if cfg.validation else "test"
    return out


def from_column(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Map the user's split column to canonical names; returns (names, valid mask)."""
    mapped = values.astype(str).str.strip().str.lower().map(_ALIASES)
    return mapped.fillna("").to_numpy(dtype=object), mapped.notna().to_numpy()
