"""The ``steward`` command. Heavy libraries are imported inside commands so ``--help`` is instant."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from steward import __version__
from steward.cli import guards_cmd, ledger_cmd
from steward.cli.common import EXIT_USAGE, console, err_console, handle_errors
from steward.cli.compress_cmd import compress
from steward.cli.data_cmd import data_app
from steward.cli.demo_cmd import demo
from steward.cli.evaluate_cmd import evaluate
from steward.cli.federated_cmd import federated
from steward.cli.gateway_cmd import gateway
from steward.cli.redteam_cmd import redteam
from steward.cli.serve_admin_cmd import audit_app, keys_app, reaudit, retrain
from steward.cli.serve_cmd import serve
from steward.cli.train_cmd import train

app = typer.Typer(
    name="steward",
    help="From raw text data to a guarded, audited fine-tuned model, with evidence at every step.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every subcommand
)


def _print_version(value: bool) -> None:
    if value:
        console.print(f"steward {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the Steward version and exit.")] = False,
) -> None:
    """From raw text data to a guarded, audited fine-tuned model, with evidence at every step."""
app.add_typer(data_app, name="data")
app.command(name="train")(train)
app.command(name="federated")(federated)
app.command(name="evaluate")(evaluate)
app.command(name="compress")(compress)
app.command(name="serve")(serve)
app.command(name="gateway")(gateway)
app.command(name="redteam")(redteam)
app.command(name="reaudit")(reaudit)
app.command(name="retrain")(retrain)
app.command(name="demo")(demo)
app.add_typer(ledger_cmd.app, name="ledger")
app.add_typer(guards_cmd.app, name="guards")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")


@app.command()
@handle_errors
def init(
    directory: Annotated[Path, typer.Argument(help="Where to write steward.yaml.")] = Path("."),
    force: Annotated[bool, typer.Option(help="Overwrite an existing steward.yaml.")] = False,
) -> None:
    """Write a commented example steward.yaml with every option at its default."""
    from steward.atomic import write_text
    from steward.config.loader import template_text

    target = directory / "steward.yaml"
    if target.exists() and not force:
        err_console.print(f"[red]error:[/] {target} exists; pass --force to overwrite it")
        raise typer.Exit(EXIT_USAGE)
    write_text(target, template_text())
    console.print(f"wrote {target}; set data.input.path, then run: steward data -c {target}")


@app.command()
@handle_errors
def validate(
    config: Annotated[Path, typer.Option("--config", "-c", help="The steward.yaml to check.")] = Path("steward.yaml"),
    json_out: Annotated[bool, typer.Option("--json", help="Print the resolved configuration as JSON.")] = False,
) -> None:
    """Check every key and value of a steward.yaml without running anything (exit 2 naming the field)."""
    from steward.cli.common import print_json
    from steward.config.loader import load_config

    cfg = load_config(config)
    if json_out:
        print_json(cfg.model_dump(mode="json"))
        return
    console.print(f"{config}: valid (run folder {cfg.run_dir}, input {cfg.data.input.path or 'not set'})",
                  highlight=False)


@app.command()
def version() -> None:
    """Print the Steward version."""
    console.print(__version__)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
