"""Federated fine-tuning on real data: SST-2 dealt out to sites non-IID by label, through `steward federated`.

Run: `make bench-federated` (or `.venv/bin/python bench/bench_federated.py --rows 4000 --rounds 3`). Prints a
table and writes bench/results/federated_bench.{json,md}. Every figure is from this run:

- sites: `--rows` SST-2 training sentences (seeded sample of train.tsv) dealt out to `--sites` sites by a
  Dirichlet(α) draw per label (the per-site label mix is printed); each site's data stage splits its rows
  80/10/10 into train / validation / test;
- federated: FedAvg, FedProx, FedAvg with SecAgg+, FedAvg with central DP at ε = `--epsilon` (site level),
  `--rounds` rounds of one local epoch, the default model (all-MiniLM-L6-v2) with the default LoRA;
- centralised: the train stage on the union of the sites' training splits, `--rounds` epochs (the same
  number of passes over the data), the same model, LoRA and learning rate;
- local only: each site's model trained on its own training split alone, `--rounds` epochs;
- accuracy on GLUE's labelled dev set (872 sentences, never trained on); each site's own test split for the
  per-site comparison; bytes per site per round (the adapter) against the whole model; rounds to reach 95 %
  of the final accuracy; seconds per round.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LABELS = ["negative", "positive"]
console = Console(width=160)
DATA = {"quality": {"min_chars": 1, "min_alpha_ratio": 0.0}, "pii": {"ner": False}, "dedup": {"near": False},
        "screen": {"enabled": False}, "split": {"validation": 0.1, "test": 0.1}}


def deal_out(rows: int, sites: int, alpha: float, seed: int, root: Path) -> tuple[list[Path], list[dict[str, int]]]:
    """SST-2 sentences dealt out to ``sites`` CSV files: for each label, a Dirichlet(α) share per site."""
    train = pd.read_csv(SHARED / "sst2" / "train.tsv", sep="\t", quoting=3, dtype=str)
    train = train.sample(n=rows, random_state=seed).reset_index(drop=True)
    train["label"] = train["label"].map({"0": "negative", "1": "positive"})
    rng = np.random.default_rng(seed)
    owner = np.empty(len(train), dtype=int)
    for lbl in LABELS:
        idx = np.flatnonzero(train["label"].to_numpy() == lbl)
        rng.shuffle(idx)
        cuts = (np.cumsum(rng.dirichlet([alpha] * sites)) * len(idx)).astype(int)[:-1]
        for k, part in enumerate(np.split(idx, cuts)):
            owner[part] = k
    files, mixes = [], []
    for k in range(sites):
        part = train[owner == k].rename(columns={"sentence": "text"})
        path = root / f"site{k}.csv"
        part.to_csv(path, index=False)
        files.append(path)
        mixes.append({lbl: int((part["label"] == lbl).sum()) for lbl in LABELS})
    return files, mixes


LOCAL: dict[str, Any] = {}  # train settings for every site's local round (--local-steps, --lr)


def federation_cfg(run_dir: Path, files: list[Path], rounds: int, **federated: Any):  # type: ignore[no-untyped-def]
    from steward.config import parse_federation

    return parse_federation({
        "run_dir": str(run_dir), "data": DATA,
        "federated": {"sites": [{"name": f"site-{k}", "data": {"input": {"path": str(p)}}} for k, p in enumerate(files)],
                      "rounds": rounds, "local_epochs": 1, "min_sites": len(files), **federated},
        "train": {"labels": LABELS, "mlflow": False, "max_length": 64, **LOCAL}})


def dev_set() -> pd.DataFrame:
    dev = pd.read_csv(SHARED / "sst2" / "test.tsv", sep="\t", quoting=3, dtype=str)  # GLUE's labelled dev set
    return dev.assign(label=dev["label"].map({"0": "negative", "1": "positive"}))


def accuracy(model: Any, tokenizer: Any, frame: pd.DataFrame, text: str = "sentence") -> float:
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(frame), 64):
            part = frame.iloc[i:i + 64]
            enc = tokenizer(part[text].tolist(), padding=True, truncation=True, max_length=64, return_tensors="pt")
            pred = model(**enc).logits.argmax(-1).tolist()
            correct += sum(int(LABELS[p] == lbl) for p, lbl in zip(pred, part["label"], strict=True))
    return correct / len(frame)


def per_round_dev(run_dir: Path, cfg: Any, dev: pd.DataFrame) -> list[float]:
    """GLUE-dev accuracy of the global model after each round, from the aggregates the ledger names."""
    from steward.federated.params import set_arrays
    from steward.train.data import TrainData
    from steward.train.stage import prepare_model

    empty = pd.DataFrame({"text": [], "label": []})
    prepared = prepare_model(cfg.train, TrainData("classification", False, LABELS, empty, empty, {}))
    events = [json.loads(line) for line in (run_dir / "ledger.jsonl").read_text().splitlines()]
    out = []
    for e in events:
        if e["stage"] == "federated_round" and e["outputs"]:
            with np.load(run_dir / e["outputs"][0]["path"]) as z:
                set_arrays(prepared.model, [z[f"arr_{i}"] for i in range(len(z.files))])
            out.append(accuracy(prepared.model, prepared.tokenizer, dev))
    return out


def run_federated(name: str, root: Path, files: list[Path], rounds: int, dev: pd.DataFrame,
                  **federated: Any) -> dict[str, Any]:
    from steward.federated import run

    run_dir = root / name
    shutil.rmtree(run_dir, ignore_errors=True)
    cfg = federation_cfg(run_dir, files, rounds, **federated)
    t0 = time.perf_counter()
    result = run(cfg)
    seconds = time.perf_counter() - t0
    fed = result.manifest["federation"]
    curve = per_round_dev(run_dir, cfg, dev)
    final = curve[-1]
    to_95 = next((i + 1 for i, a in enumerate(curve) if a >= 0.95 * final), None)
    per_site = {s: v["accuracy"] for s, v in fed["history"][-1]["scores"].items()}
    return {"dev_accuracy": round(final, 4), "dev_curve": [round(a, 4) for a in curve], "rounds_to_95pct": to_95,
            "seconds": round(seconds, 1), "seconds_per_round": [h["seconds"] for h in fed["history"]],
            "bytes_per_site_per_round": fed["history"][-1]["bytes_per_site"], "site_test_accuracy": per_site,
            "epsilon": result.manifest["privacy"].get("epsilon"), "run_dir": str(run_dir)}


def centralised(root: Path, fed_dir: Path, rounds: int, dev: pd.DataFrame) -> dict[str, Any]:
    """The train stage on the union of the sites' training splits (as the federated run's data stages cut them)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from steward.config import parse_config
    from steward.data import run as run_data
    from steward.train import run as run_train

    union = pd.concat([pd.read_parquet(p) for p in sorted((fed_dir / "sites").glob("*/data/train.parquet"))])
    run_dir = root / "centralised"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    union[["text", "label"]].to_csv(run_dir / "union.csv", index=False)
    cfg = parse_config({"run_dir": str(run_dir), "data": {**DATA, "input": {"path": str(run_dir / "union.csv")},
                                                          "split": {"validation": 0.1, "test": 0.0}},
                        "train": {"labels": LABELS, "mlflow": False, "max_length": 64, "epochs": rounds,
                                  "early_stopping": {"patience": rounds + 1}}})
    run_data(cfg)
    t0 = time.perf_counter()
    run_train(cfg)
    seconds = time.perf_counter() - t0
    model = AutoModelForSequenceClassification.from_pretrained(run_dir / "train" / "model")
    tok = AutoTokenizer.from_pretrained(run_dir / "train" / "model")
    return {"dev_accuracy": round(accuracy(model, tok, dev), 4), "train_rows": len(union), "seconds": round(seconds, 1)}


def local_only(root: Path, fed_dir: Path, rounds: int, dev: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Each site's model on its own training split alone: its own test split and GLUE-dev."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from steward.config import parse_config
    from steward.train import run as run_train

    out = {}
    for site in sorted((fed_dir / "sites").iterdir()):
        run_dir = root / "local" / site.name
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        shutil.copytree(site / "data", run_dir / "data", symlinks=True)
        cfg = parse_config({"run_dir": str(run_dir), "train": {
            "mlflow": False, "max_length": 64, "epochs": rounds, "early_stopping": {"patience": rounds + 1}}})
        try:
            run_train(cfg)
        except Exception as exc:  # noqa: BLE001 — a one-label site cannot train a classifier alone
            out[site.name] = {"error": f"{type(exc).__name__}: {exc}"[:160]}
            continue
        model = AutoModelForSequenceClassification.from_pretrained(run_dir / "train" / "model")
        tok = AutoTokenizer.from_pretrained(run_dir / "train" / "model")
        test = pd.read_parquet(site / "data" / "test.parquet")
        out[site.name] = {"site_test_accuracy": round(accuracy(model, tok, test, text="text"), 4),
                          "dev_accuracy": round(accuracy(model, tok, dev), 4)}
    return out


def full_model_bytes() -> int:
    from steward.train.config import TrainConfig
    from steward.train.data import TrainData
    from steward.train.stage import prepare_model

    empty = pd.DataFrame({"text": [], "label": []})
    m = prepare_model(TrainConfig(labels=LABELS, method="full"), TrainData("classification", False, LABELS, empty,
                                                                           empty, {})).model
    return int(sum(p.numel() * 4 for p in m.parameters()))


def dp_noise_for(epsilon: float, rounds: int, delta: float) -> float:
    """The smallest noise multiplier (to 0.01) whose ε after ``rounds`` is at most ``epsilon``."""
    from steward.federated.privacy import central_epsilon

    z = 0.3
    while central_epsilon(z, rounds, delta) > epsilon:
        z = round(z + 0.01, 2)
    return z


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--sites", type=int, default=4)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epsilon", type=float, default=8.0)
    ap.add_argument("--dp-clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--local-steps", type=int, default=None, help="at most this many batches per site per round")
    ap.add_argument("--lr", type=float, default=None, help="local learning rate (default: the train stage's)")
    ap.add_argument("--mu", type=float, default=0.01, help="FedProx's proximal μ")
    ap.add_argument("--only", default="fedavg,fedprox,secagg,dp,central,local")
    ap.add_argument("--work", type=Path, default=Path("/tmp/steward_bench_federated"))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "federated_bench.json")
    args = ap.parse_args()
    only = set(args.only.split(","))
    if args.local_steps:
        LOCAL["max_steps"] = args.local_steps
    if args.lr:
        LOCAL["learning_rate"] = args.lr
    args.work.mkdir(parents=True, exist_ok=True)
    files, mixes = deal_out(args.rows, args.sites, args.alpha, args.seed, args.work)
    dev = dev_set()
    res: dict[str, Any] = {"rows": args.rows, "sites": args.sites, "alpha": args.alpha, "rounds": args.rounds,
                           "local": dict(LOCAL), "mu": args.mu,
                           "label_mix": {f"site-{k}": m for k, m in enumerate(mixes)}, "runs": {}}
    console.print(f"label mix per site (Dirichlet α = {args.alpha}): {res['label_mix']}")
    z = dp_noise_for(args.epsilon, args.rounds, 1e-5)
    plans = {"fedavg": {}, "fedprox": {"strategy": {"name": "fedprox", "proximal_mu": args.mu}},
             "secagg": {"secure_aggregation": {"enabled": True, "max_weight": float(args.rows)}},
             "dp": {"central_dp": {"enabled": True, "noise_multiplier": z, "clipping_norm": args.dp_clip}}}
    for name, extra in plans.items():
        if name in only:
            res["runs"][name] = run_federated(name, args.work, files, args.rounds, dev, **extra)
            _save(args.out, res)
    fed_dir = args.work / "fedavg"
    if "central" in only:
        res["centralised"] = centralised(args.work, fed_dir, args.rounds, dev)
    if "local" in only:
        res["local_only"] = local_only(args.work, fed_dir, args.rounds, dev)
    res["full_model_bytes"] = full_model_bytes()
    res["dp_noise_multiplier"] = z
    _save(args.out, res)
    _print(res)


def _save(path: Path, res: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=2))
    path.with_suffix(".md").write_text(markdown(res))


def markdown(res: dict[str, Any]) -> str:
    cen = res.get("centralised", {}).get("dev_accuracy")
    lines = [f"SST-2, {res['rows']:,} training sentences dealt out to {res['sites']} sites (Dirichlet α = "
             f"{res['alpha']} per label; label mix {res['label_mix']}), {res['rounds']} rounds of one local epoch "
             f"(local settings {res.get('local') or 'the defaults'}, FedProx μ {res.get('mu')}), all-MiniLM-L6-v2 + "
             f"default LoRA; accuracy on GLUE-dev (872).", "",
             "| run | GLUE-dev accuracy | gap to centralised (points) | accuracy per round | rounds to 95 % of final | "
             "seconds per round | bytes per site per round | ε |", "|---|---:|---:|---|---:|---|---:|---:|"]
    for name, r in res["runs"].items():
        gap = f"{100 * (cen - r['dev_accuracy']):+.1f}" if cen is not None else "—"
        lines.append(f"| {name} | {r['dev_accuracy']:.4f} | {gap} | {r['dev_curve']} | {r['rounds_to_95pct']} | "
                     f"{r['seconds_per_round']} | {r['bytes_per_site_per_round']:,} | {r['epsilon'] or '—'} |")
    if cen is not None:
        c = res["centralised"]
        lines.append(f"| centralised ({c['train_rows']:,} rows, {res['rounds']} epochs) | {cen:.4f} | 0 | — | — | "
                     f"{c['seconds']} s in all | — | — |")
    lines.append(f"\nThe whole model: {res.get('full_model_bytes', 0):,} bytes.")
    if "local_only" in res and "fedavg" in res["runs"]:
        lines += ["", "| site | label mix | global (FedAvg) on its test split | its own model alone | its own on GLUE-dev |",
                  "|---|---|---:|---:|---:|"]
        glob = res["runs"]["fedavg"]["site_test_accuracy"]
        for site, r in res["local_only"].items():
            mix = res["label_mix"].get(site, {})
            if "error" in r:
                lines.append(f"| {site} | {mix} | {glob.get(site, 0):.4f} | cannot train alone: {r['error']} | — |")
            else:
                lines.append(f"| {site} | {mix} | {glob.get(site, 0):.4f} | {r['site_test_accuracy']:.4f} | "
                             f"{r['dev_accuracy']:.4f} |")
    return "\n".join(lines) + "\n"


def _print(res: dict[str, Any]) -> None:
    t = Table(title="federated SST-2")
    for col in ("run", "GLUE-dev accuracy", "per round", "seconds per round", "ε"):
        t.add_column(col)
    for name, r in res["runs"].items():
        t.add_row(name, f"{r['dev_accuracy']:.4f}", str(r["dev_curve"]), str(r["seconds_per_round"]),
                  str(r["epsilon"] or "—"))
    if "centralised" in res:
        t.add_row("centralised", f"{res['centralised']['dev_accuracy']:.4f}", "—", "—", "—")
    console.print(t)
    console.print(markdown(res))


if __name__ == "__main__":
    main()
