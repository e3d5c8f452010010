"""``steward ledger``: verify and show a run's hash-chained ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from steward.cli.common import (
    EXIT_FAILED,
    console,
    err_console,
    existing_run_dir,
    handle_errors,
    print_json,
    table,
)

app = typer.Typer(help="Inspect and verify a run's ledger.", no_args_is_help=True)

RunDirArg = Annotated[Path | None, typer.Argument(help="The run folder (same as --run-dir).", show_default=False,
                                                  metavar="RUN_DIR")]
RunDirOpt = Annotated[Path | None, typer.Option("--run-dir", "-r", help="The run folder holding ledger.jsonl.",
                                                show_default=False)]


def _run_dir(positional: Path | None, option: Path | None) -> Path:
    """The run folder from ``--run-dir`` (as every other command takes it) or the older positional form."""
    from steward.errors import ConfigError
    from steward.ledger import LEDGER_NAME

    if positional is not None and option is not None and positional != option:
        raise ConfigError(f"--run-dir: got both {option} and a positional run folder {positional}; give one")
    run_dir = option or positional
    if run_dir is None:
        raise ConfigError("--run-dir: missing; name the run folder, e.g. `steward ledger verify --run-dir runs/demo`")
    existing_run_dir(run_dir)
    if not (run_dir / LEDGER_NAME).is_file():
        raise ConfigError(f"--run-dir: got {str(run_dir)!r}: the folder has no {LEDGER_NAME}, so no stage has "
                          f"run in it; run `steward data --run-dir {run_dir}` first")
    return run_dir


@app.command()
@handle_errors
def sign(
    positional: RunDirArg = None,
    run_dir: RunDirOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the checkpoint as JSON.")] = False,
) -> None:
    """Sign the ledger's head with this machine's key ($STEWARD_SIGNING_KEY or $STEWARD_HOME/signing-key.pem),
    for a ledger written before Steward signed ledgers (the services refuse an unsigned one). Refused when
    an event or artifact is broken, or when the witness holds a different history of this ledger."""
    from steward.ledger import Ledger

    run_dir = _run_dir(positional, run_dir)
    cp = Ledger(run_dir).sign_head()
    if json_out:
        print_json(cp.to_dict())
    else:
        console.print(f"[green]ledger signed[/]: {cp.size} events, root {cp.root.hex()[:16]}…, key {cp.key_id}")


@app.command("rotate-key")
@handle_errors
def rotate_key(
    new_key: Annotated[Path, typer.Option("--new-key", help="The new private key (from `steward audit keygen "
                                                            "--out PATH`), outside the run folder.")],
    positional: RunDirArg = None,
    run_dir: RunDirOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Hand the run's ledger from this machine's key to a new one, recorded in the ledger itself: the old key
    signs the handover (an event) and a checkpoint covering it; later events must be signed by the new key.
    Verifiers holding either public key check the whole ledger. Run it in every run folder before the machine
    key is replaced."""
    from steward.ledger import Ledger
    from steward.ledger.checkpoint import default_signer, load_signer

    run_dir = _run_dir(positional, run_dir)
    done = Ledger(run_dir).rotate_key(default_signer(run_dir), load_signer(new_key, run_dir=run_dir))
    if json_out:
        print_json(done)
        return
    console.print(f"ledger of {run_dir} handed from key {done['old_key_id']} to {done['new_key_id']} at event "
                  f"{done['event']}; sign what follows with the new key: set $STEWARD_SIGNING_KEY={new_key} (or "
                  "replace $STEWARD_HOME/signing-key.pem with it)", highlight=False)


@app.command()
@handle_errors
def verify(
    positional: RunDirArg = None,
    run_dir: RunDirOpt = None,
    witness: Annotated[Path | None, typer.Option(
        "--witness", help="A witness folder of signed ledger checkpoints: the ledger must extend every one.")] = None,
    public_key: Annotated[str | None, typer.Option(
        "--public-key", help="The signing key's public key (base64, or a file holding it). Default: this "
                             "machine's key ($STEWARD_SIGNING_KEY or $STEWARD_HOME/signing-key.pem).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Exit 0 if every event and artifact is intact and every event is covered by a checkpoint signed with the
    key (and, with --witness, the ledger extends every checkpoint the witness holds); otherwise exit 1 naming
    the first broken event or the checkpoint it contradicts."""
    from steward.ledger import Ledger
    from steward.ledger.checkpoint import read_public_key

    run_dir = _run_dir(positional, run_dir)
    key = read_public_key(public_key) if public_key is not None else None
    report = Ledger(run_dir).verify(public_key=key, witness_dir=witness)
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
    positional: RunDirArg = None,
    run_dir: RunDirOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the events as JSON.")] = False,
) -> None:
    """List the run's events: stage, time, outputs, hash."""
    from steward.ledger import Ledger

    run_dir = _run_dir(positional, run_dir)
    events = Ledger(run_dir).events()
    if json_out:
        print_json([{**e.body(), "hash": e.hash} for e in events])
        return
    t = table(f"ledger of {run_dir}", "#", "stage", "finished", "outputs", "hash")
    for e in events:
        t.add_row(str(e.index), e.stage, e.finished_at, str(len(e.outputs)), e.hash[:16])
    console.print(t)
