"""The evaluate stage: the trained model and a held-out split -> scorecard.json (+ report and model card),
release gates, and a ledger event linking the scorecard to the exact model and data hashes."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from steward.at_rest import read_parquet
from steward.atomic import atomic_dir
from steward.config_base import config_digest
from steward.errors import ConfigError, EvaluateStageError, GateFailed
from steward.evaluate.config import EvaluateRun
from steward.evaluate.gates import GateResult, judge
from steward.evaluate.probes import PROBES, EvalContext, ProbeResult
from steward.evaluate.scorecard import composite
from steward.hashing import sha256_file
from steward.ledger.store import Ledger, artifact, now_iso
from steward.progress import progress_bar
from steward.provenance import stamp
from steward.records import DataManifest, Scorecard, TrainManifest
from steward.types import ArtifactRef

log = logging.getLogger(__name__)
STAGE = "evaluate"


@dataclass(frozen=True)
class EvaluateResult:
    scorecard: dict[str, Any]
    gates: list[GateResult] = field(default_factory=list)
    out_dir: Path = Path()

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def failed(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]

    def raise_for_gates(self) -> None:
        """Raise :class:`GateFailed` naming every failed gate with its measured value."""
        if self.failed:
            raise GateFailed("release gates failed: " + "; ".join(g.message for g in self.failed),
                             failed=[g.gate for g in self.failed])


def run(cfg: EvaluateRun, *, progress: bool = False) -> EvaluateResult:
    """Score ``RUN_DIR/train/model`` on ``RUN_DIR/data/<split>.parquet``; write ``RUN_DIR/evaluate/``."""
    run_dir = Path(cfg.run_dir)
    started_at = now_iso()
    result, inputs = _score(cfg, progress=progress)
    scorecard = result.scorecard
    out_dir = _write(run_dir, cfg, scorecard)
    Ledger(run_dir).append(
        stage=STAGE, started_at=started_at, config_digest=config_digest(cfg.evaluate), inputs=inputs,
        outputs=[artifact(p, run_dir, p.name) for p in sorted(out_dir.iterdir()) if p.is_file()],
        summary={"passed": scorecard["passed"], "failed_gates": [g.gate for g in result.gates if not g.passed],
                 "composite": (scorecard["composite"] or {}).get("value"), "seconds": scorecard["timing"]["seconds"]},
    )
    _track(run_dir, scorecard)
    return EvaluateResult(scorecard, result.gates, out_dir)


def score(cfg: EvaluateRun, predictor: Any, model_dir: Path, *, progress: bool = False,
          description: str = "evaluate") -> EvaluateResult:
    """The same scorecard and gates for another predictor of this run's task (a compressed candidate):
    same split, rows, seeds and probes. Writes nothing."""
    return _score(cfg, predictor=predictor, model_dir=model_dir, progress=progress, description=description)[0]


def _score(cfg: EvaluateRun, *, predictor: Any = None, model_dir: Path | None = None, progress: bool = False,
           description: str = "evaluate") -> tuple[EvaluateResult, list[ArtifactRef]]:
    try:
        import torch
    except ImportError as exc:
        from steward.errors import DependencyMissingError

        raise DependencyMissingError("the evaluate stage needs the ml extra: pip install -e '.[ml]'") from exc
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    ecfg = cfg.evaluate
    run_dir = Path(cfg.run_dir)
    t0 = time.perf_counter()
    if ecfg.threads:
        torch.set_num_threads(ecfg.threads)
    torch.manual_seed(ecfg.seed)
    train_manifest, data_manifest = _manifests(run_dir)
    if train_manifest.task == "chat":
        return _score_chat(cfg, train_manifest, data_manifest, predictor, model_dir, t0, progress=progress,
                           description=description)
    ctx, inputs = _context(run_dir, cfg, train_manifest, data_manifest, predictor, model_dir)
    results: dict[str, dict[str, Any]] = {}
    with progress_bar(progress) as bar:
        task_id = bar.add_task(description, total=len(ecfg.probes)) if bar else None
        for name in ecfg.probes:
            if bar:
                bar.update(task_id, description=f"{description}: {name}")
            p0 = time.perf_counter()
            res: ProbeResult = PROBES.create(name, ctx)
            res.seconds = time.perf_counter() - p0
            results[name] = res.to_dict()
            if bar:
                bar.advance(task_id)
    gates = judge(ecfg.gates, results, ctx.task)
    total = time.perf_counter() - t0
    scorecard: dict[str, Any] = {
        "task": ctx.task, "labels": ctx.labels, "split": ecfg.split, "rows": len(ctx.texts or ctx.tokens),
        "model": {"path": str(ctx.model_dir), "base_model": train_manifest.base_model,
                  "method": train_manifest.method,
                  "weights_sha256": train_manifest.model_weights_sha256 if predictor is None else None},
        "data": {"split_sha256": inputs[0].sha256, "data_config_digest": data_manifest.config_digest},
        "sensitive_columns": ctx.sensitive_columns,
        "probes": results,
        "gates": [g.to_dict() for g in gates],
        "passed": all(g.passed for g in gates),
        "composite": composite(results, ctx.task, ecfg.gates.max_latency_ms_p95),
        "timing": {"seconds": round(total, 2),
                   "setup_seconds": round(total - sum(v["seconds"] for v in results.values()), 2),  # loading
                   "share": {k: round(v["seconds"] / total, 4) for k, v in results.items()}},
        "config": ecfg.model_dump(mode="json"), "config_digest": config_digest(ecfg), "provenance": stamp(),
    }
    return EvaluateResult(scorecard, gates), inputs


def _score_chat(cfg: EvaluateRun, tm: TrainManifest, dm: DataManifest, given: Any, given_dir: Path | None, t0: float,
                *, progress: bool, description: str) -> tuple[EvaluateResult, list[ArtifactRef]]:
    """The generative scorecard: every chat probe on the fine-tuned model and its base model, and the gates."""
    import os

    from steward.evaluate.gates import judge_chat
    from steward.evaluate.generative import ChatLM, GenContext, run_probes

    ecfg, run_dir = cfg.evaluate, Path(cfg.run_dir)
    chat = ecfg.chat
    frame, ref = _evaluated_rows(run_dir, dm, ecfg)
    inputs = [ref]
    train = None
    if "privacy" in chat.probes:
        train, train_ref = _load_split(run_dir, dm, "train")
        inputs.append(train_ref)
    planted = None
    canary_file = run_dir / "data" / "canaries.json"
    if canary_file.exists():
        planted = json.loads(canary_file.read_text())
        inputs.append(artifact(canary_file, run_dir, "canaries"))
    model_dir = given_dir if given_dir is not None else run_dir / "train" / "model"
    tuned = given if given is not None else ChatLM.load(model_dir, label="fine-tuned",
                                                        expected=tm.model_weights_sha256 or None)
    if given is None:
        inputs += [artifact(model_dir / name, run_dir, "model") for name in sorted(tm.model_weights_sha256 or {})]
    base_dir = _base_model_dir(tm) if chat.compare_base else None
    base = ChatLM.load(base_dir, label="base") if base_dir is not None else None
    if base_dir is not None:
        inputs += [artifact(w, run_dir, "base_model") for w in sorted(base_dir.glob("*.safetensors"))]
    datasets = chat.datasets_dir or (Path(os.environ["STEWARD_DATASETS"]) if os.environ.get("STEWARD_DATASETS") else None)
    inputs += _dataset_inputs(datasets, chat.probes, run_dir)
    ctx = GenContext(cfg=ecfg, run_dir=run_dir, train_manifest=tm, test=frame.reset_index(drop=True), train=train,
                     canaries=planted, datasets=datasets, gateway=getattr(cfg, "gateway", None))
    results = run_probes(ctx, tuned, base, progress=progress, description=description)
    gates = judge_chat(chat.gates, results)
    total = time.perf_counter() - t0
    scorecard: dict[str, Any] = {
        "task": "chat", "labels": [], "split": ecfg.split, "rows": len(frame),
        "model": {"path": str(model_dir), "base_model": tm.base_model, "method": tm.method,
                  "weights_sha256": tm.model_weights_sha256 if given is None else None},
        "base": {"path": str(base_dir), "id": tm.base_model.get("id"),
                 "weights_sha256": tm.base_model.get("weights_sha256")} if base is not None else None,
        "data": {"split_sha256": ref.sha256, "data_config_digest": dm.config_digest},
        "datasets": str(datasets) if datasets else None,
        "probes": results, "gates": [g.to_dict() for g in gates], "passed": all(g.passed for g in gates),
        "composite": None,
        "timing": {"seconds": round(total, 2),
                   "setup_seconds": round(total - sum(v["seconds"] for v in results.values()), 2),
                   "share": {k: round(v["seconds"] / total, 4) for k, v in results.items()}},
        "config": ecfg.model_dump(mode="json"), "config_digest": config_digest(ecfg), "provenance": stamp(),
    }
    return EvaluateResult(scorecard, gates), inputs


# The files of the datasets folder each probe reads: their hashes go into the ledger event beside the model's.
_DATASET_FILES = {"bias": ("crows_pairs/*.csv", "bbq/*.jsonl"), "toxicity": ("hate_offensive/labeled_data.csv",)}


def _dataset_inputs(datasets: Path | None, probes: list[str], run_dir: Path) -> list[ArtifactRef]:
    if datasets is None:
        return []
    files = sorted({f for p in probes for pattern in _DATASET_FILES.get(p, ()) for f in datasets.glob(pattern)})
    return [artifact(f, run_dir, f"dataset:{f.parent.name}/{f.name}") for f in files if f.is_file()]


def _base_model_dir(tm: TrainManifest) -> Path:
    """The folder of the model the run fine-tuned, checked against the hash its train manifest recorded."""
    from steward.offline_models import EMBEDDED_MODEL_ID, embedded_model_dir
    from steward.train.models import weights_hash

    base = tm.base_model
    path = Path(base.get("path") or "")
    if not (path / "config.json").is_file() and base.get("id") == EMBEDDED_MODEL_ID:
        path = embedded_model_dir(field="evaluate.chat.compare_base")
    if not (path / "config.json").is_file():
        raise EvaluateStageError(f"evaluate.chat.compare_base: the base model {base.get('id')!r} is not at "
                                 f"{base.get('path')!r} any more, and every probe is measured against it. Fix: "
                                 f"restore that folder, or set evaluate.chat.compare_base: false")
    expected = base.get("weights_sha256")
    if expected and weights_hash(path) != expected:
        raise EvaluateStageError(f"evaluate.chat.compare_base: the base model at {path} differs from the one the "
                                 f"run fine-tuned (weights sha256 mismatch with the train manifest). Fix: restore "
                                 f"it, or set evaluate.chat.compare_base: false")
    return path


def _manifests(run_dir: Path) -> tuple[TrainManifest, DataManifest]:
    tm, dm = run_dir / "train" / "manifest.json", run_dir / "data" / "manifest.json"
    if not tm.is_file():
        raise EvaluateStageError(f"no trained model in {run_dir / 'train'}; run `steward train` for this run first")
    if not dm.is_file():
        raise EvaluateStageError(f"no data-stage outputs in {run_dir / 'data'}; run `steward data` first")
    return TrainManifest.read(tm), DataManifest.read(dm)


def _evaluated_rows(run_dir: Path, dm: DataManifest, ecfg: Any) -> tuple[pd.DataFrame, ArtifactRef]:
    """The evaluated split (hash-checked), a seeded sample of ``max_rows`` of it when it is larger."""
    frame, ref = _load_split(run_dir, dm, ecfg.split)
    if frame.empty:
        raise EvaluateStageError(f"the {ecfg.split} split is empty; nothing to evaluate")
    if ecfg.max_rows is not None and len(frame) > ecfg.max_rows:
        frame = frame.sample(n=ecfg.max_rows, random_state=ecfg.seed)
    return frame, ref


def _load_split(run_dir: Path, data_manifest: DataManifest, split: str) -> tuple[pd.DataFrame, ArtifactRef]:
    ref = data_manifest.split(split)
    path = run_dir / ref.path if ref else None
    if ref is None or path is None or not path.is_file():
        raise EvaluateStageError(f"evaluate.split: got {split!r}: the data stage wrote no {split} split. Set "
                                 f"data.split.{split} > 0 and rerun `steward data`, or evaluate on the other split")
    digest = sha256_file(path)
    if digest != ref.sha256:
        raise EvaluateStageError(f"{ref.path} changed since the data stage wrote it (sha256 mismatch); rerun "
                                 f"`steward data` or run `steward ledger verify` to see what happened")
    return read_parquet(path), artifact(path, run_dir, split, sha256=digest)


def _context(run_dir: Path, cfg: EvaluateRun, tm: TrainManifest, dm: DataManifest, given: Any = None,
             given_dir: Path | None = None) -> tuple[EvalContext, list[ArtifactRef]]:
    from steward.inference import TorchClassifier, TorchTagger

    ecfg = cfg.evaluate
    frame, ref = _evaluated_rows(run_dir, dm, ecfg)
    frame = frame.reset_index(drop=True)
    columns = list(ecfg.sensitive_columns) if ecfg.sensitive_columns is not None else list(dm.group_columns)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(f"evaluate.sensitive_columns: got {missing}: not columns of the {ecfg.split} split "
                          f"(its columns: {sorted(frame.columns)}). Fix: name columns the data stage kept "
                          f"(data.input.group_columns)")
    model_dir = given_dir if given_dir is not None else run_dir / "train" / "model"
    hashes = tm.model_weights_sha256 or None
    labels = list(tm.labels)
    inputs = [ref] + ([artifact(w, run_dir, "model") for w in sorted(model_dir.glob("*.safetensors"))]
                      if given is None else [])
    if tm.task == "ner":
        tagger = TorchTagger.load(model_dir, expected_hashes=hashes, max_length=ecfg.max_length)
        ctx = EvalContext(predictor=tagger, task="ner", labels=labels, texts=[], y=np.zeros(0, dtype=int),  # type: ignore[arg-type]
                          frame=frame, sensitive_columns=[], cfg=ecfg, train_manifest=tm, model_dir=model_dir,
                          tokens=[list(t) for t in frame["tokens"]], tags=[list(t) for t in frame["tags"]])
        return ctx, inputs
    clf = given if given is not None else TorchClassifier.load(model_dir, expected_hashes=hashes,
                                                               max_length=ecfg.max_length, batch_size=ecfg.batch_size)
    if clf.labels != labels:
        raise EvaluateStageError(f"the model's labels {clf.labels} differ from the train manifest's {labels}; "
                                 f"the model folder was replaced — rerun `steward train`")
    task = "multilabel" if tm.multi_label else "classification"
    index = {lbl: i for i, lbl in enumerate(labels)}
    if task == "multilabel":
        sep = tm.hyperparameters.get("multi_label_separator") or "|"
        y = np.array([[int(lbl in {p.strip() for p in str(v).split(sep)}) for lbl in labels] for v in frame["label"]])
    else:
        y = np.array([index.get(str(v), -1) for v in frame["label"]])
    if task == "classification" and (y < 0).any():
        unknown = sorted({str(v) for v, i in zip(frame["label"], y, strict=True) if i < 0})
        raise EvaluateStageError(f"the {ecfg.split} split has labels {unknown} the model was not trained on "
                                 f"(model labels: {labels}); retrain on data that includes them")
    train_texts: list[str] = []
    train_y = np.zeros(0, dtype=int)
    planted = None
    if "privacy" in ecfg.probes and task == "classification":
        train_frame, train_ref = _load_split(run_dir, dm, "train")
        canary_file = run_dir / "data" / "canaries.json"
        if canary_file.exists():
            planted = json.loads(canary_file.read_text())
            inputs.append(artifact(canary_file, run_dir, "canaries"))
        canary_texts = {c["text"] for c in (planted or {}).get("canaries", [])}
        # The membership attack is judged on real rows; canaries are scored on their own (exposure).
        keep = train_frame["label"].astype(str).isin(index) & ~train_frame["text"].isin(canary_texts)
        train_texts = train_frame.loc[keep, "text"].astype(str).tolist()
        train_y = np.array([index[str(v)] for v in train_frame.loc[keep, "label"]])
        inputs.append(train_ref)
    ctx = EvalContext(predictor=clf, task=task, labels=labels, texts=frame["text"].astype(str).tolist(), y=y,
                      frame=frame, sensitive_columns=columns, cfg=ecfg, train_texts=train_texts, train_y=train_y,
                      train_manifest=tm, model_dir=model_dir, canaries=planted)
    return ctx, inputs


def _track(run_dir: Path, scorecard: dict[str, Any]) -> None:
    """Every figure and the gates' verdict into the MLflow run that trained the model (when it was tracked)."""
    from steward.tracking import Tracker

    run_id = TrainManifest.read(run_dir / "train" / "manifest.json").mlflow_run_id
    values = {f"evaluate.{probe}.{name}": fig["value"] for probe, p in scorecard["probes"].items()
              for name, fig in (p.get("figures") or {}).items() if isinstance(fig.get("value"), int | float)}
    values["evaluate.gates_passed"] = float(scorecard["passed"])
    try:
        with Tracker(run_dir, True).resume(run_id) as tracker:
            tracker.metrics(values, step=0)
            tracker.artifact(run_dir / STAGE / "scorecard.json")
    except Exception as exc:  # noqa: BLE001 — tracking never fails a stage whose outputs and ledger are written
        log.warning("MLflow: evaluate metrics not tracked (%s)", exc)


def _write(run_dir: Path, cfg: EvaluateRun, scorecard: dict[str, Any]) -> Path:
    with atomic_dir(run_dir / STAGE) as gen:
        Scorecard.model_validate(scorecard).write(gen / "scorecard.json")
        if scorecard["task"] == "chat":
            from steward.evaluate.generative.report import render_chat_card, render_chat_report

            if cfg.evaluate.report:
                (gen / "report.html").write_text(render_chat_report(scorecard), encoding="utf-8")
            if cfg.evaluate.model_card:
                (gen / "MODEL_CARD.md").write_text(render_chat_card(scorecard, run_dir), encoding="utf-8")
            return run_dir / STAGE
        if cfg.evaluate.report:
            from steward.evaluate.report import render_report

            (gen / "report.html").write_text(
                render_report(scorecard, hide_offensive_at=cfg.evaluate.report_hide_offensive), encoding="utf-8")
        if cfg.evaluate.model_card:
            from steward.evaluate.card import render_card

            (gen / "MODEL_CARD.md").write_text(render_card(scorecard, run_dir), encoding="utf-8")
    return run_dir / STAGE
