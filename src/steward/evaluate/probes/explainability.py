"""Explainability: token attributions by Integrated Gradients (Captum) and occlusion, judged by their
faithfulness (comprehensiveness and sufficiency at the top-k share of tokens) against a random ranking."""

from __future__ import annotations

from typing import Any

import numpy as np

from steward.evaluate.explain import faithfulness, integrated_gradients, occlusion
from steward.evaluate.probes.base import PROBES, EvalContext, Figure, ProbeResult


@PROBES.register("explainability")
def explainability(ctx: EvalContext) -> ProbeResult:
    if ctx.task != "classification":
        return ProbeResult("explainability", skipped=f"attributions are measured for single-label classification; this model is {ctx.task}")
    clf = ctx.predictor
    if not hasattr(clf, "tokenizer") or not hasattr(clf, "logits_from_ids"):
        return ProbeResult("explainability", skipped="the predictor exposes no tokenizer to attribute through")
    cfg = ctx.cfg.explain
    methods = list(cfg.methods)
    notes = []
    if "integrated_gradients" in methods and not getattr(clf, "differentiable", False):
        # int8 and ONNX models have no autograd: occlusion (model calls only) still explains them.
        methods = [m for m in methods if m != "integrated_gradients"] or ["occlusion"]
        notes.append("Integrated Gradients needs gradients, which this model (int8 or ONNX) does not have; "
                     "occlusion only")
    rng = np.random.default_rng(ctx.cfg.seed)
    rows = np.sort(rng.choice(len(ctx.texts), size=min(cfg.rows, len(ctx.texts)), replace=False))
    texts = [ctx.texts[i] for i in rows]
    targets = [int(t) for t in ctx.pred()[rows]]
    attributions: dict[str, list[Any]] = {}
    for method in methods:
        if method == "integrated_gradients":
            attributions[method] = [integrated_gradients(clf, t, y, cfg.ig_steps) for t, y in zip(texts, targets, strict=True)]
        else:
            attributions[method] = [occlusion(clf, t, y) for t, y in zip(texts, targets, strict=True)]
    rankings = {m: [list(np.argsort(-np.asarray(a.scores), kind="stable")) for a in attrs]
                for m, attrs in attributions.items()}
    lengths = [len(a.tokens) for a in next(iter(attributions.values()))]
    rankings["random"] = [list(rng.permutation(n)) for n in lengths]
    figures: dict[str, Figure] = {}
    details: dict[str, Any] = {"rows": len(rows), "top_k": cfg.top_k, "methods": {}, "notes": notes}
    for method, rank in rankings.items():
        comp, suff = faithfulness(clf, texts, rank, targets, cfg.top_k)
        details["methods"][method] = {"comprehensiveness": float(comp.mean()), "sufficiency": float(suff.mean())}
    best = max((m for m in rankings if m != "random"), key=lambda m: details["methods"][m]["comprehensiveness"])
    figures["comprehensiveness"] = Figure(details["methods"][best]["comprehensiveness"], "probability", None, True,
                                          f"best method: {best}")
    figures["sufficiency"] = Figure(details["methods"][best]["sufficiency"], "probability", None, False)
    figures["comprehensiveness_random"] = Figure(details["methods"]["random"]["comprehensiveness"], "probability",
                                                 None, None, "random token ranking, for reference")
    details["best_method"] = best
    examples = [{"text": texts[k], "label": ctx.labels[targets[k]],
                 **{m: {"tokens": attributions[m][k].tokens, "scores": [round(s, 5) for s in attributions[m][k].scores]}
                    for m in attributions}} for k in range(min(cfg.max_examples, len(texts)))]
    return ProbeResult("explainability", figures, details, examples)
