"""Privacy leakage: a loss-threshold membership-inference attack (Yeom et al. 2018) on training rows versus
held-out rows. AUC near 0.5 means the model does not give its training data away; the DP ε spent in
training is shown beside it."""

from __future__ import annotations

import numpy as np

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
    dp = ctx.train_manifest.get("privacy") or {}
    figures = {"mia_auc": Figure(auc, "AUC", ci, False, "0.5 = attacker cannot tell members from non-members")}
    if dp.get("enabled"):
        figures["dp_epsilon"] = Figure(dp.get("epsilon"), "ε", None, False, f"δ = {dp.get('delta')}")
    details = {"attack": "loss threshold", "members": n, "non_members": n,
               "member_loss_mean": float(member_loss.mean()), "non_member_loss_mean": float(outsider_loss.mean()),
               "dp": {k: dp.get(k) for k in ("enabled", "epsilon", "delta", "noise_multiplier") if k in dp},
               "canaries": "none planted by the data stage"}
    return ProbeResult("privacy", figures, details)
