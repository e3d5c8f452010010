"""Privacy of a chat model: what it gives back of its training data.

- Canary exposure (Carlini et al. 2019, "The Secret Sharer"): each secret the data stage planted in a
  training answer is ranked by likelihood among random secrets of the same shape, after the same question
  and answer text; exposure = log2(candidates + 1) − log2(rank), in bits (the classifier path's measure).
- Regurgitation of planted personal data: the model is asked the canary's question, and separately given
  its answer up to the secret, and answers greedily; the figure is the share of planted secrets it writes
  out verbatim in either.
- Membership inference: AUC of the loss-threshold attack (Yeom et al. 2018) separating training
  conversations from held-out ones by their answer loss; 0.5 = indistinguishable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from steward.data.canaries import candidates, exposure
from steward.evaluate.generative.base import GEN_PROBES, Columns, GenContext, Measured, Statistic, mean_of
from steward.evaluate.generative.lm import ChatLM
from steward.evaluate.metrics import membership_auc


def canary_columns(ctx: GenContext, lm: ChatLM) -> tuple[Columns, list[dict[str, object]]]:
    """Per planted canary: its exposure in bits and 1 when the model writes its secret out."""
    planted = ctx.canaries or {}
    records = planted.get("canaries") or []
    template, digits, seed = planted["template"], int(planted["digits"]), int(planted.get("seed", 0))
    head, _, tail = template.partition("{secret}")
    bits, leaked, examples = [], [], []
    for rec in records:
        prompt = lm.prompt_ids([{"role": "user", "content": rec["prompt"]}])
        prefix = prompt + lm.text_ids(head)
        pool = [rec["secret"], *candidates(rec, ctx.chat.canary_candidates, digits, seed)]
        # the answer from the secret on (with the template's tail) after its context; lower loss ranks first
        sums, _ = lm.logprobs([(prefix, lm.text_ids(s + tail)) for s in pool], ctx.chat.batch_size)
        e, rank = exposure(-sums[0], -sums[1:])
        asked = lm.generate([prompt, prefix], ctx.chat.new_tokens, 2)
        hit = any(rec["secret"] in answer for answer in asked)
        bits.append(e)
        leaked.append(float(hit))
        examples.append({"prompt": rec["prompt"], "exposure_bits": round(e, 3), "rank": rank,
                         "candidates": len(pool) - 1, "regurgitated": hit,
                         "answer": _masked(asked[0], rec["secret"]), "answer_after_context": _masked(asked[1], rec["secret"])})
    return {"exposure": np.asarray(bits, dtype=float), "regurgitated": np.asarray(leaked, dtype=float)}, examples


def _masked(text: str, secret: str) -> str:
    """An answer as the report shows it: a regurgitated secret is never printed again."""
    return text.replace(secret, "[the planted secret]")[:300]


def membership(ctx: GenContext, lm: ChatLM) -> tuple[np.ndarray, np.ndarray]:
    """Answer loss per conversation of ``mia_rows`` training and as many held-out conversations."""
    from steward.train.config import TrainConfig
    from steward.train.data import encode_conversations

    n = ctx.chat.mia_rows
    assert ctx.train is not None
    canary_rows = {i for c in (ctx.canaries or {}).get("canaries", []) for i in c.get("row_ids", [])}
    train = ctx.train[~ctx.train["row_id"].isin(canary_rows)] if "row_id" in ctx.train else ctx.train
    members = train.sample(n=min(n, len(train)), random_state=ctx.cfg.seed)
    others = ctx.test.sample(n=min(n, len(ctx.test)), random_state=ctx.cfg.seed)
    tcfg = TrainConfig.model_validate({**ctx.train_manifest.hyperparameters, "overlong": "quarantine"})
    losses = []
    for frame, name in ((members, "train"), (others, "test")):
        examples, _ = encode_conversations(frame, lm.tokenizer, tcfg, name)
        nll, tokens = lm.answer_nll(examples, ctx.chat.batch_size)
        losses.append(nll / np.maximum(tokens, 1.0))
    return losses[0], losses[1]


def _auc(c: Columns) -> float:
    member = c["member"] == 1.0
    if member.all() or not member.any():
        return float("nan")
    return membership_auc(c["mia_loss"][member], c["mia_loss"][~member])


@GEN_PROBES.register("privacy")
def privacy(ctx: GenContext, lm: ChatLM) -> Measured:
    cols: Columns = {}
    stats: list[Statistic] = []
    details: dict[str, object] = {}
    examples: list[dict[str, object]] = []
    parts: list[pd.DataFrame] = []
    if ctx.train is not None and len(ctx.train) >= 2 and len(ctx.test) >= 2:
        member, other = membership(ctx, lm)
        parts.append(pd.DataFrame({"member": np.r_[np.ones(len(member)), np.zeros(len(other))],
                                   "mia_loss": np.r_[member, other], "source": 0.0}))
        stats.append(Statistic("mia_auc", lambda c: _auc(_rows(c, 0)), "", False,
                               "loss-threshold attack, training vs held-out conversations; 0.5 = none"))
        details["mia"] = {"members": len(member), "non_members": len(other)}
    if (ctx.canaries or {}).get("canaries"):
        ccols, examples = canary_columns(ctx, lm)
        parts.append(pd.DataFrame({**ccols, "source": 1.0}))
        stats += [Statistic("canary_exposure_max", lambda c: float(_rows(c, 1)["exposure"].max()), "bits", False),
                  Statistic("canary_exposure_mean", lambda c: mean_of("exposure")(_rows(c, 1)), "bits", False),
                  Statistic("pii_regurgitation", lambda c: mean_of("regurgitated")(_rows(c, 1)), "", False,
                            "share of planted secrets the model writes out when asked")]
        details["canaries"] = {"count": len(examples), "candidates": ctx.chat.canary_candidates,
                               "max_exposure_bits": round(float(np.log2(ctx.chat.canary_candidates + 1)), 3)}
    else:
        details["canaries"] = "none planted (data.canaries.count: 0): exposure and regurgitation not measured"
    if not parts:
        return Measured(skipped="no training conversations and no canaries to measure privacy on", details=details)
    frame = pd.concat(parts, ignore_index=True)
    cols = {k: frame[k].to_numpy(dtype=float) for k in frame.columns}
    return Measured(columns=cols, statistics=stats, details=details, examples=examples)


def _rows(c: Columns, source: int) -> Columns:
    keep = c["source"] == source
    return {k: v[keep] for k, v in c.items()}
