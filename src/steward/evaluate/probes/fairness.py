"""Group fairness: every metric by each sensitive column, demographic-parity and equalised-odds gaps with
bootstrap intervals. Groups too small to judge are named, not averaged away. With several classes and no
favourable label, each label is judged one-vs-rest and the worst gap is the headline."""

from __future__ import annotations

from typing import Any

import numpy as np

from steward.evaluate.metrics import bootstrap_ci, fast_gaps, group_fairness
from steward.evaluate.probes.base import PROBES, EvalContext, Figure, ProbeResult

GAPS = ("dp_difference", "eo_difference")


@PROBES.register("fairness")
def fairness(ctx: EvalContext) -> ProbeResult:
    if ctx.task != "classification":
        return ProbeResult("fairness", skipped=f"group fairness is measured for single-label classification; "
                                               f"this model is {ctx.task}")
    if not ctx.sensitive_columns:
        return ProbeResult("fairness", skipped="no sensitive columns: set data.input.group_columns or "
                                               "evaluate.sensitive_columns")
    cfg = ctx.cfg
    y, pred = ctx.y, ctx.pred()
    favourable = ctx.favourable()
    columns: dict[str, dict[str, Any]] = {}
    worst: dict[str, tuple[float, str, tuple[float, float] | None]] = {}
    for col in ctx.sensitive_columns:
        groups = ctx.frame[col].fillna("(missing)").astype(str).to_numpy()
        columns[col] = {}
        for positive in favourable:
            label = ctx.labels[positive]
            res = group_fairness(y, pred, groups, positive=positive, min_group_size=cfg.min_group_size,
                                 confidence=cfg.confidence)
            judged = np.isin(groups, res["judged_groups"])
            yt, yp, g = (y[judged] == positive).astype(int), (pred[judged] == positive).astype(int), groups[judged]
            for key in GAPS:
                if res.get(key) is None:
                    continue

                def gap(a: np.ndarray, b: np.ndarray, c: np.ndarray, key: str = key) -> float:
                    v = fast_gaps(a, b, c)[key]
                    if v is None:
                        raise ValueError("undefined on this resample")
                    return v

                res[f"{key}_ci"] = bootstrap_ci(gap, yt, yp, g, n=cfg.bootstrap, confidence=cfg.confidence,
                                                random_state=cfg.seed)
                if key not in worst or res[key] > worst[key][0]:
                    worst[key] = (res[key], f"column {col}, label {label!r}", res[f"{key}_ci"])
            columns[col][label] = res
    figures = {key: Figure(v, "fraction", ci, False, f"worst: {where}") for key, (v, where, ci) in worst.items()}
    details = {"favourable_labels": [ctx.labels[i] for i in favourable],
               "one_vs_rest": len(favourable) > 1, "min_group_size": cfg.min_group_size, "columns": columns}
    if not figures:
        return ProbeResult("fairness", details=details,
                           skipped=f"no sensitive column has two groups of at least {cfg.min_group_size} rows")
    return ProbeResult("fairness", figures, details)
