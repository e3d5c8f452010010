"""``steward train``: fine-tune on the data stage's splits."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from steward.cli.common import console, dflt, existing_run_dir, handle_errors, print_json, table
from steward.config.loader import load_config


def _overrides(**f: Any) -> dict[str, Any]:
    train: dict[str, Any] = {}
    for key in ("model", "method", "epochs", "max_train_samples", "batch_size", "learning_rate", "seed"):
        if f[key] is not None:
            train[key] = f[key]
    if f["trust_pickle"]:
        train["trust_pickle"] = True
    if f["dp_epsilon"] is not None:
        train["privacy"] = {"enabled": True, "target_epsilon": f["dp_epsilon"]}
    if f["no_mlflow"]:
        train["mlflow"] = False
    out: dict[str, Any] = {"train": train} if train else {}
    if f["run_dir"] is not None:
        out["run_dir"] = str(f["run_dir"])
    return out


def summary_table(m: dict[str, Any]) -> Table:
    t = table("train stage", "measure", "value", right={"value"})
    t.add_row("base model", str(m["base_model"]["id"]))
    t.add_row("method", m["method"])
    t.add_row("parameters (trainable / total)", f"{m['parameters']['trainable']:,} / {m['parameters']['total']:,}")
    t.add_row("train / validation rows", f"{m['train_rows']} / {m['validation_rows']}")
    for h in m["history"]:
        extra = f"perplexity {h['perplexity']:.3f}" if "perplexity" in h else f"loss {h['loss']:.4f}"
        t.add_row(f"epoch {h['epoch']}", f"{m['best_metric']['name']} {h[m['best_metric']['name']]:.4f}  {extra}")
    b = m["best_metric"]
    t.add_row("best", f"{b['name']} {b['value']:.4f} (epoch {b['epoch']})")
    if m["privacy"].get("enabled"):
        p = m["privacy"]
        t.add_row("privacy", f"ε={p['epsilon']} (target {p['target_epsilon']}), δ={p['delta']:.2e}, "
                             f"σ={p['noise_multiplier']:.3f}")
    if m.get("set_aside", {}).get("context_too_long"):
        t.add_row("set aside (longer than max_length)", str(m["set_aside"]["context_too_long"]))
    if m["task"] == "chat":
        t.add_row("seconds / tokens per second", f"{m['seconds']} / {m['tokens_per_second']}")
    else:
        t.add_row("seconds / samples per second", f"{m['seconds']} / {m['samples_per_second']}")
    return t


@handle_errors
def train(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="steward.yaml (flags override it).")] = None,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", "-r", help="Run folder (with data/)." + dflt("run_dir"))] = None,
    model: Annotated[str | None, typer.Option(help="'default', a local model directory or a hub id." + dflt("train.model"))] = None,
    method: Annotated[str | None, typer.Option(help="lora, full, head or prompt." + dflt("train.method"))] = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs." + dflt("train.epochs"))] = None,
    max_train_samples: Annotated[int | None, typer.Option(help="Train on a random subset.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size." + dflt("train.batch_size"))] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Peak learning rate." + dflt("train.learning_rate"))] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (data order, head init, dropout)." + dflt("train.seed"))] = None,
    dp_epsilon: Annotated[float | None, typer.Option(help="Train with DP-SGD to this ε.")] = None,
    trust_pickle: Annotated[bool, typer.Option("--trust-pickle", help="Allow pickle weights.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint.")] = False,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="Do not track to RUN_DIR/mlruns.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Fine-tune a pretrained model on RUN_DIR/data (LoRA, full, head-only or prompt tuning; optionally DP-SGD).

    The data stage's task decides the model: an encoder for classification and NER, a causal LM (default
    SmolLM2-135M-Instruct, answer-only loss) for conversations. Writes RUN_DIR/train/{model,adapter,
    manifest.json,metrics.json,label_map.json}, checkpoints in RUN_DIR/train_checkpoints, MLflow runs in
    RUN_DIR/mlruns, and one ledger event. Several processes: `accelerate launch -m steward.cli.app train …`.
    """
    from steward.train import run

    cfg = load_config(config, _overrides(model=model, method=method, epochs=epochs, max_train_samples=max_train_samples,
                                         batch_size=batch_size, learning_rate=learning_rate, seed=seed,
                                         dp_epsilon=dp_epsilon, trust_pickle=trust_pickle, no_mlflow=no_mlflow,
                                         run_dir=run_dir))
    existing_run_dir(cfg)
    result = run(cfg, resume=resume, progress=not json_out)
    if os.environ.get("RANK", "0") != "0":  # under `accelerate launch` only the main process reports
        return
    if json_out:
        print_json(result.manifest)
        return
    console.print(summary_table(result.manifest))
    console.print(f"model: {result.out_dir / 'model'}   manifest: {result.out_dir / 'manifest.json'}")
