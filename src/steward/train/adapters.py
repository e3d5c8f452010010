"""Training methods: full fine-tuning, LoRA adapters (peft), the classification head only, or prompt tuning
(peft): the same four for an encoder's classifier or tagger and, but for the head, a causal LM's chat SFT."""

from __future__ import annotations

from typing import Any

from steward.errors import ConfigError
from steward.train.config import CHAT_PROMPT_INIT, LORA_TARGETS, TrainConfig

_HEAD_NAMES = ("classifier", "score", "pre_classifier")


def apply_method(model: Any, cfg: TrainConfig, task: str, tokenizer_path: str | None = None) -> Any:
    """Return the model to train, with ``requires_grad`` set for the chosen method."""
    if cfg.method == "full":
        for p in model.parameters():
            p.requires_grad = True
        return model
    if cfg.method == "head":
        if task == "chat":
            raise ConfigError("train.method: head trains a classification head, and a chat model has none. Fix: "
                              "use lora (the default), full or prompt")
        for name, p in model.named_parameters():
            p.requires_grad = name.startswith(_HEAD_NAMES)
        if not any(p.requires_grad for p in model.parameters()):
            raise ConfigError("train.method: head found no classification head parameters in this model; "
                              "use lora or full")
        return model
    from peft import get_peft_model

    peft_config = _prompt_tuning(cfg, task, tokenizer_path) if cfg.method == "prompt" else _lora(model, cfg, task)
    return get_peft_model(model, peft_config)


def _task_type(task: str) -> Any:
    from peft import TaskType

    return {"ner": TaskType.TOKEN_CLS, "chat": TaskType.CAUSAL_LM}.get(task, TaskType.SEQ_CLS)


def lora_targets(model: Any, cfg: TrainConfig) -> list[str]:
    """The configured target modules, or those of the model's family; each must name layers of the model."""
    present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    wanted = cfg.lora.target_modules
    if wanted is None:
        for names in LORA_TARGETS.values():
            if set(names) <= present:
                return list(names)
        wanted = []
    missing = [m for m in wanted if m not in present]
    if missing or not wanted:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ == "Linear"})
        what = f"{missing} not found in this model" if missing else "not given, and this model is of no known family"
        raise ConfigError(f"train.lora.target_modules: {what}; its linear layers are named {linear}. Fix: list the "
                          f"ones to adapt, e.g. target_modules: {linear[:4]}")
    return list(wanted)


def _lora(model: Any, cfg: TrainConfig, task: str) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=lora_targets(model, cfg), task_type=_task_type(task),
                      layers_to_transform=_last_layers(model, cfg.lora.layers))


def _last_layers(model: Any, n: int | None) -> list[int] | None:
    """The indices of the model's last ``n`` transformer layers (peft's ``layers_to_transform``)."""
    if n is None:
        return None
    total = getattr(model.config, "num_hidden_layers", None)
    if not total:
        raise ConfigError("train.lora.layers: this model's config names no num_hidden_layers, so its last layers "
                          "cannot be found. Fix: remove lora.layers (adapt every layer)")
    if n > total:
        raise ConfigError(f"train.lora.layers: got {n}, but the model has {total} layers. Fix: 1 to {total}, or "
                          f"remove it to adapt every layer")
    return list(range(total - n, total))


def _prompt_tuning(cfg: TrainConfig, task: str, tokenizer_path: str | None) -> Any:
    from peft import PromptTuningConfig, PromptTuningInit

    if cfg.privacy.enabled:
        raise ConfigError("train.privacy.enabled with train.method: prompt is not supported (Opacus has no "
                          "per-example gradients for peft's prompt embedding). Fix: use method: lora for DP training")
    pt = cfg.prompt_tuning
    text = (pt.init_text or (CHAT_PROMPT_INIT if task == "chat" else None)) if tokenizer_path else None
    return PromptTuningConfig(
        task_type=_task_type(task), num_virtual_tokens=pt.num_virtual_tokens,
        prompt_tuning_init=PromptTuningInit.TEXT if text else PromptTuningInit.RANDOM,
        prompt_tuning_init_text=text, tokenizer_name_or_path=tokenizer_path if text else None)


def count_parameters(model: Any) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": int(total), "trainable": int(trainable)}
