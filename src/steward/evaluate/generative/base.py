"""What a generative probe takes and returns, the registry they live in, and how one is scored on the
fine-tuned model and its base.

A probe measures one model at a time and returns per-item columns (one row per prompt, pair or question)
with the statistics computed from them. The runner applies the same statistics to both models' columns:
each figure gets a percentile bootstrap interval, and the difference (fine-tuned − base) a *paired* one —
the same resampled items for both models, since both answered the same items. A probe that scores several
datasets marks each row's dataset in a ``source`` column, and resampling stays within each (stratified).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from steward.evaluate.config import EvaluateConfig
from steward.evaluate.generative.lm import ChatLM
from steward.evaluate.probes.base import Figure
from steward.records import TrainManifest
from steward.registry import Registry

Columns = dict[str, np.ndarray]


@dataclass(frozen=True)
class Statistic:
    """One figure as a function of a model's per-item columns."""

    name: str
    fn: Callable[[Columns], float]
    unit: str = ""
    higher_is_better: bool | None = None
    note: str = ""


@dataclass
class Measured:
    """One probe's measurement of one model."""

    columns: Columns = field(default_factory=dict)
    statistics: list[Statistic] = field(default_factory=list)
    scalars: dict[str, Figure] = field(default_factory=dict)  # figures with no items behind them
    details: dict[str, Any] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    skipped: str = ""


@dataclass
class GenContext:
    """Everything a generative probe may read, built once by the stage."""

    cfg: EvaluateConfig
    run_dir: Path
    train_manifest: TrainManifest
    test: pd.DataFrame  # the held-out conversations (the data stage's split)
    train: pd.DataFrame | None = None  # the training conversations (membership inference)
    canaries: dict[str, Any] | None = None  # RUN_DIR/data/canaries.json when the data stage planted some
    datasets: Path | None = None  # the folder holding crows_pairs/ and bbq/
    # The composed config's gateway section when the caller has one (the injection probe runs its guards);
    # untyped because the gateway sits above this stage.
    gateway: Any = None

    @property
    def chat(self) -> Any:
        return self.cfg.chat


GenProbe = Callable[[GenContext, ChatLM], Measured]
GEN_PROBES: Registry[Measured] = Registry("generative probe")


def mean_of(column: str, where: str | None = None, value: int | None = None) -> Callable[[Columns], float]:
    """The mean of ``column`` (over the rows whose ``where`` column equals ``value``, when given)."""

    def fn(c: Columns) -> float:
        x = c[column] if where is None else c[column][c[where] == value]
        return float(x.mean()) if len(x) else float("nan")

    return fn


def _bootstrap(stats: list[Statistic], cols: Columns, base: Columns | None, n: int, confidence: float, seed: int
               ) -> dict[str, dict[str, tuple[float, float] | None]]:
    """Percentile intervals of each statistic on ``cols``, on ``base`` and of their difference, from one set
    of resampled row indices (paired: both models answered the same items)."""
    rows = len(next(iter(cols.values()))) if cols else 0
    out: dict[str, dict[str, tuple[float, float] | None]] = {s.name: {"ci": None, "base_ci": None, "delta_ci": None}
                                                            for s in stats}
    if n <= 0 or rows < 2 or (base is not None and len(next(iter(base.values()))) != rows):
        return out
    rng = np.random.default_rng(seed)
    # rows of several datasets (a "source" column) are resampled within each, keeping every dataset's size
    strata = [np.flatnonzero(cols["source"] == v) for v in np.unique(cols["source"])] if "source" in cols else \
        [np.arange(rows)]
    draws: dict[str, list[list[float]]] = {s.name: [[], [], []] for s in stats}
    with np.errstate(all="ignore"):
        for _ in range(n):
            idx = np.concatenate([part[rng.integers(0, len(part), len(part))] for part in strata])
            a = {k: v[idx] for k, v in cols.items()}
            b = {k: v[idx] for k, v in base.items()} if base is not None else None
            for s in stats:
                va = s.fn(a)
                d = draws[s.name]
                d[0].append(va)
                if b is not None:
                    vb = s.fn(b)
                    d[1].append(vb)
                    d[2].append(va - vb)
    q = [(1 - confidence) / 2, 1 - (1 - confidence) / 2]
    for name, (da, db, dd) in draws.items():
        for key, values in (("ci", da), ("base_ci", db), ("delta_ci", dd)):
            finite = [v for v in values if np.isfinite(v)]
            if finite:
                lo, hi = np.quantile(finite, q)
                out[name][key] = (float(lo), float(hi))
    return out


def compare(tuned: Measured, base: Measured | None, cfg: EvaluateConfig) -> dict[str, Any]:
    """The probe's scorecard section: the fine-tuned model's figures, the base model's, and the differences."""
    if tuned.skipped:
        return {"figures": {}, "details": tuned.details, "examples": [], "skipped": tuned.skipped}
    paired = base if base is not None and not base.skipped else None
    cis = _bootstrap(tuned.statistics, tuned.columns, paired.columns if paired else None, cfg.bootstrap,
                     cfg.confidence, cfg.seed)
    figures, base_figures, delta = {}, {}, {}
    with np.errstate(all="ignore"):
        for s in tuned.statistics:
            v = _finite(s.fn(tuned.columns))
            figures[s.name] = Figure(v, s.unit, cis[s.name]["ci"], s.higher_is_better, s.note).to_dict()
            if paired is not None:
                vb = _finite(s.fn(paired.columns))
                base_figures[s.name] = Figure(vb, s.unit, cis[s.name]["base_ci"], s.higher_is_better).to_dict()
                diff = None if v is None or vb is None else v - vb
                delta[s.name] = Figure(diff, s.unit, cis[s.name]["delta_ci"], None).to_dict()
    for name, f in tuned.scalars.items():
        figures[name] = f.to_dict()
        if paired is not None and name in paired.scalars:
            fb = paired.scalars[name]
            base_figures[name] = fb.to_dict()
            if f.value is not None and fb.value is not None:
                delta[name] = Figure(f.value - fb.value, f.unit).to_dict()
    out: dict[str, Any] = {"figures": figures, "details": tuned.details, "examples": tuned.examples}
    if paired is not None:
        out.update(base=base_figures, delta=delta, base_details=paired.details, base_examples=paired.examples)
    return out


def _finite(v: float | None) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)
