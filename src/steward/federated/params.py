"""What a site and the server exchange: the model's trainable tensors (a LoRA adapter and the head by default),
as float32 arrays in one fixed order, and the hash that names an update in the ledgers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ParamSpec:
    """The names and shapes of the trainable tensors, in the order they travel."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @property
    def size(self) -> int:
        return int(sum(np.prod(s) for s in self.shapes))

    def problems(self, arrays: list[np.ndarray]) -> list[str]:
        """Why ``arrays`` cannot be this model's trainable tensors (empty when they can)."""
        if len(arrays) != len(self.names):
            return [f"{len(arrays)} tensors where the model has {len(self.names)}"]
        out = []
        for name, shape, a in zip(self.names, self.shapes, arrays, strict=True):
            if tuple(a.shape) != shape:
                out.append(f"{name} has shape {tuple(a.shape)}, expected {shape}")
            elif not np.issubdtype(a.dtype, np.floating):
                out.append(f"{name} has dtype {a.dtype}, expected a float")
            elif not np.isfinite(a).all():
                out.append(f"{name} holds NaN or infinite values")
        return out


def _trainable(model: Any) -> list[tuple[str, Any]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def spec_of(model: Any) -> ParamSpec:
    named = _trainable(model)
    return ParamSpec(tuple(n for n, _ in named), tuple(tuple(p.shape) for _, p in named))


def get_arrays(model: Any) -> list[np.ndarray]:
    """The trainable tensors as float32 arrays (Flower serialises NumPy; bfloat16 has no NumPy type)."""
    return [p.detach().cpu().float().numpy().copy() for _, p in _trainable(model)]


def set_arrays(model: Any, arrays: list[np.ndarray]) -> None:
    """Load ``arrays`` into the trainable tensors; a wrong count or shape raises ValueError, nothing half-set."""
    import torch

    named = _trainable(model)
    problems = spec_of(model).problems(arrays)
    if problems:
        raise ValueError("; ".join(problems))
    with torch.no_grad():
        for (_, p), a in zip(named, arrays, strict=True):
            p.copy_(torch.from_numpy(np.asarray(a, dtype=np.float32)).to(p.dtype))


def update_hash(arrays: list[np.ndarray]) -> str:
    """sha256 over the tensors' shapes and float32 bytes: the name of an update (or an aggregate) in the
    ledgers; a site records what it sent, the server what it received, and the two can be compared."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a, dtype=np.float32)
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    return "sha256:" + h.hexdigest()

