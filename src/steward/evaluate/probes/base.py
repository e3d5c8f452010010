"""What every probe takes and returns, and the one registry they live in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from steward.evaluate.config import EvaluateConfig
from steward.inference import Predictor
from steward.records import TrainManifest
from steward.registry import Registry


@dataclass(frozen=True)
class Figure:
    """One measured number with its unit, confidence interval and the direction that is better."""

    value: float | None
    unit: str = ""
    ci: tuple[float, float] | None = None
    higher_is_better: bool | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": None if self.value is None else round(float(self.value), 6),
                               "unit": self.unit}
        if self.ci is not None:
            out["ci"] = [round(float(self.ci[0]), 6), round(float(self.ci[1]), 6)]
        if self.higher_is_better is not None:
            out["higher_is_better"] = self.higher_is_better
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class ProbeResult:
    """A probe's figures (gated and scored), details (for the report) and examples."""

    probe: str
    figures: dict[str, Figure] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    skipped: str = ""  # why the probe did not apply (empty when it ran)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"figures": {k: f.to_dict() for k, f in self.figures.items()},
                               "details": self.details, "examples": self.examples, "seconds": round(self.seconds, 3)}
        if self.skipped:
            out["skipped"] = self.skipped
        return out


@dataclass
class EvalContext:
    """Everything a probe may read. Built once by the stage; probes never load files themselves."""

    predictor: Predictor
    task: str
    labels: list[str]
    texts: list[str]
    y: np.ndarray  # gold label index per row (classification)
    frame: pd.DataFrame  # the evaluated rows with their sensitive columns
    sensitive_columns: list[str]
    cfg: EvaluateConfig
    train_texts: list[str] = field(default_factory=list)
    train_y: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    train_manifest: TrainManifest | None = None  # None: a predictor evaluated without its training record
    model_dir: Path | None = None
    tokens: list[list[str]] = field(default_factory=list)  # NER rows
    tags: list[list[str]] = field(default_factory=list)
    canaries: dict[str, Any] | None = None  # RUN_DIR/data/canaries.json when the data stage planted some
    _proba: np.ndarray | None = None

    def proba(self) -> np.ndarray:
        """Class probabilities on the evaluated rows, computed once and shared by every probe."""
        if self._proba is None:
            self._proba = self.predictor.predict_proba(self.texts)
        return self._proba

    def pred(self) -> np.ndarray:
        return self.proba().argmax(1)

    def favourable(self) -> list[int]:
        """The label(s) group fairness is judged on: the configured one; else "1"/"positive" when a label is
        named so; else every label one-vs-rest (the scorecard reports the worst)."""
        if self.cfg.favourable_label is not None:
            if self.cfg.favourable_label not in self.labels:
                from steward.errors import ConfigError

                raise ConfigError(f"evaluate.favourable_label: got {self.cfg.favourable_label!r}: not a label of "
                                  f"this model ({self.labels}). Fix: name one of them, or null")
            return [self.labels.index(self.cfg.favourable_label)]
        for name in ("1", "positive", "pos", "true", "yes"):
            if name in self.labels:
                return [self.labels.index(name)]
        return list(range(len(self.labels)))


Probe = Callable[[EvalContext], ProbeResult]
# A probe is a factory of its result: ``PROBES.create(name, ctx)`` runs it.
PROBES: Registry[ProbeResult] = Registry("probe")
