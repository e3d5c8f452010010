"""The compress stage: int8 (torch and ONNX Runtime), ONNX export, pruning and distillation, each candidate
re-scored by the evaluate stage before one is chosen."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steward.compress.stage import CompressResult, run

__all__ = ["CompressResult", "run"]


def __getattr__(name: str) -> Any:
    # Loaded on first use (PEP 562): ``steward.compress.config`` is read by the config that composes every stage,
    # which must not pull in this stage's libraries just to validate a YAML file.
    if name in __all__:
        from steward.compress import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
