"""Checkpoints for resume: weights (safetensors), optimizer/scheduler, RNG states and loop progress.

Written with ``atomic_dir`` so an interruption while saving leaves the previous checkpoint whole.
Optimizer state goes through ``torch.save`` and is read back with ``weights_only=True``: plain tensors
and numbers, never arbitrary pickled objects.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np

from steward.atomic import atomic_dir
from steward.errors import TrainStageError


def rng_state() -> dict[str, Any]:
    import torch

    np_state = np.random.get_state()
    return {
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state().tolist(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))


def _save_params(model: Any, path: Path) -> None:
    """Only the trainable parameters when some are frozen (LoRA, head-only): the rest is the base model,
    reloaded from its own files on resume. A LoRA checkpoint is ~3 MB instead of ~90 MB, which keeps
    per-epoch checkpoints from costing throughput."""
    from safetensors.torch import save_file, save_model

    params = list(model.named_parameters())
    if all(p.requires_grad for _, p in params):
        save_model(model, str(path))
        return
    save_file({n: p.detach().contiguous() for n, p in params if p.requires_grad}, str(path),
              metadata={"steward": "trainable-only"})


def _load_params(model: Any, path: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, load_model

    with safe_open(str(path), "pt") as fh:
        partial = (fh.metadata() or {}).get("steward") == "trainable-only"
    if not partial:
        load_model(model, str(path))
        return
    state = load_file(str(path))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    missing, unexpected = sorted(trainable - set(state)), sorted(set(state) - trainable)
    if missing or unexpected:
        raise TrainStageError(f"checkpoint {path} does not fit this model (missing {missing[:3]}, unexpected "
                              f"{unexpected[:3]}); run without --resume")
    model.load_state_dict(state, strict=False)


def save(directory: Path, *, model: Any, optimizer: Any, scheduler: Any, progress: dict[str, Any]) -> None:
    import torch

    with atomic_dir(directory) as tmp:
        _save_params(model, tmp / "model.safetensors")
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        (tmp / "scheduler.json").write_text(json.dumps(scheduler.state_dict(), default=float))
        (tmp / "rng.json").write_text(json.dumps(rng_state()))
        (tmp / "progress.json").write_text(json.dumps(progress, indent=2, default=str))


def save_weights(directory: Path, model: Any, info: dict[str, Any]) -> None:
    with atomic_dir(directory) as tmp:
        _save_params(model, tmp / "model.safetensors")
        (tmp / "info.json").write_text(json.dumps(info, indent=2, default=str))


def load_weights(directory: Path, model: Any) -> dict[str, Any]:
    _load_params(model, directory / "model.safetensors")
    return json.loads((directory / "info.json").read_text()) if (directory / "info.json").exists() else {}


def load(directory: Path, *, model: Any, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    import torch

    if not (directory / "progress.json").is_file():
        raise TrainStageError(f"no checkpoint to resume from in {directory}; run without --resume")
    _load_params(model, directory / "model.safetensors")
    optimizer.load_state_dict(torch.load(directory / "optimizer.pt", weights_only=True))
    scheduler.load_state_dict(json.loads((directory / "scheduler.json").read_text()))
    set_rng_state(json.loads((directory / "rng.json").read_text()))
    return json.loads((directory / "progress.json").read_text())


def read_progress(directory: Path) -> dict[str, Any] | None:
    p = directory / "progress.json"
    return json.loads(p.read_text()) if p.is_file() else None
