"""The data stage's steps on conversations (``input.task: chat``): each works on every turn, not on one text.

A row holds its turns (``messages``) and two plain transcripts derived from them (system turns left out):
``text`` (the user and assistant turns) for the quality and duplicate checks, and ``prompt`` (those before
the last answer) for the duplicate-prompt and leakage checks. A step that changes a turn derives both again.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from steward.data import dedup, normalise, screen
from steward.data.config import DataConfig
from steward.data.conversations import Conversation, transcript
from steward.data.pii.engine import PIIEngine
from steward.data.pii.operators import OperatorContext, PIIKey, apply_operators
from steward.data.quarantine import Quarantine


def with_turns(frame: pd.DataFrame, turns: list[list[dict[str, str]]]) -> pd.DataFrame:
    """``frame`` with new turns and the transcripts derived from them."""
    convs = [Conversation.of(m) for m in turns]
    return frame.assign(messages=turns, text=[transcript(c.turns) for c in convs],
                        prompt=[transcript(c.prompt) for c in convs])


def normalise_turns(frame: pd.DataFrame, cfg: DataConfig, q: Quarantine) -> pd.DataFrame:
    turns = [[{**t, "content": normalise.normalise_text(t["content"], cfg.normalise)} for t in m]
             for m in frame["messages"]]
    out = with_turns(frame, turns)
    q.changed(frame[out["text"].to_numpy() != frame["text"].to_numpy()], "normalised", "normalise")
    return out


def dedup_prompts(frame: pd.DataFrame, cfg: DataConfig, q: Quarantine) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Conversations whose prompts are the same (or near the same) as an earlier one's: the first is kept, so
    no question is learnt twice with two answers."""
    res = dedup.find_duplicates(frame["prompt"].tolist(), [""] * len(frame), frame["row_id"].tolist(), cfg.dedup,
                                near_labels=False)
    keep = np.ones(len(frame), dtype=bool)
    reasons: Counter[str] = Counter()
    for pos, (reason, kept) in sorted(res.drop.items()):
        name = reason.replace("duplicate_", "duplicate_prompt_", 1)
        q.drop(frame.iloc[[pos]], name, "dedup", f"same prompt as row {kept}")
        reasons[name] += 1
        keep[pos] = False
    return frame[keep], {"prompt_exact_dropped": reasons.get("duplicate_prompt_exact", 0),
                         "prompt_near_dropped": reasons.get("duplicate_prompt_near", 0)}


def pii_turns(frame: pd.DataFrame, cfg: DataConfig, q: Quarantine,
              engine: PIIEngine) -> tuple[pd.DataFrame, dict[str, Any]]:
    """PII found and acted on in every turn, the assistant's included (an answer that repeats a card number
    teaches the model to repeat card numbers)."""
    pcfg = cfg.pii
    key = PIIKey.from_env(pcfg.key_env)
    ctx = OperatorContext(pcfg, key)
    flat = [(i, j, t) for i, m in enumerate(frame["messages"]) for j, t in enumerate(m)]
    findings = engine.detect([t["content"] for _, _, t in flat])
    turns = [[dict(t) for t in m] for m in frame["messages"]]
    types: list[set[str]] = [set() for _ in range(len(frame))]
    details: list[list[str]] = [[] for _ in range(len(frame))]
    drop = np.zeros(len(frame), dtype=bool)
    by_type: Counter[str] = Counter()
    by_action: Counter[str] = Counter()
    by_role: Counter[str] = Counter()
    for (i, j, t), fs in zip(flat, findings, strict=True):
        new_text, changes = apply_operators(t["content"], fs, ctx)
        turns[i][j]["content"] = new_text
        types[i].update(f.entity_type for f in fs)
        by_type.update(str(c["entity"]) for c in changes)
        by_action.update(str(c["action"]) for c in changes)
        by_role.update(t["role"] for _ in changes)
        details[i] += [f"turn {j} ({t['role']}): {c['entity']}@{c['start']}-{c['end']}:{c['action']}" for c in changes]
        drop[i] |= any(c["action"] == "drop" for c in changes)
    out = with_turns(frame, turns).assign(pii_types=[sorted(s) for s in types])
    changed = np.array([bool(d) for d in details]) & ~drop
    if drop.any():
        q.drop(frame[drop], "pii", "pii", [", ".join(d) for d, x in zip(details, drop, strict=True) if x])
    if changed.any():
        q.changed(frame[changed], "pii_redacted", "pii", [", ".join(d) for d, x in zip(details, changed, strict=True) if x])
    info = {"enabled": True, "mode": "regex+ner" if engine.uses_ner else "regex", "ner_model": engine.ner_model_name,
            "rows_with_pii": int(sum(1 for s in types if s)), "by_role": dict(by_role),
            "pseudonym_key": ("ephemeral (set " + pcfg.key_env + " for stable pseudonyms)") if key.ephemeral else "env",
            "by_action": dict(by_action)}
    return out[~drop], {"by_type": dict(by_type.most_common()), **info}


def screen_turns(frame: pd.DataFrame, cfg: DataConfig, q: Quarantine) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Harmful text in any turn, with the answers judged by their own (stricter) threshold and action."""
    scfg = cfg.screen
    flat = [(i, t["role"]) for i, m in enumerate(frame["messages"]) for t in m]
    scores = screen.toxicity_scores([t["content"] for m in frame["messages"] for t in m])
    answer, other = np.zeros(len(frame)), np.zeros(len(frame))  # the worst score per row, answers apart
    for (i, role), s in zip(flat, scores, strict=True):
        worst = answer if role == "assistant" else other
        worst[i] = max(worst[i], s)
    answer_hit, other_hit = answer >= scfg.assistant_threshold, other >= scfg.threshold
    frame = frame.assign(toxicity=np.round(np.maximum(answer, other), 4))
    drop = (answer_hit & (scfg.assistant_action == "quarantine")) | (other_hit & (scfg.action == "quarantine"))
    answers = frame[drop & answer_hit]
    q.drop(answers, "harmful_answer", "screen", [f"answer toxicity {s:.2f}" for s in answer[drop & answer_hit]])
    rest = frame[drop & ~answer_hit]
    q.drop(rest, "harmful_text", "screen", [f"toxicity {s:.2f}" for s in other[drop & ~answer_hit]])
    info = {"enabled": True, "threshold": scfg.threshold, "action": scfg.action, "above_threshold": int(other_hit.sum()),
            "assistant_threshold": scfg.assistant_threshold, "assistant_action": scfg.assistant_action,
            "answers_above_threshold": int(answer_hit.sum())}
    return frame[~drop], info
