"""The train stage: the data stage's splits -> a fine-tuned model folder, a manifest and a ledger event. A
classifier or tagger (an encoder with a head) or, when the data stage wrote conversations, a chat model (a
causal LM fine-tuned on its answers), through the same loop."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steward.atomic import atomic_dir, write_json
from steward.config_base import config_digest
from steward.errors import ConfigError
from steward.hashing import sha256_file
from steward.inference import PROMPT_ADAPTER_DIR, weight_files
from steward.ledger.store import Ledger, artifact, now_iso
from steward.provenance import stamp
from steward.records import TrainManifest
from steward.tracking import Tracker, flatten
from steward.train import adapters, models
from steward.train.augment import augment
from steward.train.config import TrainRun, private_defaults
from steward.train.data import TrainData, encode, encode_conversations, load_data_stage
from steward.train.loop import StepCallback, run_loop

STAGE = "train"
WORK_DIR = "train_checkpoints"


@dataclass(frozen=True)
class TrainResult:
    manifest: dict[str, Any]
    out_dir: Path


def run(cfg: TrainRun, *, resume: bool = False, progress: bool = False, on_step: StepCallback | None = None
        ) -> TrainResult:
    """Fine-tune ``cfg.train.model`` on ``RUN_DIR/data``; write ``RUN_DIR/train/``; append a ledger event.

    ``resume=True`` continues from ``RUN_DIR/train_checkpoints/last`` (same config required).
    """
    try:
        import torch
        from accelerate import PartialState
    except ImportError as exc:
        from steward.errors import DependencyMissingError

        raise DependencyMissingError("the train stage needs the ml extra: pip install -e '.[ml]' "
                                     "(torch==2.13.0 CPU, transformers, peft, opacus, accelerate, mlflow-skinny)") from exc
    _quiet_libraries()
    tcfg = cfg.train
    run_dir = Path(cfg.run_dir)
    started_at = now_iso()
    t0 = time.perf_counter()
    if tcfg.threads:
        torch.set_num_threads(tcfg.threads)
    data = load_data_stage(run_dir, tcfg)
    train_df, aug_counts = _augmented(data, tcfg)
    prepared = prepare_model(tcfg, data)
    source, tokenizer, model, tcfg = prepared.source, prepared.tokenizer, prepared.model, prepared.cfg
    train_ex, val_ex, set_aside = examples(train_df, data, tokenizer, tcfg)
    tracker = Tracker(run_dir, tcfg.mlflow and PartialState().is_main_process)
    with tracker.start(STAGE, flatten(tcfg.model_dump(mode="json"))):
        res = run_loop(model, tokenizer, data, train_ex, val_ex, tcfg, run_dir / WORK_DIR, resume=resume,
                       tracker=tracker, on_step=on_step, progress=progress)
        manifest = train_manifest(data, source, tcfg, prepared.params, len(train_ex), aug_counts, res, run_dir,
                                  tracker.run_id)
        manifest["set_aside"] = {"context_too_long": len(set_aside)} if data.task == "chat" else {}
        if not PartialState().is_main_process:
            return TrainResult(manifest, run_dir / STAGE)
        out_dir = write_output(run_dir, res.model, tokenizer, tcfg.method, manifest, set_aside)
        tracker.artifact(out_dir / "manifest.json")
    inputs = [artifact(p, run_dir, split, sha256=h) for split, (p, h) in data.inputs.items()]
    if source.local:
        weights = sorted(Path(source.path).glob("*.safetensors")) or [Path(source.path)]
        inputs += [artifact(w, run_dir, "base_model") for w in weights]
    Ledger(run_dir).append(
        stage=STAGE, started_at=started_at, config_digest=config_digest(tcfg), inputs=inputs,
        outputs=[artifact(p, run_dir, p.name) for p in sorted(out_dir.iterdir())],
        summary={"best_metric": manifest["best_metric"], "epsilon": (res.privacy or {}).get("epsilon"),
                 "method": tcfg.method, "seconds": round(time.perf_counter() - t0, 2)},
    )
    return TrainResult(manifest, out_dir)


@dataclass(frozen=True)
class PreparedModel:
    """A model ready for the loop: its source, tokenizer, the model with the method applied (LoRA, prompt,
    head or full), the config as completed for it, and its parameter counts."""

    source: models.ModelSource
    tokenizer: Any
    model: Any
    cfg: Any
    params: dict[str, int]


def prepare_model(tcfg: Any, data: TrainData) -> PreparedModel:
    """Load ``tcfg.model`` for ``data``'s task and labels and apply ``tcfg.method``, seeded: the same config
    gives the same initial weights (the head's and the adapter's), in any process — what the federated stage
    relies on to start every site from one model."""
    from transformers import set_seed

    source = models.resolve(tcfg.model, trust_pickle=tcfg.trust_pickle, task=data.task)
    tokenizer = models.load_tokenizer(source, tcfg.tokenizer)
    set_seed(tcfg.seed)  # the new head's initialisation is part of what a seed must reproduce
    model = models.load_model(source, task=data.task, num_labels=len(data.labels), label_names=data.labels,
                              multi_label=data.multi_label, trust_pickle=tcfg.trust_pickle, dropout=tcfg.dropout,
                              tokenizer=tokenizer)
    # DP on a chat model: the private recipe in every field the user left unset
    tcfg = private_defaults(tcfg, data.task, getattr(model.config, "num_hidden_layers", None))
    model = adapters.apply_method(model, tcfg, data.task, tokenizer_path=tcfg.tokenizer or source.path)
    return PreparedModel(source, tokenizer, model, tcfg, adapters.count_parameters(model))


def _augmented(data: TrainData, tcfg: Any) -> tuple[Any, dict[str, int]]:
    """The training rows with counterfactual and adversarial copies when asked for (classifiers, taggers)."""
    counts = {"counterfactual": 0, "adversarial": 0}
    if not (tcfg.augment.counterfactual or tcfg.augment.adversarial):
        return data.train, counts
    if data.task == "chat":
        raise ConfigError("train.augment: counterfactual and adversarial copies are made for classifiers and "
                          "taggers; a chat run has no label to keep. Fix: set augment.counterfactual and "
                          "augment.adversarial to false for this run")
    return augment(data.train, task=data.task, counterfactual_on=tcfg.augment.counterfactual,
                   adversarial_on=tcfg.augment.adversarial, pairs=tcfg.augment.identity_pairs,
                   ratio=tcfg.augment.adversarial_ratio, seed=tcfg.augment.seed)


def examples(train_df: Any, data: TrainData, tokenizer: Any, tcfg: Any
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Tokenised train and validation examples, and the conversations set aside as too long for the model."""
    if data.task != "chat":
        return encode(train_df, data, tokenizer, tcfg), encode(data.validation, data, tokenizer, tcfg), []
    train_ex, aside = encode_conversations(train_df, tokenizer, tcfg, "train")
    val_ex, val_aside = encode_conversations(data.validation, tokenizer, tcfg, "validation")
    return train_ex, val_ex, aside + val_aside


def _quiet_libraries() -> None:
    """transformers' load reports and shard progress bars would drown our own progress display."""
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    disable_progress_bars()


def train_manifest(data: Any, source: Any, tcfg: Any, params: Any, train_rows: int, aug_counts: dict[str, int],
              res: Any, run_dir: Path, mlflow_run_id: str | None) -> dict[str, Any]:
    """The train manifest: what was trained from what, how, and how it went."""
    return {
        "task": data.task, "multi_label": data.multi_label, "labels": data.labels,
        "base_model": {"id": source.model_id, "path": source.path, "weights_sha256": source.weights_sha256},
        "method": tcfg.method,
        "lora": {**tcfg.lora.model_dump(), "target_modules": _targets(res.model)} if tcfg.method == "lora" else None,
        "prompt_tuning": tcfg.prompt_tuning.model_dump() if tcfg.method == "prompt" else None,
        "hyperparameters": tcfg.model_dump(mode="json"), "config_digest": config_digest(tcfg),
        "parameters": params, "train_rows": train_rows, "validation_rows": len(data.validation),
        "augmentation": aug_counts,
        "best_metric": {"name": res.metric_name, "value": res.best_metric, "epoch": res.best_epoch},
        "epochs_run": res.epochs_run, "global_steps": res.global_step, "stopped_early": res.stopped_early,
        "seconds": round(res.seconds, 2), "samples_per_second": res.samples_per_second,
        "tokens_per_second": res.tokens_per_second, "max_length": tcfg.length(data.task),
        "history": res.history,
        "privacy": res.privacy or {"enabled": False},
        "data_inputs": {k: {"path": artifact(p, run_dir, sha256=h).path, "sha256": h}
                        for k, (p, h) in data.inputs.items()},
        "mlflow_run_id": mlflow_run_id, "provenance": stamp(),
    }


def _targets(model: Any) -> list[str]:
    """The layers LoRA adapted (the configured ones, or those chosen for the model's family)."""
    return sorted(model.peft_config["default"].target_modules)


def write_output(run_dir: Path, model: Any, tokenizer: Any, method: str, manifest: dict[str, Any],
           set_aside: list[dict[str, Any]]) -> Path:
    """``train/``: the model (LoRA merged in: it loads without peft), the adapter, the tokenizer (a chat model's
    with its chat template), a chat model's generation config, the label map, metrics, rows set aside, manifest."""
    with atomic_dir(run_dir / STAGE) as gen:
        _save_model(gen, model, tokenizer, method, manifest["task"])
        write_json(gen / "label_map.json", {"labels": manifest["labels"], "task": manifest["task"],
                                            "multi_label": manifest["multi_label"]})
        write_json(gen / "metrics.json", {"history": manifest["history"], "best": manifest["best_metric"]})
        if manifest["task"] == "chat":
            (gen / "quarantine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in set_aside), encoding="utf-8")
        manifest["model_weights_sha256"] = {name: sha256_file(p) for name, p in weight_files(gen / "model").items()}
        TrainManifest.model_validate(manifest).write(gen / "manifest.json")
    return run_dir / STAGE


def _save_model(gen: Path, model: Any, tokenizer: Any, method: str, task: str) -> None:
    if method == "lora":
        model.save_pretrained(gen / "adapter", safe_serialization=True)
        model = model.merge_and_unload()  # a plain HF model that needs no peft to load
    if method == "prompt":
        # Virtual tokens cannot be merged into weights: the base model (with a classifier's trained head) goes
        # to model/, the prompt beside it, where inference.load_pretrained finds and applies it.
        model.save_pretrained(gen / "model" / PROMPT_ADAPTER_DIR, safe_serialization=True)
        model.get_base_model().save_pretrained(gen / "model", safe_serialization=True,
                                               state_dict=_unwrapped_state(model.get_base_model()))
    else:
        model.save_pretrained(gen / "model", safe_serialization=True)
    tokenizer.save_pretrained(gen / "model")
    if task == "chat":
        _save_generation_config(gen / "model", model, tokenizer)


def _unwrapped_state(model: Any) -> dict[str, Any]:
    """The state dict with peft's ``modules_to_save`` copies (a prompt-tuned classifier's trained head) in
    place of the originals, under the plain names a transformers model loads."""
    state: dict[str, Any] = {}
    for name, tensor in model.state_dict().items():
        if ".original_module." in name:
            continue
        state[name.replace(".modules_to_save.default.", ".")] = tensor
    return state


def _save_generation_config(folder: Path, model: Any, tokenizer: Any) -> None:
    """Generation stops at the end-of-turn token the answers were trained to end with; pad is set so
    ``generate`` never has to guess."""
    config = model.generation_config
    eos = tokenizer.eos_token_id
    config.eos_token_id = eos if config.eos_token_id in (None, eos) else sorted({eos, *(
        config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id])})
    config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    config.save_pretrained(folder)
