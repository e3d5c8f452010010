"""``steward compress``: smaller and faster models, each re-scored by the evaluate stage; the fastest one
that passes every gate the original passed is chosen (``steward serve`` then serves it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from steward.cli.common import console, dflt, existing_run_dir, handle_errors, print_json, table
from steward.config.loader import load_config


def chat_table(candidates: list[dict[str, Any]]) -> Table:
    """A chat model's candidates: held-out answer loss and perplexity, greedy tokens/s, size."""
    figures = ("MiB", "held-out loss", "perplexity", "tokens/s")
    t = table("compress stage — chat model, on held-out conversations", "candidate", "format", *figures,
              "verdict", right=figures)
    for c in candidates:
        verdict = f"[red]not released: {c['rejected']}[/]" if c.get("rejected") else "[green]released[/]" \
            if c.get("chosen") else "[green]passes[/]"
        name = f"[bold]{c['name']} (chosen)[/]" if c.get("chosen") else c["name"]
        t.add_row(name, str(c["format"]), f"{c['size_bytes'] / 2**20:.1f}", f"{c['held_out_loss']:.4f}",
                  f"{c['perplexity']:.4g}", f"{c['tokens_per_second']:.1f}", verdict)
    return t


def summary_table(candidates: list[dict[str, Any]]) -> Table:
    if candidates and "held_out_loss" in candidates[0]:
        return chat_table(candidates)
    figures = ("MiB", "accuracy", "DP diff.", "attack success", "p95 ms", "texts/s")
    t = table("compress stage — every candidate re-scored", "candidate", "format", *figures, "verdict",
              right=figures)

    def f(v: Any) -> str:
        return "—" if v is None else f"{v:.4g}"

    for c in candidates:
        verdict = f"[red]rejected: {c['rejected']}[/]" if c["rejected"] else "[green]passes[/]"
        name = f"[bold]{c['name']} (chosen)[/]" if c.get("chosen") else c["name"]
        t.add_row(name, str(c["format"]), f"{c['size_bytes'] / 2**20:.1f}", f(c["accuracy"]), f(c["dp_difference"]),
                  f(c["attack_success"]), f(c["latency_ms_p95"]), f(c["throughput_per_s"]), verdict)
    return t


@handle_errors
def compress(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="steward.yaml (flags override it).")] = None,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", "-r", help="Run folder (trained and evaluated)." + dflt("run_dir"))] = None,
    methods: Annotated[str | None, typer.Option(
        help="Comma-separated: dynamic_int8, onnx, onnx_int8, prune_magnitude, prune_heads, prune_ffn, distill.")] = None,
    sparsity: Annotated[float | None, typer.Option(help="Pruning target in (0, 1)." + dflt("compress.prune.sparsity"))] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the Pareto table as JSON.")] = False,
) -> None:
    """Compress the trained model (int8, ONNX, pruning, distillation) and re-score every candidate with the
    evaluate stage's full scorecard and gates.

    Needs RUN_DIR/evaluate/scorecard.json (run `steward evaluate` first). A candidate that fails a gate the
    original passed is rejected with the reason. Writes RUN_DIR/compress/{pareto.json,chosen.json,report.html}
    and candidates/<method>/ (each with its scorecard), and one ledger event; never modifies the trained model.
    """
    import steward.gateway.evaluation  # noqa: F401  (a chat candidate's "injection" probe, as evaluate has it)
    from steward.compress import run

    over: dict[str, Any] = {"run_dir": str(run_dir)} if run_dir is not None else {}
    comp: dict[str, Any] = {}
    if methods:
        comp["methods"] = [m.strip() for m in methods.split(",") if m.strip()]
    if sparsity is not None:
        comp["prune"] = {"sparsity": sparsity}
    if comp:
        over["compress"] = comp
    cfg = load_config(config, over)
    existing_run_dir(cfg)
    result = run(cfg, progress=not json_out)
    if json_out:
        import json

        print_json(json.loads((result.out_dir / "pareto.json").read_text()))
        return
    console.print(summary_table(result.candidates))
    if "held_out_loss" in result.chosen_entry:
        console.print(f"chosen: [bold]{result.chosen}[/] ({result.chosen_entry['path']}); the generative scorecard "
                      f"re-scores it in full")
        console.print(f"pareto: {result.out_dir / 'pareto.json'}")
        return
    console.print(f"chosen: [bold]{result.chosen}[/] ({result.chosen_entry['path']}) — `steward serve` serves it")
    console.print(f"pareto: {result.out_dir / 'pareto.json'}  report: {result.out_dir / 'report.html'}")
