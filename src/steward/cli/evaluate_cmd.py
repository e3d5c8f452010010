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


def _is_chat(run_dir: Path) -> bool:
    """Whether the run's trained model is a chat model (its train manifest says so)."""
    import json

    manifest = run_dir / "train" / "manifest.json"
    try:
        return json.loads(manifest.read_text()).get("task") == "chat"
    except (OSError, ValueError):
        return False


def _overrides(run_dir: Path | None, probes: str | None, max_rows: int | None, split: str | None, *,
               chat: bool = False, quick: bool = False) -> dict[str, Any]:
    from steward.evaluate.config import CHAT_QUICK, QUICK_BOOTSTRAP

    ev: dict[str, Any] = {}
    if quick and chat:
        ev.update(bootstrap=QUICK_BOOTSTRAP, chat=dict(CHAT_QUICK))
    if probes:
        names = [p.strip() for p in probes.split(",") if p.strip()]
        if chat:  # a chat run's probes are the generative ones (evaluate.chat.probes)
            ev.setdefault("chat", {})["probes"] = names
        else:
            ev["probes"] = names
    if max_rows is not None:
        ev["max_rows"] = max_rows
    if split is not None:
        ev["split"] = split
    out: dict[str, Any] = {"evaluate": ev} if ev else {}
    if run_dir is not None:
        out["run_dir"] = str(run_dir)
    return out


def chat_summary_table(sc: dict[str, Any]) -> Table:
    """The generative scorecard's headline figures: fine-tuned, base and the difference (per-group figures
    are in scorecard.json and the report)."""

    def cell(v: dict[str, Any] | None) -> str:
        if not v or v.get("value") is None:
            return "—"
        ci = f" ({v['ci'][0]:.3g} – {v['ci'][1]:.3g})" if v.get("ci") else ""
        return f"{v['value']:.4g}{ci}"

    t = table(f"evaluate stage (chat) — {sc['rows']} held-out conversations", "probe", "figure", "fine-tuned",
              "base", "difference", right={"fine-tuned", "base", "difference"})
    for name, p in sc["probes"].items():
        if p.get("skipped"):
            t.add_row(name, "—", f"skipped: {p['skipped']}", "", "")
            continue
        for fig, v in p["figures"].items():
            if "." not in fig:
                t.add_row(name, fig, cell(v), cell((p.get("base") or {}).get(fig)), cell((p.get("delta") or {}).get(fig)))
    return t


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
    probes: Annotated[str | None, typer.Option(help="Comma-separated probes to run (default: all; a chat run's are "
                                                    "quality, safety, bias, counterfactual, toxicity, injection, privacy, resources).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="A chat run's scorecard at CI sample sizes (minutes, wider "
                                                        "intervals): evaluate.config.CHAT_QUICK.")] = False,
    max_rows: Annotated[int | None, typer.Option(help="Evaluate on at most this many rows." + dflt("evaluate.max_rows"))] = None,
    split: Annotated[str | None, typer.Option(help="test or validation." + dflt("evaluate.split"))] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the scorecard as JSON.")] = False,
) -> None:
    """Score the trained model: performance, fairness, counterfactual fairness, robustness, calibration,
    explainability, privacy leakage and resources; judge the release gates. A chat model (a fine-tuned causal
    LM) gets the generative scorecard instead — quality, harmful compliance and over-refusal (XSTest), social
    bias (CrowS-Pairs, BBQ), counterfactual generation, toxicity, privacy (canaries, PII regurgitation,
    membership inference), resources — each also on its base model, with the difference.

    Writes RUN_DIR/evaluate/{scorecard.json,report.html,MODEL_CARD.md} and one ledger event. Exits 1 when a
    gate fails, naming each failed gate with its measured value.
    """
    import steward.gateway.evaluation  # noqa: F401  (registers the chat "injection" probe)
    from steward.evaluate import run

    first = load_config(config, _overrides(run_dir, None, None, None))
    chat = _is_chat(Path(first.run_dir))
    cfg = load_config(config, _overrides(run_dir, probes, max_rows, split, chat=chat, quick=quick))
    existing_run_dir(cfg)
    if quick and not chat:
        err_console.print("note: --quick sets a chat run's sample sizes; this run's model is a classifier (use "
                          "--max-rows to score fewer rows)")
    result = run(cfg, progress=not json_out)
    if json_out:
        print_json(result.scorecard)
    else:
        sc = result.scorecard
        console.print(chat_summary_table(sc) if sc.get("task") == "chat" else summary_table(sc))
        comp = sc.get("composite")
        if comp:
            console.print(f"composite {comp['value']:.4g} = {comp['formula']}")
        for g in result.gates:
            console.print(f"[{'green' if g.passed else 'red'}]{g.message}[/]", highlight=False)
        console.print(f"scorecard: {result.out_dir / 'scorecard.json'}")
        if cfg.evaluate.report:
            console.print(f"report: {result.out_dir / 'report.html'}")
    if not result.gates:
        err_console.print("note: no release gates configured (evaluate.gates, or evaluate.chat.gates for a chat "
                          "model); nothing can block this release")
    if not result.passed:
        err_console.print("[bold red]release gates failed:[/] " + ", ".join(g.gate for g in result.failed),
                          highlight=False)
        raise typer.Exit(EXIT_FAILED)
