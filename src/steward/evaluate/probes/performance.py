"""Task performance: accuracy and macro/micro P/R/F1 with bootstrap intervals, per-class report, confusion
matrix; entity-level seqeval report for NER. Beside the model, the majority-class baseline: a model that
is not surely better than always answering the most frequent class is useless, whatever its accuracy."""

from __future__ import annotations

from functools import partial

import numpy as np

from steward.evaluate.metrics import accuracy, bootstrap_ci, macro_f1
from steward.evaluate.probes.base import PROBES, EvalContext, Figure, ProbeResult
from steward.metrics import classification_metrics


@PROBES.register("performance")
def performance(ctx: EvalContext) -> ProbeResult:
    if ctx.task == "ner":
        return _ner(ctx)
    if ctx.task == "multilabel":
        return _multilabel(ctx)
    from sklearn.metrics import classification_report, confusion_matrix

    cfg = ctx.cfg
    y, pred = ctx.y, ctx.pred()
    n = len(ctx.labels)
    m = classification_metrics(y, pred, n_labels=n)
    ci = partial(bootstrap_ci, n=cfg.bootstrap, confidence=cfg.confidence, random_state=cfg.seed)
    figures = {
        "accuracy": Figure(m["accuracy"], "fraction", ci(accuracy, y, pred), True),
        "macro_f1": Figure(m["macro_f1"], "fraction", ci(partial(macro_f1, n_labels=n), y, pred), True),
    }
    for k in ("macro_precision", "macro_recall", "micro_f1"):
        figures[k] = Figure(m[k], "fraction", None, True)
    majority = int(np.bincount(y, minlength=n).argmax())
    base = classification_metrics(y, np.full_like(y, majority), n_labels=n)
    figures.update(_baseline(figures["macro_f1"], base["accuracy"], base["macro_f1"],
                             f"always {ctx.labels[majority]!r}"))
    report = classification_report(y, pred, labels=list(range(n)), target_names=ctx.labels, output_dict=True,
                                   zero_division=0)
    per_class = {lbl: {k: round(float(v), 6) for k, v in report[lbl].items()} for lbl in ctx.labels}
    cm = confusion_matrix(y, pred, labels=list(range(n))).tolist()
    return ProbeResult("performance", figures, {"rows": len(y), "per_class": per_class, "confusion_matrix": cm,
                                                "labels": ctx.labels, "baseline": {
                                                    "rule": f"always {ctx.labels[majority]!r}",
                                                    "accuracy": base["accuracy"], "macro_f1": base["macro_f1"]}})


def _baseline(f1: Figure, base_accuracy: float, base_f1: float, rule: str) -> dict[str, Figure]:
    """The baseline's figures and ``f1_lift``: how far the model's F1 is *surely* above the baseline's (the
    lower end of its confidence interval, or the value itself without one, minus the baseline's F1)."""
    low = f1.ci[0] if f1.ci is not None else f1.value
    lift = None if low is None else float(low) - base_f1
    return {
        "baseline_accuracy": Figure(base_accuracy, "fraction", None, None, f"majority-class baseline: {rule}"),
        "baseline_macro_f1": Figure(base_f1, "fraction", None, None, f"majority-class baseline: {rule}"),
        "f1_lift": Figure(lift, "fraction", None, True,
                          "lower end of the F1 interval minus the baseline's F1; ≤ 0: not shown to beat the baseline"),
    }


def _ner(ctx: EvalContext) -> ProbeResult:
    from seqeval.metrics import classification_report

    from steward.metrics import ner_metrics

    gold, pred = ctx.tags, ctx.predictor.predict_tags(ctx.tokens)  # type: ignore[attr-defined]
    m = ner_metrics(gold, pred)
    cfg = ctx.cfg
    idx = np.arange(len(gold))

    def f1_at(rows: np.ndarray) -> float:
        return ner_metrics([gold[i] for i in rows], [pred[i] for i in rows])["entity_f1"]

    figures = {
        "entity_f1": Figure(m["entity_f1"], "fraction",
                            bootstrap_ci(f1_at, idx, n=min(cfg.bootstrap, 200), confidence=cfg.confidence,
                                         random_state=cfg.seed), True),
        "entity_precision": Figure(m["entity_precision"], "fraction", None, True),
        "entity_recall": Figure(m["entity_recall"], "fraction", None, True),
        "accuracy": Figure(m["accuracy"], "fraction (tokens)", None, True),
    }
    base = ner_metrics(gold, [["O"] * len(g) for g in gold])  # tags nothing: entity F1 0
    lift = _baseline(figures["entity_f1"], base["accuracy"], base["entity_f1"], "tag every token O")
    figures.update({"baseline_accuracy": Figure(base["accuracy"], "fraction (tokens)", None, None,
                                                lift["baseline_accuracy"].note),
                    "baseline_entity_f1": lift["baseline_macro_f1"], "f1_lift": lift["f1_lift"]})
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    per_type = {k: {kk: round(float(vv), 6) for kk, vv in v.items()} for k, v in report.items()}
    return ProbeResult("performance", figures, {"rows": len(gold), "per_type": per_type})


def _multilabel(ctx: EvalContext) -> ProbeResult:
    from steward.metrics import multilabel_metrics

    cfg = ctx.cfg
    pred = (ctx.proba() >= 0.5).astype(int)
    m = multilabel_metrics(ctx.y, pred)

    def subset_accuracy(a: np.ndarray, b: np.ndarray) -> float:
        return float((a == b).all(axis=1).mean())

    figures = {
        "accuracy": Figure(m["accuracy"], "fraction (exact label set)",
                           bootstrap_ci(subset_accuracy, ctx.y, pred, n=cfg.bootstrap, confidence=cfg.confidence,
                                        random_state=cfg.seed), True),
        "macro_f1": Figure(m["macro_f1"], "fraction", None, True),
        "micro_f1": Figure(m["micro_f1"], "fraction", None, True),
    }
    majority = np.tile((ctx.y.mean(axis=0) > 0.5).astype(int), (len(ctx.y), 1))  # each label's majority value
    base = multilabel_metrics(ctx.y, majority)

    def macro(a: np.ndarray, b: np.ndarray) -> float:
        return multilabel_metrics(a, b)["macro_f1"]

    f1 = Figure(m["macro_f1"], "fraction", bootstrap_ci(macro, ctx.y, pred, n=cfg.bootstrap,
                                                         confidence=cfg.confidence, random_state=cfg.seed), True)
    figures["macro_f1"] = f1
    figures.update(_baseline(f1, base["accuracy"], base["macro_f1"], "each label at its majority value"))
    return ProbeResult("performance", figures, {"rows": len(pred), "threshold": 0.5, "labels": ctx.labels})
