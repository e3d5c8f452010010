"""Compressed artifacts on disk and back: one folder each, described by ``artifact.json``.

Formats:

- ``hf``: a Hugging Face folder (safetensors), optionally with attention heads removed
  (``pruned_heads`` in artifact.json: the loader shrinks the layers before loading the weights, since
  transformers 5 no longer prunes heads itself);
- ``torch_int8``: torch dynamic int8 — linear weights stored as int8 with their scale and zero point in
  safetensors (no pickle), every other tensor as in ``hf``;
- ``onnx``: an ONNX graph (``input_ids, attention_mask -> logits, embedding``) for ONNX Runtime.

Every folder also carries the tokenizer and ``config.json`` (labels), so it serves on its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from steward.errors import ConfigError
from steward.hashing import sha256_tree
from steward.inference import quantize_dynamic

META = "artifact.json"
INT8_FILE = "model.int8.safetensors"


def write_meta(directory: Path, **meta: Any) -> dict[str, Any]:
    (directory / META).write_text(json.dumps(meta, indent=2, sort_keys=True))
    return meta


def read_meta(directory: Path) -> dict[str, Any]:
    path = directory / META
    if not path.is_file():
        raise ConfigError(f"{directory}: no {META}; this folder is not a compressed artifact "
                          "(run `steward compress` to make one)")
    return json.loads(path.read_text())


def size_bytes(directory: Path) -> int:
    """Bytes of the model itself (weights or graph), not the tokenizer files."""
    names = {"model.safetensors", INT8_FILE, "model.onnx"}
    return sum(p.stat().st_size for p in directory.iterdir() if p.name in names or p.suffix == ".data")


def fingerprint(directory: Path) -> str:
    return sha256_tree(directory)


def save_int8(model: Any, directory: Path) -> None:
    """Write a dynamic-int8 model as safetensors: int8 weights + scale + zero point per linear layer."""
    import torch
    from safetensors.torch import save_file
    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    tensors: dict[str, Any] = {}
    quantized = set()
    for name, mod in model.named_modules():
        if isinstance(mod, QLinear):
            w = mod.weight()
            tensors[f"{name}.weight_int8"] = w.int_repr().contiguous()
            tensors[f"{name}.weight_scale"] = torch.tensor([w.q_scale()], dtype=torch.float64)
            tensors[f"{name}.weight_zero_point"] = torch.tensor([w.q_zero_point()], dtype=torch.int64)
            if mod.bias() is not None:
                tensors[f"{name}.bias"] = mod.bias().detach().contiguous()
            quantized.add(name)
    for name, t in model.state_dict().items():
        owner = name.rsplit(".", 1)[0]
        if not any(owner == q or owner.startswith(q + ".") for q in quantized) and isinstance(t, torch.Tensor) \
                and not t.is_quantized:
            tensors[name] = t.detach().contiguous()
    save_file(tensors, str(directory / INT8_FILE), metadata={"format": "steward-torch-int8"})


def load_int8(directory: Path, auto_class: Any = None) -> Any:
    """Rebuild a model written by :func:`save_int8`: the float skeleton from config.json (a sequence classifier
    unless ``auto_class`` says otherwise), quantised, then every tensor set from the file (strictly: a missing
    or extra tensor is an error)."""
    import torch
    from safetensors.torch import load_file
    from torch.ao.nn.quantized.dynamic import Linear as QLinear
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(directory)
    model = quantize_dynamic((auto_class or AutoModelForSequenceClassification).from_config(config).eval())
    tensors = load_file(str(directory / INT8_FILE))
    used = set()
    for name, mod in model.named_modules():
        if isinstance(mod, QLinear):
            q = torch._make_per_tensor_quantized_tensor(tensors[f"{name}.weight_int8"],
                                                        float(tensors[f"{name}.weight_scale"][0]),
                                                        int(tensors[f"{name}.weight_zero_point"][0]))
            mod.set_weight_bias(q, tensors.get(f"{name}.bias"))
            used |= {f"{name}.weight_int8", f"{name}.weight_scale", f"{name}.weight_zero_point", f"{name}.bias"}
    rest = {k: v for k, v in tensors.items() if k not in used}
    # Quantised linear layers refuse a partial load_state_dict, so the float tensors are set one by one.
    qnames = [n for n, mod in model.named_modules() if isinstance(mod, QLinear)]
    expected = {k for k, v in model.state_dict().items()
                if isinstance(v, torch.Tensor) and not v.is_quantized and not any(k.startswith(q + ".") for q in qnames)}
    targets = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    missing = sorted(expected - set(rest))
    unexpected = sorted(k for k in rest if k not in targets)
    if missing or unexpected:
        raise ConfigError(f"{directory / INT8_FILE}: tensors missing {missing[:5]} or unexpected {unexpected[:5]}; "
                          "the file does not match config.json. Re-run `steward compress`")
    with torch.no_grad():
        for k, v in rest.items():
            targets[k].copy_(v)
    return model.eval()


def load_predictor(directory: Path, *, max_length: int = 128, batch_size: int = 64, threads: int | None = None) -> Any:
    """A classifier (same interface as :class:`steward.inference.TorchClassifier`) for a compressed artifact."""
    from transformers import AutoTokenizer

    from steward.compress.structure import shrink_heads
    from steward.inference import OnnxClassifier, TorchClassifier, check_weights

    meta = read_meta(directory)
    fmt = meta.get("format")
    if fmt == "onnx":
        return OnnxClassifier.load(directory, max_length=max_length, batch_size=batch_size, threads=threads,
                                   file=meta.get("file", "model.onnx"))
    tok = AutoTokenizer.from_pretrained(directory)
    if fmt == "torch_int8":
        model = load_int8(directory)
    elif fmt == "hf":
        from transformers import AutoConfig, AutoModelForSequenceClassification

        check_weights(directory, None)
        if meta.get("pruned_heads"):
            from safetensors.torch import load_file

            model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(directory))
            shrink_heads(model, {int(k): v for k, v in meta["pruned_heads"].items()})
            model.load_state_dict(load_file(str(directory / "model.safetensors")), strict=True)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(directory, use_safetensors=True)
        model.eval()
    else:
        raise ConfigError(f"{directory / META}: format {fmt!r} is not one Steward writes (hf, torch_int8, onnx)")
    id2label = model.config.id2label
    labels = [str(id2label[i]) for i in range(len(id2label))]
    multi = model.config.problem_type == "multi_label_classification"
    return TorchClassifier(tok, labels, multi, max_length, batch_size, model=model, quantized=fmt == "torch_int8")
