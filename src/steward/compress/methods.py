"""The compression methods, one registry: each builds a candidate folder from the parent model.

A method gets a :class:`Job` (the parent folder, its classifier, the training rows, the settings) and an
empty output folder, writes the artifact there (see :mod:`steward.compress.artifact`) and returns what it
did. It never writes to the parent folder: every method works on a copy loaded from disk.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from steward.compress import artifact
from steward.compress.config import CompressConfig
from steward.compress.finetune import fit, head_importance
from steward.compress.structure import encoder_layers, shrink_ffn, shrink_heads
from steward.registry import Registry

COMPRESSORS: Registry[dict[str, Any]] = Registry("compression method")


@dataclass
class Job:
    parent_dir: Path  # RUN_DIR/train/model (Hugging Face format, safetensors)
    parent: Any  # its TorchClassifier, fp32
    texts: list[str]  # training rows for recovery fine-tuning and distillation (a seeded sample)
    labels: np.ndarray  # their label indices
    cfg: CompressConfig
    progress: bool = False


def _tokenizer_and_config(job: Job, out: Path) -> None:
    """Copy the tokenizer and config.json next to the compressed weights (the folder serves on its own)."""
    for p in job.parent_dir.iterdir():
        if p.is_file() and (p.name.startswith("tokenizer") or p.name in (
                "config.json", "vocab.txt", "special_tokens_map.json", "merges.txt", "vocab.json",
                "sentencepiece.bpe.model", "spiece.model")):
            shutil.copy2(p, out / p.name)


def _fresh_model(job: Job) -> Any:
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(job.parent_dir, use_safetensors=True).eval()


def _save_hf(model: Any, out: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    model.config.to_json_file(str(out / "config.json"))


@COMPRESSORS.register("dynamic_int8")
def dynamic_int8(job: Job, out: Path) -> dict[str, Any]:
    model = artifact.quantize_dynamic(_fresh_model(job))
    _tokenizer_and_config(job, out)
    artifact.save_int8(model, out)
    return {"format": "torch_int8", "note": "linear layers int8 (torch dynamic quantisation)"}


def export_onnx(model: Any, out: Path, sample: Any, file: str = "model.onnx") -> None:
    """Export ``input_ids, attention_mask -> logits, embedding`` (mean-pooled last hidden state, which the
    service's drift monitor reads) with dynamic batch and sequence axes (torch.export-based exporter)."""
    import warnings

    import torch

    class Graph(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> tuple[Any, Any]:
            res = self.inner(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
            h = res.hidden_states[-1]
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            return res.logits, (h * m).sum(1) / m.sum(1).clamp(min=1)

    graph = Graph(model).eval()
    batch, seq = torch.export.Dim("batch", max=4096), torch.export.Dim("seq", max=model.config.max_position_embeddings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, (sample["input_ids"], sample["attention_mask"]), str(out / file),
                          input_names=["input_ids", "attention_mask"], output_names=["logits", "sentence_embedding"],
                          dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
                          dynamo=True, external_data=False, verbose=False)


def _sample(job: Job) -> Any:
    return job.parent.tokenizer(["a short example", "a slightly longer example sentence here"], padding=True,
                                return_tensors="pt")


@COMPRESSORS.register("onnx")
def onnx_fp32(job: Job, out: Path) -> dict[str, Any]:
    _tokenizer_and_config(job, out)
    export_onnx(_fresh_model(job), out, _sample(job))
    return {"format": "onnx", "file": "model.onnx", "note": "ONNX graph run by ONNX Runtime, fp32"}


@COMPRESSORS.register("onnx_int8")
def onnx_int8(job: Job, out: Path) -> dict[str, Any]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    _tokenizer_and_config(job, out)
    tmp = out / "model.fp32.onnx"
    export_onnx(_fresh_model(job), out, _sample(job), file=tmp.name)
    quantize_dynamic(str(tmp), str(out / "model.onnx"), weight_type=QuantType.QInt8)
    tmp.unlink()
    return {"format": "onnx", "file": "model.onnx", "note": "ONNX Runtime dynamic int8 (MatMul weights int8)"}


@COMPRESSORS.register("prune_magnitude")
def prune_magnitude(job: Job, out: Path) -> dict[str, Any]:
    """Unstructured: the smallest-magnitude share of all encoder linear weights set to zero (one global
    threshold, torch.nn.utils.prune), kept at zero through the recovery fine-tuning."""
    import torch
    from torch.nn.utils import prune

    model = _fresh_model(job)
    targets = [(m, "weight") for name, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and "classifier" not in name and "pooler" not in name]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=job.cfg.prune.sparsity)
    info: dict[str, Any] = {}
    if job.cfg.prune.recovery_epochs > 0:
        texts, labels = job.texts, job.labels
        info = fit(model, job.parent.tokenizer, texts, labels, job.cfg.finetune, job.cfg.prune.recovery_epochs,
                   progress=job.progress, description="prune_magnitude: recovery")
    for m, name in targets:
        prune.remove(m, name)  # masks folded into the weights: zeros stay zeros
    zeros = sum(int((m.weight == 0).sum()) for m, _ in targets)
    total = sum(m.weight.numel() for m, _ in targets)
    _tokenizer_and_config(job, out)
    _save_hf(model, out)
    return {"format": "hf", "sparsity": zeros / total, "recovery": info,
            "note": "zeros stored densely: no smaller file and no faster dense CPU kernels"}


@COMPRESSORS.register("prune_heads")
def prune_heads(job: Job, out: Path) -> dict[str, Any]:
    """Structured: in every layer the least important share of attention heads (gradient of a head gate,
    Michel et al. 2019, on up to 512 training rows) removed, then a short recovery fine-tuning."""
    model = _fresh_model(job)
    layers = encoder_layers(model, "prune_heads")
    n = layers[0].attention.self.num_attention_heads
    k = min(n - 1, round(job.cfg.prune.sparsity * n))
    if k < 1:
        from steward.errors import ConfigError

        raise ConfigError(f"compress.prune.sparsity: got {job.cfg.prune.sparsity}: with {n} heads per layer that "
                          f"removes none. Fix: a sparsity of at least {0.5 / n:.2f}")
    texts, labels = job.texts, job.labels
    score = head_importance(model, layers, job.parent.tokenizer, texts[:512], labels[:512],
                            job.cfg.finetune.batch_size, job.cfg.finetune.max_length)
    pruned = {i: sorted(int(h) for h in np.argsort(score[i], kind="stable")[:k]) for i in range(len(layers))}
    shrink_heads(model, pruned)
    info: dict[str, Any] = {}
    if job.cfg.prune.recovery_epochs > 0:
        info = fit(model, job.parent.tokenizer, texts, labels, job.cfg.finetune, job.cfg.prune.recovery_epochs,
                   progress=job.progress, description="prune_heads: recovery")
    _tokenizer_and_config(job, out)
    _save_hf(model, out)
    return {"format": "hf", "pruned_heads": {str(i): h for i, h in pruned.items()}, "heads_removed_per_layer": k,
            "heads_per_layer": n, "recovery": info}


@COMPRESSORS.register("prune_ffn")
def prune_ffn(job: Job, out: Path) -> dict[str, Any]:
    """Structured: in every layer the FFN neurons with the smallest weight norm (in and out) removed."""
    import torch

    model = _fresh_model(job)
    layers = encoder_layers(model, "prune_ffn")
    size = layers[0].intermediate.dense.out_features
    keep_n = max(1, round(size * (1 - job.cfg.prune.sparsity)))
    keep = {}
    for i, layer in enumerate(layers):
        score = layer.intermediate.dense.weight.norm(dim=1) * layer.output.dense.weight.norm(dim=0)
        keep[i] = sorted(int(j) for j in torch.argsort(score, descending=True)[:keep_n])
    shrink_ffn(model, keep)
    info: dict[str, Any] = {}
    if job.cfg.prune.recovery_epochs > 0:
        texts, labels = job.texts, job.labels
        info = fit(model, job.parent.tokenizer, texts, labels, job.cfg.finetune, job.cfg.prune.recovery_epochs,
                   progress=job.progress, description="prune_ffn: recovery")
    _tokenizer_and_config(job, out)
    _save_hf(model, out)
    return {"format": "hf", "intermediate_size": keep_n, "was": size, "recovery": info}


@COMPRESSORS.register("distill")
def distill(job: Job, out: Path) -> dict[str, Any]:
    """A student with fewer encoder layers, initialised from evenly spaced teacher layers (and the teacher's
    embeddings, pooler and head), trained on the teacher's soft labels over the training rows."""
    import copy

    teacher = _fresh_model(job)
    layers = encoder_layers(teacher, "distill")
    want = job.cfg.distill.layers
    if want >= len(layers):
        from steward.errors import ConfigError

        raise ConfigError(f"compress.distill.layers: got {want}; the teacher has {len(layers)} layers, so the "
                          f"student must have fewer. Fix: 1 to {len(layers) - 1}")
    picked = sorted(set(np.linspace(0, len(layers) - 1, want).round().astype(int).tolist()))
    student = copy.deepcopy(teacher)
    base = getattr(student, student.base_model_prefix)
    import torch

    base.encoder.layer = torch.nn.ModuleList([base.encoder.layer[i] for i in picked])
    student.config.num_hidden_layers = len(picked)
    texts, labels = job.texts, job.labels
    soft = job.parent.logits(texts)
    info = fit(student, job.parent.tokenizer, texts, labels, job.cfg.finetune, job.cfg.distill.epochs,
               teacher_logits=soft, temperature=job.cfg.distill.temperature, alpha=job.cfg.distill.alpha,
               progress=job.progress, description="distill")
    _tokenizer_and_config(job, out)
    _save_hf(student, out)
    return {"format": "hf", "layers": len(picked), "teacher_layers_used": picked, "teacher_layers": len(layers),
            "training": info}
