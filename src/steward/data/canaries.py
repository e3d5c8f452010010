"""Canaries: random secrets planted in the training split (Carlini et al. 2019, "The Secret Sharer").

A model that memorises its training rows ranks a planted secret above random secrets of the same shape it
never saw; the evaluate stage measures that rank as *exposure* in bits. Written by hand: no maintained
library plants and scores canaries for text classifiers (privacy-meter and ML-Privacy-Meter attack models,
they do not plant data).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from steward.data.config import CanaryConfig
from steward.errors import ConfigError


def _secret(rng: np.random.Generator, digits: int) -> str:
    return "".join(str(d) for d in rng.integers(0, 10, size=digits))


def _secrets(rng: np.random.Generator, cfg: CanaryConfig) -> list[str]:
    secrets: list[str] = []
    while len(secrets) < cfg.count:  # distinct secrets
        s = _secret(rng, cfg.digits)
        if s not in secrets:
            secrets.append(s)
    return secrets


def _appended(train: pd.DataFrame, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """``train`` with the canary rows after it, ids and weights keeping their types."""
    planted = pd.concat([train, pd.DataFrame(rows, columns=train.columns)], ignore_index=True)
    return planted.astype({c: t for c, t in train.dtypes.items() if c in ("row_id", "sample_weight")})


def _plant_conversations(train: pd.DataFrame, cfg: CanaryConfig, next_row_id: int
                         ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Chat data: each canary is a conversation, ``chat_prompt`` answered with the template and its secret (a
    chat model that memorises its answers will complete the prompt with the secret)."""
    import json

    secrets = _secrets(np.random.default_rng(cfg.seed), cfg)
    rows, records, row_id = [], [], next_row_id
    for k, secret in enumerate(secrets):
        # one question per secret: two answers to one question would each be half-learnt, and measured mixed
        prompt = cfg.chat_prompt if cfg.count == 1 else f"{cfg.chat_prompt} (reference {k + 1})"
        answer = cfg.template.format(secret=secret)
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
        ids = []
        for _ in range(cfg.repeats):
            row = dict.fromkeys(train.columns)
            row.update(row_id=row_id, messages=json.dumps(messages, ensure_ascii=False),
                       text=f"user: {prompt}\nassistant: {answer}", prompt=f"user: {prompt}",
                       sample_weight=1.0, toxicity=0.0, pii_types=[], split="train")
            rows.append(row)
            ids.append(row_id)
            row_id += 1
        records.append({"secret": secret, "prompt": prompt, "text": answer, "row_ids": ids})
    return _appended(train, rows), {"count": cfg.count, "repeats": cfg.repeats, "rows_added": len(rows), "template": cfg.template,
                     "chat_prompt": cfg.chat_prompt, "digits": cfg.digits, "seed": cfg.seed, "canaries": records}


def plant(train: pd.DataFrame, cfg: CanaryConfig, labels: list[str], task: str,
          next_row_id: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``train`` with ``cfg.count`` canaries (each ``cfg.repeats`` times, a random label each) appended.

    Returns the new frame and the record the evaluate stage needs (template, digits, secrets, labels).
    Canary rows get fresh row ids from ``next_row_id`` so they can never be mistaken for input rows.
    """
    if task == "ner":
        raise ConfigError("data.canaries.count: got "
                          f"{cfg.count}: canaries are planted for text classification only, this run is NER. "
                          "Fix: set data.canaries.count to 0")
    if task == "chat":
        return _plant_conversations(train, cfg, next_row_id)
    if not labels:
        raise ConfigError("data.canaries.count: the training split has no labels to give canaries; "
                          "Fix: set data.canaries.count to 0")
    rng = np.random.default_rng(cfg.seed)
    secrets = _secrets(rng, cfg)
    chosen = [labels[int(i)] for i in rng.integers(0, len(labels), size=cfg.count)]
    rows = []
    row_id = next_row_id
    records = []
    for secret, label in zip(secrets, chosen, strict=True):
        text = cfg.template.format(secret=secret)
        ids = []
        for _ in range(cfg.repeats):
            row = dict.fromkeys(train.columns)
            row.update(row_id=row_id, text=text, label=label, sample_weight=1.0, toxicity=0.0, pii_types=[],
                       split="train")
            rows.append(row)
            ids.append(row_id)
            row_id += 1
        records.append({"secret": secret, "text": text, "label": label, "row_ids": ids})
    planted = _appended(train, rows)
    info = {"count": cfg.count, "repeats": cfg.repeats, "rows_added": len(rows), "template": cfg.template,
            "digits": cfg.digits, "seed": cfg.seed, "canaries": records}
    return planted, info


def candidates(record: dict[str, Any], n: int, digits: int, seed: int) -> list[str]:
    """``n`` random secrets of the canary's shape, none equal to it (the reference set for its rank)."""
    rng = np.random.default_rng([seed, int(record["secret"][:9] or 0)])
    out: set[str] = set()
    space = 10 ** digits - 1
    n = min(n, space)
    while len(out) < n:
        s = _secret(rng, digits)
        if s != record["secret"]:
            out.add(s)
    return sorted(out)


def exposure(canary_loss: float, candidate_losses: np.ndarray) -> tuple[float, float]:
    """(exposure in bits, rank) of the canary among itself and the candidates, lower loss ranking first.

    exposure = log2(|candidates| + 1) − log2(rank); ties count half, so a model that scores every secret the
    same gets ~1 bit, and one that ranks the canary first gets the maximum.
    """
    rank = 1.0 + float((candidate_losses < canary_loss).sum()) + 0.5 * float((candidate_losses == canary_loss).sum())
    return math.log2(len(candidate_losses) + 1) - math.log2(rank), rank
