"""``steward data``: run the data stage from a config file and/or flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from steward.cli.common import console, handle_errors, print_json
from steward.config.loader import load_config


def _overrides(**flags: Any) -> dict[str, Any]:
    """CLI flags that were given, as a nested config mapping (flags override the file)."""
    data: dict[str, Any] = {}

    def put(section: str, key: str, value: Any) -> None:
        if value is not None:
            data.setdefault(section, {})[key] = value

    put("input", "path", str(flags["input_path"]) if flags["input_path"] else None)
    put("input", "text_column", flags["text_column"])
    put("input", "label_column", flags["label_column"])
    put("input", "group_columns", flags["group_column"] or None)
    put("input", "labels", [s.strip() for s in flags["labels"].split(",")] if flags["labels"] else None)
    put("input", "task", flags["task"])
    put("input", "format", flags["format"])
    put("split", "seed", flags["seed"])
    put("split", "column", flags["split_column"])
    if flags["regex_only"]:
        put("pii", "ner", False)
    if flags["no_pii"]:
        put("pii", "enabled", False)
    out: dict[str, Any] = {"data": data} if data else {}
    if flags["run_dir"] is not None:
        out["run_dir"] = str(flags["run_dir"])
    return out


def summary_table(summary: dict[str, Any]) -> Table:
    t = Table(title="data stage", show_header=True)
    t.add_column("measure")
    t.add_column("value", justify="right")
    for key in ("rows_in", "rows_kept", "rows_quarantined", "rows_changed"):
        t.add_row(key, str(summary[key]))
    t.add_row("invariant in = kept + quarantined", "holds" if summary["invariant_ok"] else "[red]BROKEN[/]")
    for reason, n in summary["quarantine_by_reason"].items():
        t.add_row(f"  quarantined: {reason}", str(n))
    for etype, n in summary["pii_by_type"].items():
        t.add_row(f"  PII: {etype}", str(n))
    dup = summary.get("duplicates") or {}
    if dup:
        t.add_row("duplicate label conflicts", str(dup["label_conflicts"]))
    t.add_row("leakage (val/test near-dup of train)", str(summary["leakage"]["found"]))
    assoc = summary["balance"].get("term_label_associations") or []
    for a in assoc[:3]:
        t.add_row(f"  term '{a['term']}' -> {a['label']}", f"P={a['p_label_given_term']} vs {a['p_label']}")
    for split, n in summary["splits"].items():
        t.add_row(f"split {split}", str(n))
    t.add_row("rows/second", str(summary["rows_per_second"]))
    return t


@handle_errors
def data(
    input_path: Annotated[Path | None, typer.Argument(help="Input file (CSV, TSV, JSONL, Parquet, CoNLL).")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="steward.yaml (flags override it).")] = None,
    text_column: Annotated[str | None, typer.Option(help="Column holding the text.")] = None,
    label_column: Annotated[str | None, typer.Option(help="Column holding the label.")] = None,
    group_column: Annotated[list[str] | None, typer.Option(help="Sensitive-attribute column (repeatable).")] = None,
    labels: Annotated[str | None, typer.Option(help="Declared label set, comma-separated.")] = None,
    task: Annotated[str | None, typer.Option(help="classification or ner.")] = None,
    format: Annotated[str | None, typer.Option(help="auto, csv, tsv, jsonl, parquet or conll.")] = None,
    split_column: Annotated[str | None, typer.Option(help="Use this column's train/validation/test split.")] = None,
    seed: Annotated[int | None, typer.Option(help="Split seed.")] = None,
    regex_only: Annotated[bool, typer.Option("--regex-only", help="PII: patterns only, no NER (fast).")] = False,
    no_pii: Annotated[bool, typer.Option("--no-pii", help="Skip PII detection (not recommended).")] = False,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", "-r", help="Run folder.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON instead of a table.")] = False,
) -> None:
    """Clean, de-duplicate, de-identify, screen, balance and split a labelled text dataset.

    Writes RUN_DIR/data/{train,validation,test}.parquet, quarantine.parquet, summary.json, data_card.md and
    appends one event to RUN_DIR/ledger.jsonl.
    """
    from steward.data import run

    cfg = load_config(config, _overrides(
        input_path=input_path, text_column=text_column, label_column=label_column, group_column=group_column,
        labels=labels, task=task, format=format, seed=seed, split_column=split_column, regex_only=regex_only,
        no_pii=no_pii, run_dir=run_dir))
    result = run(cfg, progress=not json_out)
    if json_out:
        print_json(result.summary)
        return
    console.print(summary_table(result.summary))
    console.print(f"outputs: {result.out_dir}/  (summary.json, data_card.md, quarantine.parquet)")
