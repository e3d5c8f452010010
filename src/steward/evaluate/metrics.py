"""Pure scorecard maths: bootstrap intervals, group fairness, calibration, membership-inference AUC.

No I/O and no plotting; every random draw takes an explicit ``random_state`` (fairlearn's convention).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Metric = Callable[..., float]


def bootstrap_ci(metric: Metric, *arrays: np.ndarray, n: int, confidence: float, random_state: int
                 ) -> tuple[float, float] | None:
    """Percentile bootstrap interval of ``metric(*arrays)`` over rows resampled with replacement.

    Returns None when ``n`` is 0 or there are fewer than 2 rows. Resamples on which the metric is undefined
    (e.g. one class only) are skipped.
    """
    rows = len(arrays[0])
    if n <= 0 or rows < 2:
        return None
    rng = np.random.default_rng(random_state)
    values = []
    for _ in range(n):
        idx = rng.integers(0, rows, rows)
        try:
            v = metric(*(a[idx] for a in arrays))
        except ValueError:
            continue
        if np.isfinite(v):
            values.append(v)
    if not values:
        return None
    lo, hi = np.quantile(values, [(1 - confidence) / 2, 1 - (1 - confidence) / 2])
    return float(lo), float(hi)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_true == y_pred)) if len(y_true) else float("nan")


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, labels=list(range(n_labels)), average="macro", zero_division=0))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion: sane at 0, 1 and small n, where the normal one is not."""
    if n == 0:
        return None
    from scipy.stats import norm

    z = float(norm.ppf(1 - (1 - confidence) / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def selection_rate(y_pred: np.ndarray, positive: int) -> float:
    return float(np.mean(y_pred == positive)) if len(y_pred) else float("nan")


def group_fairness(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, *, positive: int,
                   min_group_size: int, confidence: float = 0.95) -> dict[str, Any]:
    """Per-group metrics and the demographic-parity / equalised-odds gaps over groups large enough to judge.

    Uses fairlearn's MetricFrame for the disaggregation. Groups below ``min_group_size`` are listed under
    ``too_small`` and left out of the gaps rather than averaged away. Binary outcome: ``positive`` vs the rest.
    """
    from fairlearn.metrics import MetricFrame, false_positive_rate, true_positive_rate

    groups = np.asarray(groups).astype(str)
    sizes = {g: int((groups == g).sum()) for g in np.unique(groups)}
    judged = np.isin(groups, [g for g, n in sizes.items() if n >= min_group_size])
    yt, yp = (y_true == positive).astype(int), (y_pred == positive).astype(int)
    frame = MetricFrame(
        metrics={"accuracy": lambda a, b: float(np.mean(a == b)), "selection_rate": lambda a, b: float(np.mean(b)),
                 "tpr": lambda a, b: float(true_positive_rate(a, b)) if a.any() else float("nan"),
                 "fpr": lambda a, b: float(false_positive_rate(a, b)) if (1 - a).any() else float("nan")},
        y_true=yt, y_pred=yp, sensitive_features=groups)
    by_group = {str(g): {k: _f(v) for k, v in row.items()} | {"n": sizes[str(g)]}
                for g, row in frame.by_group.to_dict(orient="index").items()}
    for g, row in by_group.items():
        m = groups == g
        row["accuracy_ci"] = wilson_interval(int((yt[m] == yp[m]).sum()), int(m.sum()), confidence)
        row["selection_rate_ci"] = wilson_interval(int(yp[m].sum()), int(m.sum()), confidence)
    out: dict[str, Any] = {"by_group": by_group, "too_small": sorted(g for g, n in sizes.items() if n < min_group_size),
                           "judged_groups": sorted(g for g, n in sizes.items() if n >= min_group_size)}
    if len(out["judged_groups"]) < 2:
        out.update(dp_difference=None, dp_ratio=None, eo_difference=None, eo_ratio=None)
        return out
    out.update(fairness_gaps(yt[judged], yp[judged], groups[judged]))
    return out


def fairness_gaps(yt: np.ndarray, yp: np.ndarray, groups: np.ndarray) -> dict[str, float | None]:
    """Demographic-parity and equalised-odds differences and ratios (fairlearn's definitions)."""
    from fairlearn.metrics import (
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        equalized_odds_ratio,
    )

    out: dict[str, float | None] = {
        "dp_difference": float(demographic_parity_difference(yt, yp, sensitive_features=groups)),
        "dp_ratio": float(demographic_parity_ratio(yt, yp, sensitive_features=groups)),
    }
    # Equalised odds needs both outcomes in every group; otherwise it is undefined, not zero.
    defined = all(len(set(yt[groups == g])) == 2 for g in np.unique(groups))
    out["eo_difference"] = float(equalized_odds_difference(yt, yp, sensitive_features=groups)) if defined else None
    out["eo_ratio"] = float(equalized_odds_ratio(yt, yp, sensitive_features=groups)) if defined else None
    return {k: _f(v) for k, v in out.items()}


def fast_gaps(yt: np.ndarray, yp: np.ndarray, groups: np.ndarray) -> dict[str, float | None]:
    """The same differences as :func:`fairness_gaps` in plain numpy, for the bootstrap's thousand resamples
    (fairlearn builds a MetricFrame per call, ~100x slower). A test checks both agree."""
    sel, tpr, fpr = [], [], []
    defined = True
    for g in np.unique(groups):
        m = groups == g
        t, p = yt[m], yp[m]
        sel.append(p.mean())
        if t.all() or not t.any():
            defined = False
            continue
        tpr.append(p[t == 1].mean())
        fpr.append(p[t == 0].mean())
    if len(sel) < 2:
        raise ValueError("fewer than two groups")
    eo = max(max(tpr) - min(tpr), max(fpr) - min(fpr)) if defined else None
    return {"dp_difference": float(max(sel) - min(sel)), "eo_difference": None if eo is None else float(eo)}


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int) -> float:
    """ECE with equal-width confidence bins: sum over bins of |accuracy - confidence| times the bin's share."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, bins: int) -> list[dict[str, float]]:
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    out = []
    for b in range(bins):
        mask = which == b
        out.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "n": int(mask.sum()),
                     "accuracy": float(correct[mask].mean()) if mask.any() else None,
                     "confidence": float(confidence[mask].mean()) if mask.any() else None})
    return out


def coverage_curve(confidence: np.ndarray, correct: np.ndarray, thresholds: Sequence[float]) -> list[dict[str, float]]:
    """Share of rows answered and their accuracy when the model abstains below each confidence threshold."""
    out = []
    for t in thresholds:
        kept = confidence >= t
        out.append({"threshold": float(t), "coverage": float(kept.mean()),
                    "accuracy": float(correct[kept].mean()) if kept.any() else None})
    return out


def recommend_threshold(curve: list[dict[str, Any]], target_accuracy: float) -> float | None:
    """The lowest threshold whose answered rows reach ``target_accuracy`` (most coverage), or None."""
    for point in sorted(curve, key=lambda p: p["threshold"]):
        if point["accuracy"] is not None and point["accuracy"] >= target_accuracy:
            return float(point["threshold"])
    return None


def membership_auc(member_loss: np.ndarray, nonmember_loss: np.ndarray) -> float:
    """AUC of the loss-threshold attack (Yeom et al. 2018): members are guessed where the loss is low.

    0.5 means the attacker cannot tell training rows from unseen ones.
    """
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.ones(len(member_loss)), np.zeros(len(nonmember_loss))]
    return float(roc_auc_score(y, -np.r_[member_loss, nonmember_loss]))


def _f(v: Any) -> Any:
    if v is None:
        return None
    v = float(v)
    return None if not np.isfinite(v) else v
