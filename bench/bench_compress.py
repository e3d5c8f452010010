"""Compress-stage benchmark on real data: the SST-2 LoRA model (default MiniLM) through `steward compress`.

Run: `.venv/bin/python bench/bench_compress.py` (after bench/bench_train.py). Two parts, one run:

1. The compress stage itself on a copy of the SST-2 run: every method, each candidate re-scored by the
   evaluate stage's full scorecard (counterfactual flip rate, attack success, calibration, …), the Pareto
   table. SST-2 has no group column, so group fairness is measured in part 2.
2. Side by side in this process: fp32 PyTorch against every candidate at batch 1 and batch 32 on SST-2's
   validation split (accuracy and throughput), file sizes, and group fairness on the Equity Evaluation
   Corpus (8,400 sentences; gender and race). Throughput is texts per second on the same texts, candidates
   interleaved per round so machine load hits all alike.

Prints tables and writes bench/results/compress_bench.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

import numpy as np
import pandas as pd

from bench_evaluate import eec
from steward.compress import artifact
from steward.compress import run as run_compress
from steward.config import parse_config
from steward.evaluate import run as run_eval
from steward.inference import TorchClassifier

HERE = Path(__file__).parent


def throughput(clf: object, texts: list[str], batch: int) -> float:
    t0 = time.perf_counter()
    for k in range(0, len(texts), batch):
        clf.predict_proba(texts[k:k + batch])  # type: ignore[attr-defined]
    return len(texts) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", type=Path, default=Path("/tmp/steward_bench_train"))
    ap.add_argument("--source", default="sst2", help="the trained run under --work (sst2: 20k rows; sst2_all: all)")
    ap.add_argument("--eval-rows", type=int, default=500, help="rows of the test split each scorecard uses")
    ap.add_argument("--finetune-rows", type=int, default=4000, help="training rows for recovery and distillation")
    ap.add_argument("--speed-texts", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--methods", default="dynamic_int8,onnx,onnx_int8,prune_magnitude,prune_heads,prune_ffn,distill")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "compress_bench.json")
    args = ap.parse_args()
    src = args.work / args.source
    if not (src / "train" / "model").is_dir():
        raise SystemExit(f"{src} has no trained model: run bench/bench_train.py --only lora first")
    run_dir = args.work / "sst2_compress"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    shutil.copytree(src, run_dir, symlinks=True, ignore=shutil.ignore_patterns(
        "serve", "compress", ".compress.*", "evaluate", ".evaluate.*", "bench_serve_*"))
    evaluate = {"max_rows": args.eval_rows, "gates": {"min_accuracy": 0.85, "max_attack_success": 0.9,
                                                       "max_cf_flip_rate": 0.05, "max_ece": 0.1}}
    cfg = parse_config({"run_dir": str(run_dir), "evaluate": evaluate, "compress": {
        "methods": args.methods.split(","), "finetune": {"max_rows": args.finetune_rows, "max_length": 64}}})
    t0 = time.perf_counter()
    run_eval(cfg, progress=True)
    result = run_compress(cfg, progress=True)
    stage_minutes = (time.perf_counter() - t0) / 60

    # Side by side: the same validation texts through every candidate.
    val = pd.read_parquet(run_dir / "data" / "validation.parquet")
    texts, gold = val["text"].astype(str).tolist(), val["label"].astype(str).tolist()
    models = {"fp32 PyTorch": TorchClassifier.load(run_dir / "train" / "model", batch_size=64)}
    for c in result.candidates:
        if c["name"] != "original":
            models[c["name"]] = artifact.load_predictor(run_dir / c["path"], batch_size=64)
    speed_texts = texts[: args.speed_texts]
    speed: dict[str, dict[str, list[float]]] = {n: {"b1": [], "b32": []} for n in models}
    for _ in range(args.rounds):
        for name, clf in models.items():
            clf.predict_proba(speed_texts[:8])  # warm
            speed[name]["b1"].append(throughput(clf, speed_texts[:64], 1))
            speed[name]["b32"].append(throughput(clf, speed_texts, 32))
    rows = []
    base = None
    for name, clf in models.items():
        pred = clf.predict_proba(texts).argmax(1)
        acc = float(np.mean([clf.labels[p] == g for p, g in zip(pred, gold, strict=True)]))
        folder = run_dir / "train" / "model" if name == "fp32 PyTorch" else run_dir / "compress" / "candidates" / name
        row = {"model": name, "val_accuracy": acc, "b1_per_s": float(np.median(speed[name]["b1"])),
               "b32_per_s": float(np.median(speed[name]["b32"])), "size_bytes": artifact.size_bytes(folder)}
        fair = eec(clf)
        row |= {"eec_dp_difference": fair["fairness"]["dp_difference"]["value"],
                "eec_eo_difference": fair["fairness"]["eo_difference"]["value"],
                "eec_female_minus_male": fair["eec_female_minus_male_p_positive_mean"]}
        base = base or row
        row |= {"b1_ratio": row["b1_per_s"] / base["b1_per_s"], "b32_ratio": row["b32_per_s"] / base["b32_per_s"],
                "size_ratio": row["size_bytes"] / base["size_bytes"],
                "accuracy_drop_points": (base["val_accuracy"] - acc) * 100}
        rows.append(row)
    pareto = json.loads((run_dir / "compress" / "pareto.json").read_text())
    out = {"source": args.source, "speed": rows, "pareto": pareto, "stage_minutes": stage_minutes, "validation_rows": len(texts),
           "eval_rows": args.eval_rows, "finetune_rows": args.finetune_rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str))
    md = markdown(out)
    args.out.with_suffix(".md").write_text(md)
    print(md)


def markdown(out: dict) -> str:  # type: ignore[type-arg]
    lines = [f"Side by side on SST-2's validation split ({out['validation_rows']} rows), default model after LoRA "
             f"(run `{out.get('source', 'sst2')}`), "
             "2 CPU cores, medians of interleaved rounds:", "",
             "| model | val. accuracy | drop (points) | batch 1 texts/s | ratio | batch 32 texts/s | ratio | size MiB | "
             "size ratio | EEC DP diff. | EEC EO diff. | EEC female − male |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in out["speed"]:
        lines.append(f"| {r['model']} | {r['val_accuracy']:.4f} | {r['accuracy_drop_points']:+.2f} | {r['b1_per_s']:.1f} | "
                     f"{r['b1_ratio']:.2f}x | {r['b32_per_s']:.1f} | {r['b32_ratio']:.2f}x | "
                     f"{r['size_bytes'] / 2**20:.1f} | {r['size_ratio']:.2f} | {r['eec_dp_difference']:.3f} | "
                     f"{r['eec_eo_difference']:.3f} | {r['eec_female_minus_male']:+.4f} |")
    p = out["pareto"]
    lines += ["", f"The compress stage ({out['stage_minutes']:.1f} min, every candidate re-scored on "
              f"{out['eval_rows']} test rows; recovery/distillation on {out['finetune_rows']} training rows; "
              f"required gates: {', '.join(p['required_gates']) or 'none'}; chosen: **{p['chosen']}**):", "",
              "| candidate | accuracy | CF flip rate | attack success | ECE | p95 ms | MiB | verdict |",
              "|---|---|---|---|---|---|---|---|"]

    def f(v: object) -> str:
        return "—" if v is None else f"{v:.3f}"

    for c in p["candidates"]:
        verdict = ("rejected: " + c["rejected"]) if c["rejected"] else ("chosen" if c["chosen"] else "passes")
        lines.append(f"| {c['name']} | {f(c['accuracy'])} | {f(c['cf_flip_rate'])} | {f(c['attack_success'])} | "
                     f"{f(c['ece'])} | {f(c['latency_ms_p95'])} | {c['size_bytes'] / 2**20:.1f} | {verdict} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
