"""The train stage's config: the base model, the method (LoRA, full, head, prompt tuning), the loop, DP-SGD,
augmentation. One config for both kinds of run: classifiers and taggers (encoders) and chat models (causal LMs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import Field

from steward.config_base import StageConfig

# The layers LoRA adapts when ``target_modules`` is not given, by the names a model family uses: BERT-like
# encoders (MiniLM), and Llama-family decoders (SmolLM2, Llama, Mistral, Qwen: attention and MLP projections,
# the set the QLoRA paper found needed to match full fine-tuning).
LORA_TARGETS = {"encoder": ["query", "key", "value", "dense"],
                "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}


class LoRASettings(StageConfig):
    r: int = Field(16, ge=1, le=256)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    target_modules: list[str] | None = None  # None: by the model's family (LORA_TARGETS)
    # Adapt only the last N transformer layers (None: all). Nothing below the lowest adapted layer needs a
    # gradient, so the backward pass stops there: on a CPU that is most of a step's cost.
    layers: int | None = Field(None, ge=1)


class PromptTuningSettings(StageConfig):
    """Prompt tuning (peft ``PromptTuningConfig``): only ``num_virtual_tokens`` embeddings are learnt (and a
    classifier's head); the model itself is untouched. Few parameters, for few examples."""

    num_virtual_tokens: int = Field(20, ge=1, le=512)
    # Start the virtual tokens from this text's embeddings (peft's TEXT init: a causal LM converges much faster
    # from words than from noise). None: chat runs start from CHAT_PROMPT_INIT, classifiers and taggers random.
    init_text: str | None = None


CHAT_PROMPT_INIT = "Answer the customer's question helpfully and briefly."


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

    # "default": the offline all-MiniLM-L6-v2 for classifiers and taggers, the offline SmolLM2-135M-Instruct for
    # chat runs; or a local Hugging Face directory, or a hub id.
    model: str = "default"
    tokenizer: str | None = None  # default: the model's own
    trust_pickle: bool = False  # allow .bin/.pt (pickle) checkpoints; off: safetensors only
    labels: list[str] | None = None  # if given, must match the data stage's label set
    multi_label_separator: str | None = None  # e.g. "|": labels "a|b" make a multi-label task
    method: Literal["lora", "full", "head", "prompt"] = "lora"
    lora: LoRASettings = Field(default_factory=LoRASettings)
    prompt_tuning: PromptTuningSettings = Field(default_factory=PromptTuningSettings)
    epochs: int = Field(3, ge=1)
    max_steps: int | None = Field(None, ge=1)
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int = Field(64, ge=1)
    # Batches of similar-length texts (shuffled, reproducible): less padding, much faster on CPU.
    group_by_length: bool = True
    # Tokens per example; None: 64 for classifiers and taggers, 1024 for chat (a conversation after its chat
    # template). A longer conversation is never cut (its answer would lose its end): it is set aside with its
    # reason in RUN_DIR/train/quarantine.jsonl, or stops the run (overlong: error).
    max_length: int | None = Field(None, ge=8, le=32768)
    overlong: Literal["quarantine", "error"] = "quarantine"
    learning_rate: float | None = Field(None, gt=0.0)  # None: by method and task (see lr())
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

    def lr(self, task: str = "classification") -> float:
        """The learning rate: given, or the usual one for the method (classifiers: lora/head 1e-3, full 5e-5;
        chat: lora 2e-4 as in QLoRA and TRL's examples, full 2e-5; prompt tuning 3e-2 as in peft's)."""
        if self.learning_rate is not None:
            return self.learning_rate
        if self.method == "prompt":
            return 3e-2
        if task == "chat":
            return 2e-5 if self.method == "full" else 2e-4
        return 5e-5 if self.method == "full" else 1e-3

    def length(self, task: str) -> int:
        """The most tokens an example may have (see ``max_length``)."""
        return self.max_length if self.max_length is not None else (1024 if task == "chat" else 64)


# DP-SGD for a chat model, for the fields a user leaves unset. The noise a private step adds grows with the
# square root of the trainable parameters and falls with the logical batch, so the private recipe adapts far
# fewer weights on far larger batches than LoRA without DP. Measured on 2,000 SST-2 conversations at ε = 8
# (docs/benchmarks.md, "Chat fine-tuning"): these settings 0.813 accuracy; LoRA's own defaults under DP 0.727.
# The adapter: r 2 on the query and value projections of the top 40 % of the layers (12 of SmolLM2's 30).
CHAT_PRIVATE: dict[str, Any] = {"batch_size": 256, "epochs": 6, "learning_rate": 5e-3,
                                "lora": {"r": 2, "alpha": 4, "target_modules": ["q_proj", "v_proj"]}}
CHAT_PRIVATE_LAYER_SHARE = 0.4


def private_defaults(cfg: TrainConfig, task: str, num_layers: int | None = None) -> TrainConfig:
    """``cfg`` with the private chat recipe in every field of it the user did not set (DP-LoRA on a chat model
    only; anything else is returned as it is). ``num_layers``: the model's, for the adapted top share."""
    if not cfg.privacy.enabled or task != "chat" or cfg.method != "lora":
        return cfg
    unset = {k: v for k, v in CHAT_PRIVATE.items() if k not in cfg.model_fields_set}
    if "lora" in unset:
        layers = max(1, round(CHAT_PRIVATE_LAYER_SHARE * num_layers)) if num_layers else None
        unset["lora"] = LoRASettings(**CHAT_PRIVATE["lora"], layers=layers)
    return cfg.model_copy(update=unset)


class TrainRun(Protocol):
    """What the train stage reads of a run's config: its run folder and ``train`` (``RunConfig`` has them; a stage never imports
    the config that composes every stage)."""

    @property
    def run_dir(self) -> Path: ...

    @property
    def train(self) -> TrainConfig: ...
