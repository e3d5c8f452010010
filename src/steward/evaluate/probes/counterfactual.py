"""Counterfactual fairness: swap one identity-term pair at a time in the test texts (he ↔ she, church ↔
mosque…) and measure how often the prediction flips and how far the predicted class's probability moves."""

from __future__ import annotations

from typing import Any

import numpy as np

from steward.evaluate.probes.base import PROBES, EvalContext, Figure, ProbeResult
from steward.textops import (
    IDENTITY_PAIRS_BY_CATEGORY,
    counterfactual,
    swap_map,
    term_pattern,
)


@PROBES.register("counterfactual")
def counterfactual_probe(ctx: EvalContext) -> ProbeResult:
    if ctx.task != "classification":
        return ProbeResult("counterfactual", skipped=f"counterfactual swaps are measured for single-label classification; this model is {ctx.task}")
    cfg = ctx.cfg.counterfactual
    lexicon = cfg.pairs if cfg.pairs is not None else IDENTITY_PAIRS_BY_CATEGORY
    variants: list[tuple[int, str, str, str]] = []  # (row, category, "a<->b", swapped text)
    for category, pairs in lexicon.items():
        for a, b in pairs:
            rx, mapping = term_pattern([a, b]), swap_map([(a, b)])
            for i, text in enumerate(ctx.texts):
                if rx.search(text):
                    swapped = counterfactual(text, mapping)
                    if swapped is not None and swapped != text:
                        variants.append((i, category, f"{a}<->{b}", swapped))
    if not variants:
        return ProbeResult("counterfactual", details={"categories": list(lexicon)},
                           skipped="no evaluated text contains an identity term of the lexicon")
    base = ctx.proba()
    cf = ctx.predictor.predict_proba([v[3] for v in variants])
    rows = np.array([v[0] for v in variants])
    orig_pred = base[rows].argmax(1)
    flipped = cf.argmax(1) != orig_pred
    shift = np.abs(cf[np.arange(len(rows)), orig_pred] - base[rows, orig_pred])
    by_pair: dict[str, dict[str, Any]] = {}
    by_category: dict[str, dict[str, Any]] = {}
    for key, pick in (("pair", 2), ("category", 1)):
        target = by_pair if key == "pair" else by_category
        names = np.array([v[pick] for v in variants])
        for name in dict.fromkeys(names):
            m = names == name
            target[str(name)] = {"n": int(m.sum()), "flip_rate": float(flipped[m].mean()),
                                 "mean_shift": float(shift[m].mean())}
    for pair_name, stats in by_pair.items():
        stats["category"] = next(v[1] for v in variants if v[2] == pair_name)
    worst = np.argsort(-shift, kind="stable")[: cfg.max_examples]
    examples = [{"original": ctx.texts[variants[k][0]], "counterfactual": variants[k][3], "pair": variants[k][2],
                 "original_label": ctx.labels[int(orig_pred[k])], "counterfactual_label": ctx.labels[int(cf[k].argmax())],
                 "shift": round(float(shift[k]), 4)} for k in worst]
    figures = {
        "flip_rate": Figure(float(flipped.mean()), "fraction", None, False, f"{len(variants)} swapped texts"),
        "mean_shift": Figure(float(shift.mean()), "probability", None, False),
        "rows_with_terms": Figure(float(len(set(rows.tolist())) / len(ctx.texts)), "fraction"),
    }
    return ProbeResult("counterfactual", figures, {"by_category": by_category, "by_pair": by_pair,
                                                   "variants": len(variants)}, examples)
