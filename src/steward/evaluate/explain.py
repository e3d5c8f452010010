"""Token attributions (Integrated Gradients through Captum; occlusion) and their faithfulness.

Faithfulness follows ERASER (DeYoung et al. 2020): comprehensiveness = p(y|x) − p(y|x without its top-k
tokens), higher is better; sufficiency = p(y|x) − p(y|only the top-k tokens), lower is better. Both are
computed on the model's own word pieces, so every explainer is judged on the same units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Attribution:
    tokens: list[str]  # word pieces, special tokens removed
    scores: list[float]  # signed attribution toward ``target`` per token
    target: int
    method: str


def _ids(clf: Any, text: str) -> list[int]:
    if hasattr(clf, "token_ids"):  # thread-safe: the service encodes in several threads at once
        return list(clf.token_ids(text))
    return list(clf.tokenizer(text, truncation=True, max_length=clf.max_length)["input_ids"])


def _proba_ids(clf: Any, rows: Sequence[Sequence[int]]) -> np.ndarray:
    """Class probabilities for token-id rows (padded per batch), from any classifier that scores ids."""
    z = clf.logits_from_ids(rows)
    z = z - z.max(axis=1, keepdims=True) if len(z) else z
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True) if len(z) else z


def _inner(ids: list[int], clf: Any) -> list[int]:
    """Positions of real tokens (not [CLS]/[SEP]/padding)."""
    special = set(clf.tokenizer.all_special_ids)
    return [i for i, t in enumerate(ids) if t not in special]


def integrated_gradients(clf: Any, text: str, target: int, steps: int) -> Attribution:
    """Layer Integrated Gradients on the input embeddings, from an all-[PAD] baseline (specials kept)."""
    import torch
    from captum.attr import LayerIntegratedGradients

    ids = _ids(clf, text)
    inner = _inner(ids, clf)
    x = torch.tensor([ids])
    baseline = x.clone()
    baseline[0, inner] = clf.tokenizer.pad_token_id or 0
    mask = torch.ones_like(x)

    def forward(input_ids: Any) -> Any:
        return torch.softmax(clf.model(input_ids=input_ids, attention_mask=mask.expand_as(input_ids)).logits, -1)

    lig = LayerIntegratedGradients(forward, clf.model.get_input_embeddings())
    attr = lig.attribute(x, baselines=baseline, target=target, n_steps=steps, internal_batch_size=steps)
    scores = attr.sum(-1)[0].detach().numpy()
    tokens = clf.tokenizer.convert_ids_to_tokens(ids)
    return Attribution([tokens[i] for i in inner], [float(scores[i]) for i in inner], target, "integrated_gradients")


def occlusion(clf: Any, text: str, target: int) -> Attribution:
    """Drop in the target's probability when each token alone is removed (one query per token)."""
    ids = _ids(clf, text)
    inner = _inner(ids, clf)
    rows = [ids] + [ids[:i] + ids[i + 1:] for i in inner]
    p = _proba_ids(clf, rows)
    tokens = clf.tokenizer.convert_ids_to_tokens(ids)
    return Attribution([tokens[i] for i in inner], [float(p[0, target] - p[k + 1, target]) for k in range(len(inner))],
                       target, "occlusion")


def faithfulness(clf: Any, texts: Sequence[str], rankings: Sequence[Sequence[int]], targets: Sequence[int],
                 top_k: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-row comprehensiveness and sufficiency when the ``top_k`` share of tokens (by each ranking) is
    removed or kept. ``rankings`` index the inner tokens, most important first."""
    full, without, only = [], [], []
    for text, rank in zip(texts, rankings, strict=True):
        ids = _ids(clf, text)
        inner = _inner(ids, clf)
        k = max(1, round(top_k * len(inner)))
        top = {inner[j] for j in list(rank)[:k]}
        full.append(ids)
        without.append([t for i, t in enumerate(ids) if i not in top])
        only.append([t for i, t in enumerate(ids) if i in top or i not in inner])
    n = len(full)
    p = _proba_ids(clf, full + without + only)
    idx = np.arange(n)
    t = np.asarray(targets)
    base = p[:n][idx, t]
    return base - p[n:2 * n][idx, t], base - p[2 * n:][idx, t]
