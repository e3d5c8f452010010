"""``steward federated``: train one model across sites on Flower; each site's rows stay with it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from steward.cli.common import console, handle_errors, print_json, table
from steward.config.loader import load_federation


def rounds_table(fed: dict[str, Any]) -> Table:
    """Each round: the sites averaged, those left out (and why), the global model on every site's own split."""
    t = table(f"federation ({fed['strategy']['name']}, {len(fed['sites'])} sites)", "round", "sites averaged",
              "left out", "accuracy (weighted)", "worst site", "spread", right={"accuracy (weighted)", "spread"})
    for h in fed["history"]:
        left = "; ".join(f"{k}: {v[:60]}" for k, v in h["left_out"].items()) or "—"
        worst = f"{h['accuracy_worst_site']} {h['accuracy_worst']:.4f}" if "accuracy_worst" in h else "—"
        t.add_row(str(h["round"]), ", ".join(h["sites"]) if h["aggregated"] else "none (model kept)", left,
                  f"{h['accuracy_weighted']:.4f}" if "accuracy_weighted" in h else "—", worst,
                  f"{h['accuracy_spread']:.4f}" if "accuracy_spread" in h else "—")
    return t


@handle_errors
def federated(
    config: Annotated[Path, typer.Option("--config", "-c", help="The federation's YAML (sites, rounds, strategy, "
                                                                "train). See docs/federated.md.")],
    run_dir: Annotated[Path | None, typer.Option("--run-dir", "-r", help="The federation's folder (its ledger, "
                                                                         "rounds and final model).")] = None,
    rounds: Annotated[int | None, typer.Option(help="Rounds (overrides federated.rounds).")] = None,
    strategy: Annotated[str | None, typer.Option(help="fedavg, fedprox or fedadam (overrides "
                                                      "federated.strategy.name).")] = None,
    write_app: Annotated[Path | None, typer.Option("--write-app", help="Write the Flower app folder for a "
                                                   "deployment (a SuperLink and SuperNodes; `flwr run DIR "
                                                   "CONNECTION`) and exit.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the federation's manifest as JSON.")] = False,
) -> None:
    """Federated fine-tuning on Flower: every site runs the data stage and local training on its own rows;
    only the trainable tensors (a LoRA adapter by default) travel to the server, which averages them.

    Runs on Flower's simulation engine on this machine (--write-app: as separate processes instead). Writes RUN_DIR/train/ (the global model, as the
    train stage writes it), RUN_DIR/federated/ (each round's aggregate and scores), one ledger event per
    round, and each site's own folder and ledger under RUN_DIR/sites/.
    """
    from steward.federated import run

    overrides: dict[str, Any] = {}
    if run_dir is not None:
        overrides["run_dir"] = str(run_dir)
    fed: dict[str, Any] = {}
    if rounds is not None:
        fed["rounds"] = rounds
    if strategy is not None:
        fed["strategy"] = {"name": strategy}
    if fed:
        overrides["federated"] = fed
    cfg = load_federation(config, overrides)
    if write_app is not None:
        from steward.federated.deploy import write_app as write

        folder = write(cfg, write_app)
        if json_out:
            print_json({"app": str(folder), "run_dir": str(cfg.run_dir)})
        else:
            console.print(f"wrote the Flower app to {folder}; start a SuperLink and one SuperNode per site "
                          f"(--node-config 'site=\"NAME\"'), then: flwr run {folder} CONNECTION")
        return
    result = run(cfg, progress=not json_out)
    if json_out:
        print_json(result.manifest["federation"])
        return
    console.print(rounds_table(result.manifest["federation"]))
    console.print(f"model: {result.out_dir / 'model'}   ledger: {Path(cfg.run_dir) / 'ledger.jsonl'}")
