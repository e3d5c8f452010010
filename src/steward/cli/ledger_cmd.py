"""``steward ledger``: verify and show a run's hash-chained ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from steward.cli.common import (
    EXIT_FAILED,
    console,
    err_console,
    handle_errors,
    print_json,
)

app = typer.Typer(help="Inspect and verify a run's ledger.", no_args_is_help=True)


@app.command()
@handle_errors
def verify(
    run_dir: Annotated[Path, typer.Argument(help="The run folder holding ledger.jsonl.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Exit 0 if every event and artifact is intact; otherwise exit 1 naming the first broken event."""
    from steward.ledger import verify as do_verify

    report = do_verify(run_dir)
    if json_out:
        print_json(report.to_dict())
    elif report.ok:
        console.print(f"[green]ledger intact[/]: {report.events} events, {report.artifacts_checked} artifacts "
                      f"verified, {report.superseded} superseded by later runs")
        for w in report.warnings:
            console.print(f"[yellow]warning:[/] {w}")
    else:
        err_console.print(f"[bold red]ledger broken[/]: {report.error}", highlight=False)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


@app.command()
@handle_errors
def show(
    run_dir: Annotated[Path, typer.Argument(help="The run folder holding ledger.jsonl.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the events as JSON.")] = False,
) -> None:
    """List the run's events: stage, time, outputs, hash."""
    from steward.ledger import Ledger

    events = Ledger(run_dir).events()
    if json_out:
        print_json([{**e.body(), "hash": e.hash} for e in events])
        return
    t = Table(title=f"ledger of {run_dir}")
    for col in ("#", "stage", "finished", "outputs", "hash"):
        t.add_column(col)
    for e in events:
        t.add_row(str(e.index), e.stage, e.finished_at, str(len(e.outputs)), e.hash[:16])
    console.print(t)
