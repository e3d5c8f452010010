"""The gateway's prompt-injection detector: trained through Steward's own stages, measured on data it never saw.

Run: `.venv/bin/python bench/bench_injection.py` (or `make bench-injection`). Steps, one run:

1. Data: the labelled injection set in ../shared/data/prompt_injection/ (deepset, 546 prompts, 203 injections;
   English, German and others) plus generated hard negatives from the *train* template family
   (steward.gateway.injection_data) -> `steward data` (normalise, dedup, PII, split 70/10/20 stratified).
2. `steward train` (full fine-tuning of the default MiniLM) and `steward evaluate` (scorecard, gates).
3. On the test split (never trained on) and on hard negatives from the *held-out* template family (phrasings
   no training row used): recall and false-positive rate of the patterns alone, the classifier alone, and
   the guard as shipped (classifier + strong patterns), at the guard's default threshold 0.5.

Prints a table, writes bench/results/injection_bench.{json,md}; the trained run is the model to point
`gateway.guards.injection_model` (or `serve.guards.injection_model`) at.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

import numpy as np
import pandas as pd

from steward.config import parse_config
from steward.data import run as run_data
from steward.evaluate import run as run_eval
from steward.gateway.injection_data import build_training_csv, hard_negatives
from steward.serve.guards import GuardContext
from steward.serve.guards.input import InjectionGuard
from steward.train import run as run_train

HERE = Path(__file__).parent
SHARED = HERE.parent.parent / "shared" / "data" / "prompt_injection" / "train.csv"


def config(run_dir: Path, raw: Path) -> dict:  # type: ignore[type-arg]
    return {"run_dir": str(run_dir),
            "data": {"input": {"path": str(raw), "labels": ["benign", "injection"], "group_columns": ["source"]},
                     # Injections are often odd text (runs of newlines, code, mixed languages): keep them.
                     "quality": {"min_chars": 1, "min_alpha_ratio": 0.0}, "pii": {"ner": False},
                     "screen": {"enabled": False}, "split": {"validation": 0.1, "test": 0.2, "seed": 13}},
            "train": {"method": "full", "epochs": 8, "learning_rate": 5e-5, "batch_size": 16, "max_length": 128,
                      "mlflow": False, "early_stopping": {"patience": 2}},
            "evaluate": {"probes": ["performance", "calibration", "robustness", "resources"],
                         "gates": {"min_accuracy": 0.85}}}


def rates(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    pos, neg = y == 1, y == 0
    return {"recall": float(pred[pos].mean()) if pos.any() else float("nan"),
            "fpr": float(pred[neg].mean()) if neg.any() else float("nan"),
            "positives": int(pos.sum()), "negatives": int(neg.sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", type=Path, default=Path("/tmp/steward_bench_train"))
    ap.add_argument("--negatives", type=int, default=300, help="train-family hard negatives added to the data")
    ap.add_argument("--heldout", type=int, default=200, help="held-out-family hard negatives for the FPR check")
    ap.add_argument("--reuse", action="store_true", help="score the existing run instead of training again")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "injection_bench.json")
    args = ap.parse_args()
    run_dir = args.work / "injection"
    raw = args.work / "injection_raw.csv"
    t0 = time.perf_counter()
    if not args.reuse:
        counts = build_training_csv(SHARED, raw, negatives=args.negatives)
        cfg = parse_config(config(run_dir, raw))
        run_data(cfg, progress=True)
        run_train(cfg, progress=True)
        scorecard = run_eval(cfg, progress=True)
        print("scorecard passed:", scorecard.passed)
    else:
        counts = {}
    train_s = time.perf_counter() - t0
    test = pd.read_parquet(run_dir / "data" / "test.parquet")
    y = (test["label"] == "injection").to_numpy().astype(int)
    held = hard_negatives(args.heldout, "heldout")
    patterns = InjectionGuard(0.5)
    shipped = InjectionGuard(0.5, run_dir)
    detector = shipped.detector
    assert detector is not None
    ctx = GuardContext()
    rows = []
    timings = {}
    for name, decide in [
        ("patterns only", lambda t: not patterns.scan(t, ctx=ctx).valid),
        ("classifier only", lambda t: detector.proba(t) >= 0.5),
        ("guard as shipped (classifier + strong patterns)", lambda t: not shipped.scan(t, ctx=ctx).valid),
    ]:
        s0 = time.perf_counter()
        pred = np.array([decide(t) for t in test["text"]], dtype=int)
        timings[name] = (time.perf_counter() - s0) / len(test) * 1000
        hpred = np.array([decide(t) for t in held], dtype=int)
        r = rates(pred, y)
        rows.append({"detector": name, **r, "heldout_fpr": float(hpred.mean()), "heldout_n": len(held),
                     "ms_per_text": timings[name]})
    by_source = {}
    if "source" in test.columns:
        for src, part in test.groupby("source"):
            yp = (part["label"] == "injection").to_numpy().astype(int)
            pp = np.array([not shipped.scan(t, ctx=ctx).valid for t in part["text"]], dtype=int)
            by_source[str(src)] = rates(pp, yp)
    out = {"rows": rows, "test_rows": len(test), "by_source": by_source, "data_counts": counts,
           "train_and_evaluate_seconds": train_s, "run_dir": str(run_dir)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    md = ["| detector | recall (test) | false-positive rate (test) | FPR, held-out hard negatives | ms/text |",
          "|---|---|---|---|---|"]
    md += [f"| {r['detector']} | {r['recall']:.3f} ({r['positives']}) | {r['fpr']:.3f} ({r['negatives']}) | "
           f"{r['heldout_fpr']:.3f} ({r['heldout_n']}) | {r['ms_per_text']:.1f} |" for r in rows]
    if by_source:
        md += ["", "guard as shipped, test split by source: " + "; ".join(
            f"{k}: recall {v['recall']:.3f}, FPR {v['fpr']:.3f}" for k, v in by_source.items())]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
