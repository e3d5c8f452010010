"""Privacy leakage: a loss-threshold membership-inference attack (Yeom et al. 2018) on training rows versus
held-out rows. AUC near 0.5 means the model does not give its training data away; the DP ε spent in
training is shown beside it. When the data stage planted canaries, their exposure (Carlini et al. 2019) is
measured too: how far above random secrets of the same shape the model ranks each planted one."""

from __future__ import annotations

from typing import Any

import numpy as np

from steward.data.canaries import candidates, exposure
from steward.evaluate.metrics import bootstrap_ci, membership_auc
from steward.evaluate.probes.base import PROBES, EvalContext, Figure, ProbeResult
from steward.inference import per_example_loss


@PROBES.register("privacy")
def privacy(ctx: EvalContext) -> ProbeResult:
    if ctx.task != "classification":
        return ProbeResult("privacy", skipped=f"membership inference is run on single-label classification; this model is {ctx.task}")
    if not len(ctx.train_texts):
        return ProbeResult("privacy", skipped="no training rows available to attack")
    rng = np.random.default_rng(ctx.cfg.seed)
    n = min(ctx.cfg.privacy.rows, len(ctx.train_texts), len(ctx.texts))
    members = rng.choice(len(ctx.train_texts), size=n, replace=False)
    outsiders = rng.choice(len(ctx.texts), size=n, replace=False)
    member_loss = per_example_loss(ctx.predictor.predict_proba([ctx.train_texts[i] for i in members]),
                                   ctx.train_y[members])
    outsider_loss = per_example_loss(ctx.proba()[outsiders], ctx.y[outsiders])
    auc = membership_auc(member_loss, outsider_loss)
    y = np.r_[np.ones(n), np.zeros(n)]
    loss = np.r_[member_loss, outsider_loss]

    def auc_of(yy: np.ndarray, ll: np.ndarray) -> float:
        if len(np.unique(yy)) < 2:
            raise ValueError("one class")
        return membership_auc(ll[yy == 1], ll[yy == 0])

    ci = bootstrap_ci(auc_of, y, loss, n=ctx.cfg.bootstrap, confidence=ctx.cfg.confidence, random_state=ctx.cfg.seed)
    dp = (ctx.train_manifest.privacy if ctx.train_manifest else None) or {}
    figures = {"mia_auc": Figure(auc, "AUC", ci, False, "0.5 = attacker cannot tell members from non-members")}
    if dp.get("enabled"):
        figures["dp_epsilon"] = Figure(dp.get("epsilon"), "ε", None, False, f"δ = {dp.get('delta')}")
    details = {"attack": "loss threshold", "members": n, "non_members": n,
               "member_loss_mean": float(member_loss.mean()), "non_member_loss_mean": float(outsider_loss.mean()),
               "dp": {k: dp.get(k) for k in ("enabled", "epsilon", "delta", "noise_multiplier") if k in dp},
               "canaries": "none planted by the data stage"}
    if ctx.canaries and ctx.canaries.get("canaries"):
        summary, per_canary = canary_exposure(ctx)
        figures["canary_exposure_max"] = Figure(summary["max"], "bits", None, False,
                                                f"of at most {summary['max_possible']:.2f}; ~1 = not memorised")
        figures["canary_exposure_mean"] = Figure(summary["mean"], "bits", None, False)
        details["canaries"] = {**summary, "per_canary": per_canary}
    return ProbeResult("privacy", figures, details)


def canary_exposure(ctx: EvalContext) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Exposure of every planted canary against ``privacy.canary_candidates`` random secrets."""
    planted = ctx.canaries or {}
    n = ctx.cfg.privacy.canary_candidates
    template, digits = planted["template"], int(planted["digits"])
    rows = []
    for rec in planted["canaries"]:
        if rec["label"] not in ctx.labels:
            continue  # its label did not survive into the model (e.g. a label filter); nothing to score
        label = ctx.labels.index(rec["label"])
        others = candidates(rec, n, digits, ctx.cfg.seed)
        texts = [rec["text"]] + [template.format(secret=s) for s in others]
        loss = per_example_loss(ctx.predictor.predict_proba(texts), np.full(len(texts), label))
        bits, rank = exposure(float(loss[0]), loss[1:])
        rows.append({"text": rec["text"], "label": rec["label"], "copies": len(rec.get("row_ids", [])),
                     "rank": rank, "exposure": round(bits, 4)})
    values = np.array([r["exposure"] for r in rows]) if rows else np.zeros(1)
    max_possible = float(np.log2(n + 1))
    summary = {"scored": len(rows), "candidates": n, "template": template, "digits": digits,
               "max": float(values.max()), "mean": float(values.mean()), "max_possible": max_possible,
               "ranked_first": int(sum(r["rank"] == 1.0 for r in rows))}
    return summary, rows
