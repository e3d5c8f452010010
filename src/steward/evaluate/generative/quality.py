"""Quality: the held-out answer loss and perplexity on the run's test conversations, and task accuracy
where the answers are checkable (they take a handful of values, as "positive" / "negative" do)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from steward.evaluate.generative.base import GEN_PROBES, Columns, GenContext, Measured, Statistic, mean_of
from steward.evaluate.generative.lm import ChatLM


def _token_loss(c: Columns) -> float:
    return float(c["nll"].sum() / max(c["tokens"].sum(), 1.0))


def _perplexity(c: Columns) -> float:
    return math.exp(min(_token_loss(c), 50.0))


def held_out(ctx: GenContext, lm: ChatLM) -> tuple[Columns, set[str]]:
    """Per conversation: the summed answer NLL and the answer tokens (as the train stage encodes them)."""
    from steward.train.config import TrainConfig
    from steward.train.data import encode_conversations

    frame = ctx.test.head(ctx.chat.quality_rows)
    tcfg = TrainConfig.model_validate({**ctx.train_manifest.hyperparameters, "overlong": "quarantine"})
    examples, set_aside = encode_conversations(frame, lm.tokenizer, tcfg, "test")
    nll, tokens = lm.answer_nll(examples, ctx.chat.batch_size)
    return {"nll": nll, "tokens": tokens}, {r["row_id"] for r in set_aside}


def answer_choices(frame: Any, limit: int) -> tuple[list[str], list[list[dict[str, str]]], list[str]] | None:
    """(the answers, each conversation's turns before its last answer, its gold answer) when the last answers
    take at most ``limit`` values and each value occurs at least twice; else None (not checkable)."""
    prompts, gold = [], []
    for messages in frame["messages"]:
        turns = json.loads(messages)
        last = max(i for i, m in enumerate(turns) if m["role"] == "assistant")
        prompts.append(turns[:last])
        gold.append(turns[last]["content"].strip())
    values, counts = np.unique(gold, return_counts=True)
    if not 2 <= len(values) <= limit or counts.min() < 2:
        return None
    return [str(v) for v in values], prompts, gold


def task_accuracy(ctx: GenContext, lm: ChatLM, skip: set[str] | frozenset[str] = frozenset()) -> Columns | None:
    """1 where the model gives the gold answer (and its end) the highest likelihood among the answers; on the
    held-out rows the loss is measured on (``skip``: row ids set aside as too long)."""
    frame = ctx.test.head(ctx.chat.quality_rows)
    frame = frame[~frame["row_id"].astype(str).isin(skip)]
    found = answer_choices(frame, ctx.chat.task_max_answers)
    if found is None:
        return None
    answers, prompts, gold = found
    end = [lm.tokenizer.eos_token_id]  # the train stage ends every answer with EOS
    conts = [lm.text_ids(a) + end for a in answers]
    pairs = [(lm.prompt_ids(p), c) for p in prompts for c in conts]
    sums, _ = lm.logprobs(pairs, ctx.chat.batch_size)
    best = sums.reshape(len(prompts), len(answers)).argmax(1)
    return {"correct": np.array([answers[b] == g for b, g in zip(best, gold, strict=True)], dtype=float)}


@GEN_PROBES.register("quality")
def quality(ctx: GenContext, lm: ChatLM) -> Measured:
    cols, set_aside = held_out(ctx, lm)
    stats = [Statistic("token_loss", _token_loss, "nats", False),
             Statistic("perplexity", _perplexity, "", False),
             Statistic("loss", lambda c: float((c["nll"] / np.maximum(c["tokens"], 1.0)).mean()), "nats", False,
                       "mean over conversations, as trained")]
    details: dict[str, Any] = {"conversations": len(cols["nll"]), "answer_tokens": int(cols["tokens"].sum()),
                               "set_aside_too_long": len(set_aside)}
    acc = task_accuracy(ctx, lm, set_aside)
    if acc is not None and len(acc["correct"]) == len(cols["nll"]):
        cols.update(acc)
        stats.append(Statistic("task_accuracy", mean_of("correct"), "", True,
                               "the gold answer ranked first by likelihood among the split's answers"))
        details["task"] = "checkable: the last answers take a few values; accuracy by answer likelihood"
    else:
        details["task"] = "not checkable: free-text answers (loss and perplexity only)"
    return Measured(columns=cols, statistics=stats, details=details)
