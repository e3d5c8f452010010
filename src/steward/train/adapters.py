"""Training methods: full fine-tuning, LoRA adapters (peft), or the classification head only."""

from __future__ import annotations

from typing import Any

from steward.errors import ConfigError
from steward.train.config import TrainConfig

_HEAD_NAMES = ("classifier", "score", "pre_classifier")


def apply_method(model: Any, cfg: TrainConfig, task: str) -> Any:
    """Return the model to train, with ``requires_grad`` set for the chosen method."""
    if cfg.method == "full":
        for p in model.parameters():
            p.requires_grad = True
        return model
    if cfg.method == "head":
        for name, p in model.named_parameters():
            p.requires_grad = name.startswith(_HEAD_NAMES)
        if not any(p.requires_grad for p in model.parameters()):
            raise ConfigError("train.method: head found no classification head parameters in this model; "
                              "use lora or full")
        return model
    from peft import LoraConfig, TaskType, get_peft_model

    present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [m for m in cfg.lora.target_modules if m not in present]
    if missing:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ == "Linear"})
        raise ConfigError(f"train.lora.target_modules: {missing} not found in this model; its linear layers are "
                          f"named {linear}")
    lora = LoraConfig(
        r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
        target_modules=list(cfg.lora.target_modules),
        task_type=TaskType.TOKEN_CLS if task == "ner" else TaskType.SEQ_CLS,
    )
    return get_peft_model(model, lora)


def count_parameters(model: Any) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": int(total), "trainable": int(trainable)}
