"""The compress stage's config: the candidate methods, their settings and how one is chosen."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol, get_args

from pydantic import Field, ValidationInfo, field_validator

from steward.config_base import StageConfig
from steward.evaluate.config import EvaluateConfig

CompressMethod = Literal["dynamic_int8", "onnx", "onnx_int8", "prune_magnitude", "prune_heads", "prune_ffn",
                         "distill"]
COMPRESS_METHODS: tuple[str, ...] = get_args(CompressMethod)


class PruneSettings(StageConfig):
    # Share of weights (magnitude: smallest |w| of every encoder linear layer, globally), attention heads or
    # FFN neurons (per layer, least important first) removed.
    sparsity: float = Field(0.3, gt=0.0, lt=1.0)
    recovery_epochs: float = Field(1.0, ge=0.0)  # short fine-tuning after pruning; 0 = none


class DistillSettings(StageConfig):
    layers: int = Field(3, ge=1)  # student encoder layers, initialised from evenly spaced teacher layers
    epochs: float = Field(2.0, gt=0.0)
    temperature: float = Field(2.0, gt=0.0)
    alpha: float = Field(0.5, ge=0.0, le=1.0)  # weight of the soft (teacher) loss; 1 - alpha on the labels


class FineTuneSettings(StageConfig):
    """Shared by pruning recovery and distillation: a short plain fine-tuning on the training split."""

    learning_rate: float = Field(5e-5, gt=0.0)
    batch_size: int = Field(32, ge=1)
    max_length: int = Field(128, ge=8)
    max_rows: int | None = Field(20_000, ge=1)  # a seeded sample of the training split; null = all
    seed: int = 0


class ChatCompressSettings(StageConfig):
    """A chat model's candidates are measured on the data stage's held-out (test) conversations: the loss on
    their answers and greedy generation speed; the generative scorecard re-scores them in full."""

    max_rows: int | None = Field(64, ge=1)  # held-out conversations scored (a seeded sample); null = all
    prompts: int = Field(4, ge=1)  # held-out prompts answered to time generation
    new_tokens: int = Field(32, ge=1)  # tokens generated per prompt (greedy, EOS ignored: equal work)
    # A candidate is released when its held-out per-token loss is at most this much above the original's
    # (0.05 nats: perplexity +5 %) and it generates faster.
    max_loss_increase: float = Field(0.05, ge=0.0)
    # Each candidate is also re-scored by the generative scorecard (RUN_DIR/evaluate/scorecard.json must exist,
    # made with the evaluate settings in force) and kept only if it passes every gate the original passed.
    # false: the loss rule alone (no scorecard needed).
    rescore: bool = True


class CompressConfig(StageConfig):
    """Smaller, faster models, each re-scored by the evaluate stage; the fastest that passes every gate the
    original passed is chosen."""

    methods: list[CompressMethod] = Field(
        default_factory=lambda: ["dynamic_int8", "onnx", "onnx_int8", "prune_magnitude", "prune_heads", "distill"])
    prune: PruneSettings = Field(default_factory=PruneSettings)
    distill: DistillSettings = Field(default_factory=DistillSettings)
    finetune: FineTuneSettings = Field(default_factory=FineTuneSettings)
    choose_by: Literal["latency", "size"] = "latency"  # among passing candidates: lowest batch-1 p95, or smallest
    # Release this candidate (a name from `methods`, or "original") whenever it passes every gate the original
    # passed, e.g. onnx for a runtime without torch; null, or a candidate that fails: choose_by decides.
    prefer: str | None = None
    chat: ChatCompressSettings = Field(default_factory=ChatCompressSettings)
    threads: int | None = Field(None, ge=1)  # torch/ONNX Runtime threads; null = library default

    @field_validator("prefer")
    @classmethod
    def _prefer_is_a_candidate(cls, value: str | None, info: ValidationInfo) -> str | None:
        methods = info.data.get("methods") or []  # validated before prefer (field order)
        if value is not None and value not in ("original", *methods):
            raise ValueError(f"{value!r} is not a candidate; valid: original, {', '.join(methods)} (add it to "
                             "compress.methods)")
        return value


class CompressRun(Protocol):
    """What the compress stage reads of a run's config: its run folder, ``compress``, and ``evaluate`` to
    re-score each candidate (``RunConfig`` has them; a stage never imports the config that composes every
    stage)."""

    @property
    def run_dir(self) -> Path: ...

    @property
    def compress(self) -> CompressConfig: ...

    @property
    def evaluate(self) -> EvaluateConfig: ...
