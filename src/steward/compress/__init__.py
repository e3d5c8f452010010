"""The compress stage: int8 (torch and ONNX Runtime), ONNX export, pruning and distillation, each candidate
re-scored by the evaluate stage before one is chosen."""

from steward.compress.stage import CompressResult, run

__all__ = ["CompressResult", "run"]
