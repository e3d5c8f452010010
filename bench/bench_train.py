"""Train-stage benchmark on real data: LoRA and DP-LoRA on SST-2, NER on CoNLL-2003 (default model, CPU).

Run: `.venv/bin/python bench/bench_train.py [--only lora,dp,ner] [--train-rows 20000]`. Each run goes through
Steward's own data and train stages; accuracy is measured on SST-2's labelled test file (GLUE's dev set,
872 sentences), which training never sees. Prints a table and writes bench/results/train_bench.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

import pandas as pd
from rich.console import Console
from rich.table import Table

from steward.config import parse_config
from steward.data import run as run_data
from steward.train import run as run_train

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
console = Console(width=150)


def sst2_run(root: Path, train_rows: int | None, val_rows: int, seed: int) -> Path:
    """A run folder whose data stage holds an SST-2 subset (None: all of train.tsv) with the official split kept."""
    run_dir = root / ("sst2" if train_rows == 20_000 else f"sst2_{train_rows or 'all'}")
    if (run_dir / "data" / "manifest.json").exists():
        return run_dir
    read = lambda name: pd.read_csv(SHARED / "sst2" / name, sep="\t", quoting=3, dtype=str)  # noqa: E731
    train = read("train.tsv")
    train = train.sample(n=train_rows, random_state=seed) if train_rows else train
    val = read("dev.tsv").sample(n=val_rows, random_state=seed)
    test = read("test.tsv")
    frame = pd.concat([train.assign(part="train"), val.assign(part="validation"), test.assign(part="test")])
    root.mkdir(parents=True, exist_ok=True)
    src = root / f"{run_dir.name}_subset.tsv"
    frame.to_csv(src, sep="\t", index=False)
    run_data(parse_config({"run_dir": str(run_dir), "data": {
        "input": {"path": str(src), "text_column": "sentence", "labels": ["0", "1"]},
        "quality": {"min_chars": 1, "min_alpha_ratio": 0.0}, "pii": {"ner": False},
        "dedup": {"near": False}, "screen": {"enabled": False},
        "split": {"column": "part", "leakage": "report"}}}))
    return run_dir


def test_accuracy(run_dir: Path) -> float:
    """Accuracy of RUN_DIR/train/model on RUN_DIR/data/test.parquet."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(run_dir / "train" / "model").eval()
    tok = AutoTokenizer.from_pretrained(run_dir / "train" / "model")
    test = pd.read_parquet(run_dir / "data" / "test.parquet")
    label2id = model.config.label2id
    correct = 0
    with torch.no_grad():
        for i in range(0, len(test), 64):
            part = test.iloc[i:i + 64]
            enc = tok(part["text"].tolist(), padding=True, truncation=True, max_length=128, return_tensors="pt")
            pred = model(**enc).logits.argmax(-1).tolist()
            correct += sum(int(p == label2id[lbl]) for p, lbl in zip(pred, part["label"], strict=True))
    return correct / len(test)


def train(run_dir: Path, **train_cfg: object) -> dict:  # type: ignore[type-arg]
    cfg = parse_config({"run_dir": str(run_dir), "train": {"mlflow": False, **train_cfg}})
    t0 = time.perf_counter()
    manifest = run_train(cfg, progress=True).manifest
    manifest["wall_minutes"] = round((time.perf_counter() - t0) / 60, 2)
    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", default="lora,dp,ner")
    ap.add_argument("--train-rows", type=int, default=20_000, help="SST-2 training rows; 0 = all of train.tsv")
    ap.add_argument("--lora-epochs", type=int, default=3)
    ap.add_argument("--val-rows", type=int, default=1_000)
    ap.add_argument("--ner-sentences", type=int, default=4_000)
    ap.add_argument("--dp-lr", type=float, default=1e-2)
    ap.add_argument("--dp-batch", type=int, default=1024)
    ap.add_argument("--dp-epochs", type=int, default=6)
    ap.add_argument("--dp-clip", type=float, default=1.0, help="per-sample clipping bound")
    ap.add_argument("--dp-r", type=int, default=8, help="LoRA rank under DP")
    ap.add_argument("--dp-targets", default="query,value", help="LoRA target modules under DP")
    ap.add_argument("--dp-max-steps", type=int, default=None, help="stop early (speed checks only)")
    ap.add_argument("--dp-off", action="store_true",
                    help="run the DP configuration without DP (the privacy cost, with everything else equal)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/steward_bench_train"))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "train_bench.json")
    args = ap.parse_args()
    only = set(args.only.split(","))
    results: dict[str, dict] = json.loads(args.out.read_text()) if args.out.exists() else {}  # type: ignore[type-arg]
    base = sst2_run(args.work, args.train_rows or None, args.val_rows, seed=13)
    tag = "" if args.train_rows == 20_000 else f"_{args.train_rows or 'all'}rows"
    lora = {"method": "lora", "epochs": args.lora_epochs, "batch_size": 32, "max_length": 64, "learning_rate": 1e-3,
            "lora": {"r": 16, "alpha": 32, "target_modules": ["query", "key", "value", "dense"]},
            "early_stopping": {"metric": "accuracy", "patience": 2}}
    if "lora" in only:
        m = train(base, **lora)
        results[f"sst2_lora{tag}" + (f"_e{args.lora_epochs}" if args.lora_epochs != 3 else "")] = _row(m, test_accuracy(base), args.train_rows)
        _save(args.out, results)
    if "dp" in only:
        dp_run = args.work / f"{base.name}_dp"
        if not dp_run.exists():
            import shutil

            def skip(folder: str, names: list[str]) -> set[str]:  # the data stage only, not the LoRA run
                return {n for n in names if n in ("train", "train_checkpoints", "mlruns") or n.startswith(".train.")}

            shutil.copytree(base, dp_run, symlinks=True, ignore=skip)
        dp = {**lora, "batch_size": args.dp_batch, "learning_rate": args.dp_lr, "epochs": args.dp_epochs,
              "max_grad_norm": None,
              "max_steps": args.dp_max_steps,
              "lora": {"r": args.dp_r, "alpha": 2 * args.dp_r, "target_modules": args.dp_targets.split(",")},
              "privacy": {"enabled": not args.dp_off, "target_epsilon": 8.0, "max_grad_norm": args.dp_clip}}
        if args.dp_off:
            dp["max_grad_norm"] = args.dp_clip  # ordinary clipping at the same bound
        m = train(dp_run, **dp)
        name = (f"sst2_{'nodp_same_config' if args.dp_off else 'dp'}_lora_eps8_lr{args.dp_lr:g}_b{args.dp_batch}"
                f"_e{args.dp_epochs}_c{args.dp_clip:g}_r{args.dp_r}_{args.dp_targets.replace(',', '+')}{tag}")
        results[name] = _row(m, test_accuracy(dp_run), args.train_rows)
        _save(args.out, results)
    if "ner" in only:
        ner_run = args.work / "conll"
        if not (ner_run / "data").exists():
            sents = (SHARED / "conll2003" / "train.txt").read_text().split("\n\n")[: args.ner_sentences]
            dev = (SHARED / "conll2003" / "dev.txt").read_text().split("\n\n")[:1000]
            src = args.work / "conll_subset.conll"
            src.write_text("\n\n".join(sents + dev) + "\n")
            run_data(parse_config({"run_dir": str(ner_run), "data": {
                "input": {"path": str(src), "task": "ner"}, "pii": {"enabled": False},
                "quality": {"min_chars": 1, "min_alpha_ratio": 0.0}, "dedup": {"near": False},
                "screen": {"enabled": False}, "split": {"validation": 0.2, "test": 0.0}}}))
        m = train(ner_run, method="full", epochs=3, batch_size=32, max_length=128, learning_rate=5e-5,
                  early_stopping={"metric": "entity_f1", "patience": 2})
        results["conll_ner_full"] = _row(m, None, args.ner_sentences)
        _save(args.out, results)
    _print(results)


def _row(m: dict, test_acc: float | None, rows: int) -> dict:  # type: ignore[type-arg]
    best = m["best_metric"]
    return {"method": m["method"], "train_rows": m["train_rows"], "epochs_run": m["epochs_run"],
            "best_validation": {best["name"]: round(best["value"], 4), "epoch": best["epoch"]},
            "test_accuracy": round(test_acc, 4) if test_acc is not None else None,
            "epsilon": m["privacy"].get("epsilon"), "delta": m["privacy"].get("delta"),
            "noise_multiplier": m["privacy"].get("noise_multiplier"),
            "minutes": m["wall_minutes"], "train_seconds": m["seconds"],
            "samples_per_second": m["samples_per_second"], "trainable": m["parameters"]["trainable"],
            "history": m["history"], "subset_rows": rows}


def _save(path: Path, results: dict) -> None:  # type: ignore[type-arg]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
    path.with_suffix(".md").write_text(markdown(results))


def markdown(results: dict) -> str:  # type: ignore[type-arg]
    lines = ["| run | data | trainable params | epochs | validation (best) | SST-2 test acc. | ε (δ) | minutes | samples/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        (metric, value), = [(k, v) for k, v in r["best_validation"].items() if k != "epoch"]
        eps = f"{r['epsilon']:.2f} ({r['delta']:.1e})" if r.get("epsilon") is not None else "—"
        acc = f"{r['test_accuracy']:.3f}" if r.get("test_accuracy") is not None else "—"
        lines.append(f"| {name} | {r['train_rows']:,} rows | {r['trainable']:,} | {r['epochs_run']} | {metric} "
                     f"{value:.3f} | {acc} | {eps} | {r['minutes']} | {r['samples_per_second']} |")
    return "\n".join(lines) + "\n"


def _print(results: dict) -> None:  # type: ignore[type-arg]
    t = Table(title="train stage on real data (default model, CPU)")
    for c in ("run", "rows", "epochs", "validation", "test acc", "ε", "minutes", "samples/s"):
        t.add_column(c)
    for name, r in results.items():
        t.add_row(name, str(r["train_rows"]), str(r["epochs_run"]), json.dumps(r["best_validation"]),
                  str(r["test_accuracy"]), str(r.get("epsilon")), str(r["minutes"]), str(r["samples_per_second"]))
    console.print(t)


if __name__ == "__main__":
    main()
