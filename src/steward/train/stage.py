"""The train stage: the data stage's splits -> a fine-tuned model folder, a manifest and a ledger event."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steward.atomic import atomic_dir, write_json
from steward.config_base import config_digest
from steward.hashing import sha256_file
from steward.ledger.store import Ledger, artifact, now_iso
from steward.provenance import stamp
from steward.records import TrainManifest
from steward.tracking import Tracker, flatten
from steward.train import adapters, models
from steward.train.augment import augment
from steward.train.config import TrainRun
from steward.train.data import encode, load_data_stage
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
    from transformers import set_seed

    _quiet_libraries()
    tcfg = cfg.train
    run_dir = Path(cfg.run_dir)
    started_at = now_iso()
    t0 = time.perf_counter()
    if tcfg.threads:
        torch.set_num_threads(tcfg.threads)
    data = load_data_stage(run_dir, tcfg)
    train_df, aug_counts = data.train, {"counterfactual": 0, "adversarial": 0}
    if tcfg.augment.counterfactual or tcfg.augment.adversarial:
        train_df, aug_counts = augment(data.train, task=data.task, counterfactual_on=tcfg.augment.counterfactual,
                                       adversarial_on=tcfg.augment.adversarial, pairs=tcfg.augment.identity_pairs,
                                       ratio=tcfg.augment.adversarial_ratio, seed=tcfg.augment.seed)
    source = models.resolve(tcfg.model, trust_pickle=tcfg.trust_pickle)
    tokenizer = models.load_tokenizer(source, tcfg.tokenizer)
    set_seed(tcfg.seed)  # the new head's initialisation is part of what a seed must reproduce
    model = models.load_model(source, task=data.task, num_labels=len(data.labels), label_names=data.labels,
                              multi_label=data.multi_label, trust_pickle=tcfg.trust_pickle, dropout=tcfg.dropout,
                              tokenizer=tokenizer)
    model = adapters.apply_method(model, tcfg, data.task)
    params = adapters.count_parameters(model)
    train_ex = encode(train_df, data, tokenizer, tcfg)
    val_ex = encode(data.validation, data, tokenizer, tcfg)
    tracker = Tracker(run_dir, tcfg.mlflow and PartialState().is_main_process)
    with tracker.start(STAGE, flatten(tcfg.model_dump(mode="json"))):
        res = run_loop(model, tokenizer, data, train_ex, val_ex, tcfg, run_dir / WORK_DIR, resume=resume,
                       tracker=tracker, on_step=on_step, progress=progress)
        manifest = _manifest(data, source, tcfg, params, len(train_df), aug_counts, res, run_dir, tracker.run_id)
        if not PartialState().is_main_process:
            return TrainResult(manifest, run_dir / STAGE)
        out_dir = _write(run_dir, res.model, tokenizer, tcfg.method, manifest)
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


def _quiet_libraries() -> None:
    """transformers' load reports and shard progress bars would drown our own progress display."""
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    disable_progress_bars()


def _manifest(data: Any, source: Any, tcfg: Any, params: Any, train_rows: int, aug_counts: dict[str, int],
              res: Any, run_dir: Path, mlflow_run_id: str | None) -> dict[str, Any]:
    """The train manifest: what was trained from what, how, and how it went."""
    return {
        "task": data.task, "multi_label": data.multi_label, "labels": data.labels,
        "base_model": {"id": source.model_id, "path": source.path, "weights_sha256": source.weights_sha256},
        "method": tcfg.method, "lora": tcfg.lora.model_dump() if tcfg.method == "lora" else None,
        "hyperparameters": tcfg.model_dump(mode="json"), "config_digest": config_digest(tcfg),
        "parameters": params, "train_rows": train_rows, "validation_rows": len(data.validation),
        "augmentation": aug_counts,
        "best_metric": {"name": res.metric_name, "value": res.best_metric, "epoch": res.best_epoch},
        "epochs_run": res.epochs_run, "global_steps": res.global_step, "stopped_early": res.stopped_early,
        "seconds": round(res.seconds, 2), "samples_per_second": res.samples_per_second,
        "history": res.history,
        "privacy": res.privacy or {"enabled": False},
        "data_inputs": {k: {"path": artifact(p, run_dir, sha256=h).path, "sha256": h}
                        for k, (p, h) in data.inputs.items()},
        "mlflow_run_id": mlflow_run_id, "provenance": stamp(),
    }


def _write(run_dir: Path, model: Any, tokenizer: Any, method: str, manifest: dict[str, Any]) -> Path:
    with atomic_dir(run_dir / STAGE) as gen:
        if method == "lora":
            model.save_pretrained(gen / "adapter", safe_serialization=True)
            model = model.merge_and_unload()  # a plain HF model that needs no peft to load
        model.save_pretrained(gen / "model", safe_serialization=True)
        tokenizer.save_pretrained(gen / "model")
        write_json(gen / "label_map.json", {"labels": manifest["labels"], "task": manifest["task"],
                                            "multi_label": manifest["multi_label"]})
        write_json(gen / "metrics.json", {"history": manifest["history"], "best": manifest["best_metric"]})
        weights = sorted((gen / "model").glob("*.safetensors"))
        manifest["model_weights_sha256"] = {w.name: sha256_file(w) for w in weights}
        TrainManifest.model_validate(manifest).write(gen / "manifest.json")
    return run_dir / STAGE

