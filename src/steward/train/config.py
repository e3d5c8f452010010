"""The train stage's config: the base model, the method (LoRA, full, head), the loop, DP-SGD, augmentation."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

from pydantic import Field

from steward.config_base import StageConfig


class LoRASettings(StageConfig):
    r: int = Field(16, ge=1, le=256)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["query", "key", "value", "dense"])


class PrivacySettings(StageConfig):
    """DP-SGD through Opacus. Only trainable parameters are privatised (with LoRA: the adapters and head)."""

    enabled: bool = False
    target_epsilon: float = Field(8.0, gt=0.0)
    delta: float | None = Field(None, gt=0.0, lt=1.0)  # default 1/N (N = training rows)
    max_grad_norm: float = Field(1.0, gt=0.0)  # per-sample clipping bound
    poisson_sampling: bool = True
    accountant: Literal["rdp", "prv", "gdp"] = "rdp"
    # A target ε that needs more noise than this cannot train anything useful: refuse it up front.
    max_noise_multiplier: float = Field(20.0, gt=0.0)
    # Each Poisson batch is run as length-sorted physical batches of this many rows: the clipped gradient
    # sum (and so the privacy guarantee) is the same, with far less padding and memory.
    physical_batch_size: int = Field(32, ge=1)
    # How Opacus forms per-example gradients: module hooks (default; 14 % faster than functorch in
    # bench/bench_train_speed.py)
    # or functorch's vmap. Ghost clipping is not wired in: Opacus runs it through its own loss wrapper
    # (DPLossFastGradientClipping), which our sample-weighted loss does not go through yet.
    grad_sample_mode: Literal["hooks", "functorch"] = "hooks"


class AugmentSettings(StageConfig):
    counterfactual: bool = False  # add identity-swapped copies (he<->she, …), label kept
    identity_pairs: list[tuple[str, str]] | None = None  # None: the built-in pairs
    adversarial: bool = False  # add perturbed copies (typos, homoglyphs, dropped words), label kept
    adversarial_ratio: float = Field(0.2, gt=0.0, le=1.0)
    seed: int = 0


class EarlyStoppingSettings(StageConfig):
    metric: Literal["auto", "accuracy", "macro_f1", "micro_f1", "loss", "entity_f1"] = "auto"
    patience: int = Field(2, ge=1)
    min_delta: float = Field(0.0, ge=0.0)


class TrainConfig(StageConfig):
    """Fine-tuning. Defaults fit 2 CPU cores: LoRA on the default MiniLM encoder."""

    model: str = "default"  # "default" (offline all-MiniLM-L6-v2), a local HF directory, or a hub id
    tokenizer: str | None = None  # default: the model's own
    trust_pickle: bool = False  # allow .bin/.pt (pickle) checkpoints; off: safetensors only
    labels: list[str] | None = None  # if given, must match the data stage's label set
    multi_label_separator: str | None = None  # e.g. "|": labels "a|b" make a multi-label task
    method: Literal["lora", "full", "head"] = "lora"
    lora: LoRASettings = Field(default_factory=LoRASettings)
    epochs: int = Field(3, ge=1)
    max_steps: int | None = Field(None, ge=1)
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int = Field(64, ge=1)
    # Batches of similar-length texts (shuffled, reproducible): less padding, much faster on CPU.
    group_by_length: bool = True
    max_length: int = Field(64, ge=8, le=4096)
    learning_rate: float | None = Field(None, gt=0.0)  # default by method: lora/head 1e-3, full 5e-5
    weight_decay: float = Field(0.01, ge=0.0)
    warmup_ratio: float = Field(0.06, ge=0.0, lt=1.0)
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    max_grad_norm: float | None = Field(1.0, gt=0.0)
    dropout: float | None = Field(None, ge=0.0, lt=1.0)  # None: the model's own
    seed: int = 13
    max_train_samples: int | None = Field(None, ge=1)
    max_eval_samples: int | None = Field(None, ge=1)
    use_sample_weights: bool = True
    early_stopping: EarlyStoppingSettings = Field(default_factory=EarlyStoppingSettings)
    checkpoint_every_steps: int | None = Field(None, ge=1)  # besides every epoch end
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    augment: AugmentSettings = Field(default_factory=AugmentSettings)
    mlflow: bool = True  # track to RUN_DIR/mlruns
    threads: int | None = Field(None, ge=1)

    def lr(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 5e-5 if self.method == "full" else 1e-3


class TrainRun(Protocol):
    """What the train stage reads of a run's config: its run folder and ``train`` (``RunConfig`` has them; a stage never imports
    the config that composes every stage)."""

    @property
    def run_dir(self) -> Path: ...

    @property
    def train(self) -> TrainConfig: ...
