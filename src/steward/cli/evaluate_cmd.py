"""``steward evaluate``: the responsibility scorecard, with release gates that set the exit code."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from steward.cli.common import (
    EXIT_FAILED,
    console,
    dflt,
    err_console,
    existing_run_dir,
    handle_errors,
    print_json,
    table,
)
from steward.config.loader import load_config


def _overrides(run_dir: Path | None, probes: str | None, max_rows: int | None, split: str | None) -> dict[str, Any]:
    ev: dict[str, Any] = {}
    if probes:
        ev["probes"] = [p.strip() for p in probes.split(",") if p.strip()]
    if max_rows is not None:
        ev["max_rows"] = max_rows
    if split is not None:
        ev["split"] = split
    out: dict[str, Any] = {"evaluate": ev} if ev else {}
    if run_dir is not None:
        out["run_dir"] = str(run_dir)
    return out


def summary_table(sc: dict[str, Any]) -> Table:
    t = table(f"evaluate stage — {sc['rows']} rows of {sc['split']}", "probe", "figure", "value", "CI", "note",
              right={"value", "CI"})
    for name, p in sc["probes"].items():
        if p.get("skipped"):
            t.add_row(name, "—", "", "", f"skipped: {p['skipped']}")
        for fig, v in p["figures"].items():
            ci = f"{v['ci'][0]:.4g} – {v['ci'][1]:.4g}" if v.get("ci") else ""
            value = "—" if v["value"] is None else f"{v['value']:.4g}"
            t.add_row(name, fig, f"{value} {v['unit']}".strip(), ci, v.get("note", ""))
    return t


@handle_errors
def evaluate(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="steward.yaml (flags override it).")] = None,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", "-r", help="Run folder (with data/ and train/)." + dflt("run_dir"))] = None,
    probes: Annotated[str | None, typer.Option(help="Comma-separated probes to run (default: all).")] = None,
    max_rows: Annotated[int | None, typer.Option(help="Evaluate on at most this many rows." + dflt("evaluate.max_rows"))] = None,
    split: Annotated[str | None, typer.Option(help="test or validation." + dflt("evaluate.split"))] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the scorecard as JSON.")] = False,
) -> None:
    """Score the trained model: performance, fairness, counterfactual fairness, robustness, calibration,
    explainability, privacy leakage and resources; judge the release gates.

    Writes RUN_DIR/evaluate/{scorecard.json,report.html,MODEL_CARD.md} and one ledger event. Exits 1 when a
    gate fails, naming each failed gate with its measured value.
    """
    from steward.evaluate import run

    cfg = load_config(config, _overrides(run_dir, probes, max_rows, split))
    existing_run_dir(cfg)
    result = run(cfg, progress=not json_out)
    if json_out:
        print_json(result.scorecard)
    else:
        console.print(summary_table(result.scorecard))
        comp = result.scorecard["composite"]
        console.print(f"composite {comp['value']:.4g} = {comp['formula']}")
        for g in result.gates:
            console.print(f"[{'green' if g.passed else 'red'}]{g.message}[/]", highlight=False)
        console.print(f"scorecard: {result.out_dir / 'scorecard.json'}")
        if cfg.evaluate.report:
            console.print(f"report: {result.out_dir / 'report.html'}")
    if not result.gates:
        err_console.print("note: no release gates configured (evaluate.gates); nothing can block this release")
    if not result.passed:
        err_console.print("[bold red]release gates failed:[/] " + ", ".join(g.gate for g in result.failed),
                          highlight=False)
        raise typer.Exit(EXIT_FAILED)
