"""The compress stage: candidates from the trained model, each re-scored by the evaluate stage's full
scorecard and gates (same split, rows and seeds), a Pareto table, and the choice: the fastest (or smallest)
candidate that passes every gate the original passed. The original is re-scored in the same run, so
latency is compared on equal terms."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from steward.at_rest import read_parquet
from steward.atomic import atomic_dir, write_json
from steward.compress import artifact
from steward.compress.config import CompressRun
from steward.compress.methods import COMPRESSORS, Job
from steward.config_base import config_digest
from steward.errors import CompressStageError, ConfigError
from steward.evaluate.config import EvaluateConfig
from steward.hashing import sha256_tree
from steward.ledger.store import Ledger, now_iso
from steward.ledger.store import artifact as ledger_artifact
from steward.provenance import stamp
from steward.records import ChosenArtifact, Scorecard, TrainManifest

STAGE = "compress"
ORIGINAL = "original"
# The figures the Pareto table and the report compare (probe, figure).
FIGURES = {"accuracy": ("performance", "accuracy"), "dp_difference": ("fairness", "dp_difference"),
           "eo_difference": ("fairness", "eo_difference"), "cf_flip_rate": ("counterfactual", "flip_rate"),
           "attack_success": ("robustness", "attack_success"), "ece": ("calibration", "ece"),
           "latency_ms_p95": ("resources", "latency_ms_p95"), "throughput_per_s": ("resources", "throughput_per_s")}


@dataclass(frozen=True)
class CompressResult:
    candidates: list[dict[str, Any]]
    chosen: str
    out_dir: Path

    @property
    def chosen_entry(self) -> dict[str, Any]:
        return next(c for c in self.candidates if c["name"] == self.chosen)


def _read_inputs(cfg: CompressRun, run_dir: Path) -> tuple[TrainManifest, Scorecard]:
    """The train manifest and the original's scorecard, checked: a single-label classifier, judged with
    the evaluate settings in force, and at least one method to try."""
    manifest_path, sc_path = run_dir / "train" / "manifest.json", run_dir / "evaluate" / "scorecard.json"
    if not manifest_path.is_file():
        raise CompressStageError(f"no trained model in {run_dir / 'train'}; run `steward train` first")
    if not sc_path.is_file():
        raise CompressStageError(f"no scorecard in {run_dir / 'evaluate'}: a compressed model is judged against the "
                                 f"original's scorecard. Run `steward evaluate` for this run first")
    manifest = TrainManifest.read(manifest_path)
    parent_sc = Scorecard.read(sc_path)
    if manifest.task != "classification" or manifest.multi_label:
        raise CompressStageError(f"compress: the model is a {'multi-label ' if manifest.multi_label else ''}"
                                 f"{manifest.task} model; the compress stage handles single-label sequence "
                                 f"classification")
    if parent_sc.config_digest != config_digest(cfg.evaluate):
        raise CompressStageError("the evaluate settings differ from the ones the original's scorecard was made with "
                                 f"({sc_path}); candidates must be judged on equal terms. Fix: re-run `steward "
                                 "evaluate` with this config, then `steward compress`")
    if not cfg.compress.methods:
        raise ConfigError("compress.methods: got []: nothing to compress. Fix: name at least one of "
                          + ", ".join(COMPRESSORS.names()))
    return manifest, parent_sc


def _candidate(cfg: CompressRun, job: Job, method: str, out: Path, parent_hash: str, required: set[str],
               progress: bool) -> dict[str, Any]:
    """Build one candidate into ``out``, score it like the original, and return its entry."""
    from steward.evaluate.stage import score

    ccfg, ecfg = cfg.compress, cfg.evaluate
    out.mkdir()
    t0 = time.perf_counter()
    info = COMPRESSORS.create(method, job, out)
    build_seconds = time.perf_counter() - t0
    meta = artifact.write_meta(out, method=method, parent={"path": "train/model", "sha256": parent_hash},
                               config=ccfg.model_dump(mode="json"), **info)
    predictor = artifact.load_predictor(out, max_length=ecfg.max_length, batch_size=ecfg.batch_size,
                                        threads=ccfg.threads)
    res = score(cfg, predictor, out, progress=progress, description=f"score {method}")
    scorecard = Scorecard.model_validate(res.scorecard)
    scorecard.write(out / "scorecard.json")
    return _entry(method, method, out, meta, scorecard, required, build_seconds, artifact.size_bytes(out))


def _record(run_dir: Path, ccfg: Any, chosen: dict[str, Any], entries: list[dict[str, Any]], parent_hash: str,
            started_at: str, seconds: float) -> None:
    """The stage's ledger event: the parent and its scorecard in; the choice and the chosen model out."""
    out_dir, parent_dir = run_dir / STAGE, run_dir / "train" / "model"
    chosen_dir = run_dir / chosen["path"]
    outputs = [ledger_artifact(out_dir / n, run_dir, n.removesuffix(".json")) for n in ("pareto.json", "chosen.json")]
    outputs.append(ledger_artifact(chosen_dir, run_dir, "chosen_model"))
    if chosen["name"] != ORIGINAL:
        outputs.append(ledger_artifact(chosen_dir / "scorecard.json", run_dir, "chosen_scorecard"))
    Ledger(run_dir).append(
        stage=STAGE, started_at=started_at, config_digest=config_digest(ccfg),
        inputs=[ledger_artifact(parent_dir, run_dir, "parent_model"),
                ledger_artifact(run_dir / "evaluate" / "scorecard.json", run_dir, "parent_scorecard")],
        outputs=outputs,
        summary={"chosen": chosen["name"], "parent_sha256": parent_hash,
                 "rejected": {e["name"]: e["rejected"] for e in entries if e["rejected"]},
                 "seconds": seconds})


def run(cfg: CompressRun, *, progress: bool = False) -> CompressResult:
    """Compress ``RUN_DIR/train/model`` by every method in ``compress.methods``; write ``RUN_DIR/compress/``.
    A chat model goes to :func:`steward.compress.chat.run_chat` (int8, held-out loss and tokens/s)."""
    from steward.compress.report import render
    from steward.inference import TorchClassifier

    ccfg, ecfg = cfg.compress, cfg.evaluate
    run_dir = Path(cfg.run_dir)
    trained = run_dir / "train" / "manifest.json"
    if trained.is_file() and TrainManifest.read(trained).task == "chat":
        from steward.compress.chat import run_chat

        return run_chat(cfg, TrainManifest.read(trained), progress=progress)
    started_at = now_iso()
    t_start = time.perf_counter()
    parent_dir = run_dir / "train" / "model"
    manifest, parent_sc = _read_inputs(cfg, run_dir)
    if ccfg.threads:
        import torch

        torch.set_num_threads(ccfg.threads)
    parent_hash = sha256_tree(parent_dir)
    parent = TorchClassifier.load(parent_dir, expected_hashes=manifest.model_weights_sha256 or None,
                                  max_length=ecfg.max_length, batch_size=ecfg.batch_size)
    _check_architecture(parent, ccfg)
    texts, labels = _training_rows(run_dir, parent.labels, ccfg.finetune.max_rows, ccfg.finetune.seed)
    job = Job(parent_dir, parent, texts, labels, ccfg, progress)
    # Gates the original passed in its own evaluation: a candidate must pass each of them.
    required = parent_sc.passed_gates()
    with atomic_dir(run_dir / STAGE) as gen:
        cand_root = gen / "candidates"
        cand_root.mkdir()
        original = _rescore_original(cfg, parent, parent_dir, parent_sc, progress)
        entries = [_entry(ORIGINAL, "none", parent_dir, {"format": "hf"}, original, required, 0.0,
                          artifact.size_bytes(parent_dir))]
        entries += [_candidate(cfg, job, m, cand_root / m, parent_hash, required, progress) for m in ccfg.methods]
        _pareto(entries)
        chosen = _choose(entries, ccfg.choose_by, ccfg.prefer)
        for e in entries:
            e["chosen"] = e["name"] == chosen["name"]
            if e["name"] != ORIGINAL:
                e["sha256"] = sha256_tree(cand_root / e["name"])
        if sha256_tree(parent_dir) != parent_hash:
            raise CompressStageError(f"{parent_dir} changed while compressing; this is a bug in Steward, please report it")
        summary = {"parent": {"path": "train/model", "sha256": parent_hash}, "required_gates": sorted(required),
                   "choose_by": ccfg.choose_by, "prefer": ccfg.prefer, "chosen": chosen["name"], "candidates": entries,
                   "seconds": round(time.perf_counter() - t_start, 2), "config_digest": config_digest(ccfg),
                   "provenance": stamp()}
        write_json(gen / "pareto.json", summary)
        ChosenArtifact(name=chosen["name"], path=chosen["path"], format=chosen["format"],
                       sha256=chosen.get("sha256", parent_hash), parent_sha256=parent_hash).write(gen / "chosen.json")
        (gen / "report.html").write_text(render(summary), encoding="utf-8")
    _record(run_dir, ccfg, chosen, entries, parent_hash, started_at, summary["seconds"])
    return CompressResult(entries, chosen["name"], run_dir / STAGE)


class _Rescore(NamedTuple):
    """The run folder and an evaluate section: what the evaluate stage reads (an ``EvaluateRun``)."""

    run_dir: Path
    evaluate: EvaluateConfig


def _rescore_original(cfg: CompressRun, parent: Any, parent_dir: Path, parent_sc: Scorecard,
                      progress: bool) -> Scorecard:
    """The original's scorecard with its timing-sensitive figures (the resources probe) measured again now,
    beside the candidates; every other figure is deterministic and is taken from the evaluate stage."""
    from steward.evaluate.gates import judge
    from steward.evaluate.stage import score

    if "resources" not in cfg.evaluate.probes:
        return parent_sc
    only = _Rescore(cfg.run_dir, cfg.evaluate.model_copy(update={"probes": ["resources"]}))
    fresh = score(only, parent, parent_dir, progress=progress, description="re-time original").scorecard
    probes = {**parent_sc.probes, "resources": fresh["probes"]["resources"]}
    gates = judge(cfg.evaluate.gates, probes, parent_sc.task)
    return parent_sc.model_copy(update={"probes": probes, "gates": [g.to_dict() for g in gates],
                                        "passed": all(g.passed for g in gates)})


def _check_architecture(parent: Any, ccfg: Any) -> None:
    """Refuse a method the architecture (or its size) cannot take before any work is done."""
    from steward.compress.structure import encoder_layers

    for m in ccfg.methods:
        if m in ("prune_heads", "prune_ffn", "distill"):
            layers = encoder_layers(parent.model, m)
            if m == "distill" and ccfg.distill.layers >= len(layers):
                raise ConfigError(f"compress.distill.layers: got {ccfg.distill.layers}; the teacher has {len(layers)} "
                                  f"layers, so the student must have fewer. Fix: 1 to {len(layers) - 1}")


def _training_rows(run_dir: Path, labels: list[str], max_rows: int | None, seed: int) -> tuple[list[str], np.ndarray]:
    path = run_dir / "data" / "train.parquet"
    if not path.is_file():
        raise CompressStageError(f"no {path}; run `steward data` (recovery fine-tuning and distillation train on it)")
    frame = read_parquet(path, columns=["text", "label"])
    frame = frame[frame["label"].astype(str).isin(labels)]
    if max_rows is not None and len(frame) > max_rows:
        frame = frame.sample(n=max_rows, random_state=seed)
    index = {lbl: i for i, lbl in enumerate(labels)}
    return frame["text"].astype(str).tolist(), np.array([index[str(v)] for v in frame["label"]])


def _entry(name: str, method: str, path: Path, meta: dict[str, Any], sc: Scorecard, required: set[str],
           build_seconds: float, size: int) -> dict[str, Any]:
    gates = {g["gate"]: g for g in sc.gates}
    broken = [gates[g]["message"] if g in gates else f"{g}: not measured" for g in sorted(required)
              if not gates.get(g, {}).get("passed")]
    rel = "train/model" if name == ORIGINAL else f"{STAGE}/candidates/{path.name}"  # relative to RUN_DIR
    return {"name": name, "method": method, "path": rel, "format": meta.get("format"),
            "size_bytes": size, "build_seconds": round(build_seconds, 2),
            **{k: sc.figure(p, f) for k, (p, f) in FIGURES.items()},
            "gates_passed": sc.passed, "rejected": "; ".join(broken) or None,
            "details": {k: v for k, v in meta.items() if k not in ("config", "parent")}}


def _pareto(entries: list[dict[str, Any]]) -> None:
    """Mark candidates no other one beats on accuracy, latency and size at once."""
    def better(a: dict[str, Any], b: dict[str, Any]) -> bool:
        keys = (("accuracy", 1), ("latency_ms_p95", -1), ("size_bytes", -1))
        vals = [(a[k], b[k], s) for k, s in keys if a[k] is not None and b[k] is not None]
        return bool(vals) and all(s * x >= s * y for x, y, s in vals) and any(s * x > s * y for x, y, s in vals)

    for e in entries:
        e["pareto_optimal"] = not any(better(o, e) for o in entries if o is not e)


def _choose(entries: list[dict[str, Any]], by: str, prefer: str | None = None) -> dict[str, Any]:
    ok = [e for e in entries if not e["rejected"]]
    if not ok:  # the original broke a gate it passed before (noise in latency): keep it, never a worse copy
        return entries[0]
    preferred = [e for e in ok if e["name"] == prefer]
    if preferred:
        return preferred[0]
    key = "latency_ms_p95" if by == "latency" else "size_bytes"
    return min(ok, key=lambda e: (e[key] if e[key] is not None else float("inf"), e["name"] != ORIGINAL))
