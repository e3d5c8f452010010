"""``steward data``: run the data stage from a config file and/or flags; ``steward data quarantine`` lists
the rows it removed or changed, with their reasons; ``steward data names-model`` builds the PII names model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.table import Table
from typer.core import TyperGroup

from steward.cli.common import console, dflt, err_console, handle_errors, print_json, table
from steward.config.loader import load_config


class _RunByDefault(TyperGroup):
    """``steward data FILE`` runs the stage; ``steward data quarantine`` is a subcommand.

    Click has no default subcommand (the click-default-group package does only this); a group that
    prepends ``run`` when the first word is not a subcommand keeps ``steward data FILE`` working.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # A lone word naming a file here is the input (`steward data quarantine` on a file of that name);
        # with options after it, it is the subcommand. `steward data run FILE` is never ambiguous.
        lone_file = len(args) == 1 and args[0] != "run" and Path(args[0]).is_file()
        if not args or args[0] not in self.commands or lone_file:
            args = ["run", *args]  # `steward data --help` shows the stage's options (its help names quarantine)
        return super().parse_args(ctx, args)


data_app = typer.Typer(cls=_RunByDefault, context_settings={"help_option_names": ["-h", "--help"]},
                       help="Clean, de-duplicate, de-identify, screen, balance and split a labelled text "
                            "dataset (`steward data FILE`), and list what it removed (`steward data quarantine`).")


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
    put("input", "encoding", flags["encoding"])
    put("split", "seed", flags["seed"])
    put("split", "column", flags["split_column"])
    if flags["regex_only"]:
        put("pii", "ner", False)
    if flags["no_pii"]:
        put("pii", "enabled", False)
    if flags["allow_loss"]:
        put("loss", "allow", True)
    out: dict[str, Any] = {"data": data} if data else {}
    if flags["run_dir"] is not None:
        out["run_dir"] = str(flags["run_dir"])
    return out


def summary_table(summary: dict[str, Any]) -> Table:
    t = table("data stage", "measure", "value", right={"value"})
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


@data_app.command("run")
@handle_errors
def data(
    input_path: Annotated[Path | None, typer.Argument(help="Input file (CSV, TSV, JSONL, Parquet, CoNLL).")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="steward.yaml (flags override it).")] = None,
    text_column: Annotated[str | None, typer.Option(help="Column holding the text." + dflt("data.input.text_column"))] = None,
    label_column: Annotated[str | None, typer.Option(help="Column holding the label." + dflt("data.input.label_column"))] = None,
    group_column: Annotated[list[str] | None, typer.Option(help="Sensitive-attribute column (repeatable).")] = None,
    labels: Annotated[str | None, typer.Option(help="Declared label set, comma-separated.")] = None,
    task: Annotated[str | None, typer.Option(help="classification, ner or chat (conversations)." + dflt("data.input.task"))] = None,
    format: Annotated[str | None, typer.Option(help="auto, csv, tsv, jsonl, parquet or conll." + dflt("data.input.format"))] = None,
    encoding: Annotated[str | None, typer.Option(
        help="The file's encoding, e.g. latin-1; auto: UTF-8 if it decodes, else detected." + dflt(
            "data.input.encoding"))] = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace a run folder's data stage that came from another input file (its train, "
                            "evaluate and compress outputs still describe the old data until rerun).")] = False,
    allow_loss: Annotated[bool, typer.Option(
        "--allow-loss", help="Warn instead of failing when one reason quarantines more than data.loss.max_share "
                             "of the rows, or a label loses every row.")] = False,
    split_column: Annotated[str | None, typer.Option(help="Use this column's train/validation/test split.")] = None,
    seed: Annotated[int | None, typer.Option(help="Split seed." + dflt("data.split.seed"))] = None,
    regex_only: Annotated[bool, typer.Option("--regex-only", help="PII: patterns only, no NER (fast).")] = False,
    no_pii: Annotated[bool, typer.Option("--no-pii", help="Skip PII detection (not recommended).")] = False,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", "-r", help="Run folder." + dflt("run_dir"))] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON instead of a table.")] = False,
) -> None:
    """Clean, de-duplicate, de-identify, screen, balance and split a labelled text dataset.

    Writes RUN_DIR/data/{train,validation,test}.parquet, quarantine.parquet, summary.json, data_card.md and
    appends one event to RUN_DIR/ledger.jsonl. `steward data quarantine --run-dir DIR` lists every removed or
    changed row with its reason and fix (`steward data quarantine --help`).
    """
    from steward.data import run

    cfg = load_config(config, _overrides(
        input_path=input_path, text_column=text_column, label_column=label_column, group_column=group_column,
        labels=labels, task=task, format=format, encoding=encoding, seed=seed, split_column=split_column,
        regex_only=regex_only, no_pii=no_pii, allow_loss=allow_loss, run_dir=run_dir))
    result = run(cfg, progress=not json_out, overwrite=overwrite)
    for f in result.summary["loss_guard"]["findings"]:
        err_console.print(f"[bold yellow]warning: data lost (--allow-loss):[/] {f['message']}", highlight=False)
    if json_out:
        print_json(result.summary)
        return
    if result.summary.get("encoding_detected"):
        console.print(f"encoding: {result.summary['encoding']} (detected; the file is not UTF-8)")
    console.print(summary_table(result.summary))
    console.print(f"outputs: {result.out_dir}/  (summary.json, data_card.md, quarantine.parquet)")


@data_app.command("quarantine")
@handle_errors
def quarantine(
    run_dir: Annotated[Path, typer.Option("--run-dir", "-r", help="Run folder the data stage ran in.")],
    reason: Annotated[str | None, typer.Option(help="Only rows quarantined for this reason.")] = None,
    limit: Annotated[int, typer.Option(help="Print at most this many rows (0: all).")] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="Print every matching row as JSON.")] = False,
) -> None:
    """List the rows the data stage removed or changed: row id, line, reason, step, detail and fix.

    Reads RUN_DIR/data/quarantine.parquet, or the failed attempt's RUN_DIR/data_failed/ when the last run
    stopped on the loss guard. Rows hold no text, only the sha256 of the original text.
    """
    from steward.data.quarantine import read_report

    report = read_report(run_dir, reason)
    if json_out:
        print_json(report)
        return
    console.print(f"{report['source']}: {report['total']} records"
                  + (f" for reason {reason!r}" if reason else "") + f" — by reason: {report['by_reason']}",
                  highlight=False)
    rows = report["rows"] if limit == 0 else report["rows"][:limit]
    t = table("quarantine", "row", "line", "reason", "step", "action", "detail")
    for r in rows:
        t.add_row(str(r["row_id"]), str(r["line"] or ""), r["reason"], r["stage"], r["action"], r["detail"])
    console.print(t)
    if len(rows) < report["total"]:
        console.print(f"… {report['total'] - len(rows)} more; --limit 0 prints all, --json prints them as JSON")
    for r, fix in sorted({(r["reason"], r["fix"]) for r in report["rows"] if r["fix"]}):
        console.print(f"fix for {r}: {fix}", highlight=False, soft_wrap=True)


@data_app.command("names-model")
@handle_errors
def names_model(
    force: Annotated[bool, typer.Option("--force", help="Build again even if a cached model matches.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the model's record as JSON.")] = False,
) -> None:
    """Build (once) and show the built-in PII names model: spaCy's small English NER fine-tuned on generated
    PII text, cached under $STEWARD_CACHE (default ~/.cache/steward) and checked by sha256 when loaded.

    The data stage (data.pii.ner_model: builtin, the default) builds it on first use; this builds it ahead.
    """
    from steward.data.pii import names

    info = names.build(progress=not json_out, force=force) if force else names.ensure(progress=not json_out)
    if json_out:
        print_json(info.to_dict())
        return
    t = table("built-in PII names model", "field", "value")
    for k, v in (("name", info.name), ("folder", info.path), ("key", info.key), ("base model", info.base_model),
                 ("training texts", info.examples), ("loss per epoch", ", ".join(map(str, info.losses))),
                 ("files checked", len(info.files_sha256))):
        t.add_row(k, str(v))
    console.print(t)


@data_app.command("keygen")
@handle_errors
def keygen(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the key (mode 0600); outside any run "
                                                         "folder.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Make a key for encrypting a run's data files at rest (data.encryption.enabled). Point $STEWARD_DATA_KEY
    at it on every machine that runs the run's stages or services (default without it:
    $STEWARD_HOME/data-at-rest.key, made on first use)."""
    from steward.errors import ConfigError
    from steward.keyfile import write_random_key

    if out.exists():
        raise ConfigError(f"--out: {out} exists; a data key is never overwritten (files encrypted under it could no "
                          "longer be read). Fix: choose another path")
    path = write_random_key(out)
    if json_out:
        print_json({"data_key": str(path)})
        return
    console.print(f"wrote {path}: keep it secret, apart from the run folder; then export STEWARD_DATA_KEY={path}",
                  highlight=False)
