"""Calibration: expected calibration error with a bootstrap interval, the reliability diagram's bins, and
the coverage/accuracy curve of abstaining below a confidence threshold — which sets the service's threshold."""

from __future__ import annotations

from functools import partial

import numpy as np

from steward.evaluate.metrics import (
    bootstrap_ci,
    coverage_curve,
    expected_calibration_error,
    recommend_threshold,
    reliability_bins,
)
from steward.evaluate.probes.base import PROBES, EvalContext, Figure, ProbeResult

THRESHOLDS = [round(t, 2) for t in np.arange(0.0, 1.0, 0.05)]


@PROBES.register("calibration")
def calibration(ctx: EvalContext) -> ProbeResult:
    if ctx.task != "classification":
        return ProbeResult("calibration", skipped=f"calibration is measured for single-label classification; this model is {ctx.task}")
    cfg = ctx.cfg
    proba = ctx.proba()
    confidence = proba.max(1)
    correct = (proba.argmax(1) == ctx.y).astype(float)
    bins = cfg.calibration.bins
    ece = expected_calibration_error(confidence, correct, bins)
    ci = bootstrap_ci(partial(expected_calibration_error, bins=bins), confidence, correct, n=cfg.bootstrap,
                      confidence=cfg.confidence, random_state=cfg.seed)
    curve = coverage_curve(confidence, correct, THRESHOLDS)
    recommended = recommend_threshold(curve, cfg.calibration.target_accuracy)
    threshold = cfg.calibration.abstain_threshold if cfg.calibration.abstain_threshold is not None else recommended
    chosen = coverage_curve(confidence, correct, [threshold])[0] if threshold is not None else None
    figures = {
        "ece": Figure(ece, "fraction", ci, False),
        "mean_confidence": Figure(float(confidence.mean()), "probability"),
    }
    if chosen is not None:
        figures["coverage_at_threshold"] = Figure(chosen["coverage"], "fraction", None, True,
                                                  f"abstain below {threshold:.2f}")
    details = {"bins": reliability_bins(confidence, correct, bins), "coverage_curve": curve,
               "abstain_threshold": threshold, "recommended_threshold": recommended,
               "target_accuracy": cfg.calibration.target_accuracy,
               "threshold_source": "config" if cfg.calibration.abstain_threshold is not None else
               ("recommended" if recommended is not None else "none reaches the target accuracy")}
    return ProbeResult("calibration", figures, details)
