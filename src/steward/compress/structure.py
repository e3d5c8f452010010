"""Structured pruning of BERT-family encoders: remove attention heads or FFN neurons for real (smaller
matrices, fewer FLOPs), not just zero them.

Written by hand: transformers 5 dropped ``prune_heads``/``head_mask``, and torch's ``nn.utils.prune``
only masks. The layer layout read here (``encoder.layer[i].attention.self.{query,key,value}``,
``attention.output.dense``, ``intermediate.dense``, ``output.dense``) is the one BERT, RoBERTa, MiniLM,
ELECTRA and DeBERTa-free BERT variants share; anything else is refused with a clear error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from steward.errors import ConfigError


def encoder_layers(model: Any, method: str) -> list[Any]:
    base = getattr(model, model.base_model_prefix, None) if hasattr(model, "base_model_prefix") else None
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    ok = layers is not None and all(
        hasattr(getattr(getattr(layer, "attention", None), "self", None), "query")
        and hasattr(getattr(layer, "intermediate", None), "dense") for layer in layers)
    if not ok:
        arch = type(model).__name__
        raise ConfigError(f"compress.methods: {method} needs a BERT-style encoder (encoder.layer[i].attention.self"
                          f".query, intermediate.dense); this model is {arch}. Fix: drop {method} from "
                          f"compress.methods (quantisation, ONNX and magnitude pruning work on any architecture)")
    return list(layers)


def _linear(old: Any, rows: Sequence[int] | None = None, cols: Sequence[int] | None = None) -> Any:
    """A copy of ``old`` keeping output ``rows`` and input ``cols`` (None = all)."""
    import torch

    w = old.weight.data
    b = old.bias.data if old.bias is not None else None
    if rows is not None:
        idx = torch.as_tensor(list(rows), dtype=torch.long)
        w, b = w[idx], (b[idx] if b is not None else None)
    if cols is not None:
        w = w[:, torch.as_tensor(list(cols), dtype=torch.long)]
    new = torch.nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
    new.weight.data = w.clone()
    if b is not None:
        new.bias.data = b.clone()
    return new


def shrink_heads(model: Any, pruned: dict[int, list[int]]) -> None:
    """Remove the listed heads of each layer in place (at least one head stays in every layer)."""
    for i, layer in enumerate(encoder_layers(model, "prune_heads")):
        heads = sorted(set(pruned.get(i, [])))
        if not heads:
            continue
        att = layer.attention.self
        n, d = att.num_attention_heads, att.attention_head_size
        if len(heads) >= n:
            raise ConfigError(f"prune_heads: layer {i} would lose all {n} heads; lower compress.prune.sparsity")
        keep = [h for h in range(n) if h not in heads]
        rows = [h * d + j for h in keep for j in range(d)]
        att.query, att.key, att.value = (_linear(att.query, rows), _linear(att.key, rows), _linear(att.value, rows))
        layer.attention.output.dense = _linear(layer.attention.output.dense, cols=rows)
        att.num_attention_heads = len(keep)
        att.all_head_size = len(keep) * d
        # transformers' attention reads the head count from here on newer versions
        if hasattr(layer.attention, "num_attention_heads"):
            layer.attention.num_attention_heads = len(keep)


def shrink_ffn(model: Any, keep: dict[int, list[int]]) -> None:
    """Keep only the listed intermediate neurons of each layer (the same count in every layer, so the
    model still loads from its config with ``intermediate_size`` set to that count)."""
    sizes = {len(v) for v in keep.values()}
    if len(sizes) != 1:
        raise ValueError("shrink_ffn keeps the same number of neurons in every layer")
    for i, layer in enumerate(encoder_layers(model, "prune_ffn")):
        layer.intermediate.dense = _linear(layer.intermediate.dense, rows=keep[i])
        layer.output.dense = _linear(layer.output.dense, cols=keep[i])
    model.config.intermediate_size = sizes.pop()
