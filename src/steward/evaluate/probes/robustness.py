"""Robustness: character, word and sentence-level attacks on correctly classified test rows. Reports
accuracy under attack, attack success rate, queries used, a success-versus-edit-budget curve and examples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from steward.canonical import canonical_text
from steward.evaluate.attacks import (
    AttackOutcome,
    char_candidates,
    distractor_attack,
    greedy_word_attack,
    synonyms,
)
from steward.evaluate.probes.base import PROBES, EvalContext, Figure, ProbeResult
from steward.inference import Predictor


class ServedPredictor:
    """The predictor behind the services' first step: every text in its canonical form, as the guard chain
    passes it to the model (a homoglyph or zero-width attack on a served model meets the chain first)."""

    def __init__(self, inner: Predictor) -> None:
        self.inner = inner
        self.labels = inner.labels

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.predict_proba([canonical_text(t) for t in texts])


@PROBES.register("robustness")
def robustness(ctx: EvalContext) -> ProbeResult:
    if ctx.task != "classification":
        return ProbeResult("robustness", skipped=f"attacks are run on single-label classification; this model is {ctx.task}")
    cfg = ctx.cfg.robustness
    pred = ctx.pred()
    correct = np.flatnonzero(pred == ctx.y)
    if not len(correct):
        return ProbeResult("robustness", skipped="the model classifies no evaluated row correctly")
    rng = np.random.default_rng(ctx.cfg.seed)
    rows = np.sort(rng.choice(correct, size=min(cfg.max_rows, len(correct)), replace=False))
    clean_acc = float(len(correct) / len(ctx.y))
    figures: dict[str, Figure] = {}
    details: dict[str, Any] = {"attacked_rows": len(rows), "clean_accuracy": clean_acc, "attacks": {},
                               "as_served": cfg.as_served}
    predictor = ServedPredictor(ctx.predictor) if cfg.as_served else ctx.predictor
    examples: list[dict[str, Any]] = []
    worst: tuple[float, str] | None = None
    for attack in cfg.attacks:
        outcomes: list[AttackOutcome] = []
        for i in rows:
            text, label = ctx.texts[i], int(ctx.y[i])
            if attack == "sentence":
                out = distractor_attack(text, label, predictor, max_queries=cfg.max_queries)
            else:
                cands = char_candidates if attack == "char" else synonyms
                out = greedy_word_attack(text, label, predictor, cands, max_queries=cfg.max_queries,
                                         max_edit_share=cfg.max_edits)
            outcomes.append(out)
        success = np.array([o.success for o in outcomes])
        rate = float(success.mean())
        share = np.array([o.edits / max(1, o.words) for o in outcomes])
        curve = [{"max_edit_share": float(b), "success_rate": float((success & (share <= b + 1e-9)).mean())}
                 for b in np.linspace(0.05, cfg.max_edits, 5)]
        details["attacks"][attack] = {
            "success_rate": rate, "accuracy_under_attack": clean_acc * (1 - rate),
            "mean_queries": float(np.mean([o.queries for o in outcomes])),
            "mean_edits_when_successful": float(np.mean([o.edits for o in outcomes if o.success])) if success.any()
            else None, "curve": curve,
        }
        figures[f"{attack}_attack_success"] = Figure(rate, "fraction", None, False)
        figures[f"{attack}_accuracy_under_attack"] = Figure(clean_acc * (1 - rate), "fraction", None, True)
        if worst is None or rate > worst[0]:
            worst = (rate, attack)
        for o, i in [(o, i) for o, i in zip(outcomes, rows, strict=True) if o.success][: cfg.max_examples]:
            examples.append({"attack": attack, "original": ctx.texts[i], "adversarial": o.adversarial,
                             "label": ctx.labels[int(ctx.y[i])], "new_label": ctx.labels[o.final_label],
                             "queries": o.queries, "edits": o.edits})
    if worst is not None:
        figures["attack_success"] = Figure(worst[0], "fraction", None, False, f"worst attack: {worst[1]}")
    return ProbeResult("robustness", figures, details, examples)
