"""Shared CLI helpers: error reporting and output."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from steward.errors import ConfigError, InputDataError, StewardError


def _flags_without_metavar() -> None:
    """Typer 0.21 and later print ``<bool>`` beside every on/off flag (``--json <bool>``), which reads as if the flag
    took a value; a flag takes none, so show no type for it. The one override, in one place."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "_steward", False):
        return  # typer before 0.21 (what flwr pins) prints no type beside a flag

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    display_type_rich._steward = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_without_metavar()
console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILED = 1  # the command ran and found a problem (e.g. ledger broken)
EXIT_USAGE = 2  # bad config or input: nothing was done


def handle_errors(fn: F) -> F:
    """Turn Steward errors into a red message and a non-zero exit; let real bugs show their traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ConfigError, InputDataError) as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(EXIT_USAGE) from exc
        except StewardError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_FAILED) from exc

    return wrapper  # type: ignore[return-value]


def existing_run_dir(cfg: Any) -> Path:
    """The configured run folder (a RunConfig or a path), or a usage error naming it when it does not exist:
    a typo in --run-dir must not read as "no trained model"."""
    run = Path(cfg if isinstance(cfg, str | Path) else cfg.run_dir)
    if not run.is_dir():
        raise ConfigError(f"--run-dir: got {str(run)!r}: no such run folder (looked in {Path.cwd()}). Fix: name "
                          f"a folder a stage wrote, or start one with `steward data FILE --run-dir {run}`")
    return run


@functools.cache
def _default_config() -> Any:
    from steward.config.models import RunConfig

    return RunConfig()


def dflt(field: str) -> str:
    """`` [default: X]`` for an option whose value otherwise comes from steward.yaml, read off the config's
    own default so that --help and the config never disagree. ``field`` is dotted: ``data.input.task``."""
    from rich.markup import escape

    value: Any = _default_config()
    for part in field.split("."):
        value = getattr(value, part)
    if isinstance(value, list):
        value = ",".join(map(str, value))
    return escape(f" [default: {value}, or steward.yaml's]")


def table(title: str, *columns: str, right: Collection[str] = ()) -> Table:
    """A console table whose cells wrap (a long word folds onto the next line) instead of being cut with an
    ellipsis: at 80 columns a fix or two figure names must still read in full."""
    t = Table(title=title)
    for col in columns:
        t.add_column(col, justify="right" if col in right else "left", overflow="fold")
    return t


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def prepare_guards(guards: Any) -> None:
    """Build the built-in models the guards use (the injection detector; the PII names model when the PII guard
    runs NER) before a service starts, with progress, if they are not cached yet (the service would otherwise
    build them silently inside its start-up)."""
    pii_listed = "pii" in guards.input or "pii" in guards.output or "pii_echo" in guards.output
    if getattr(guards, "pii_ner", False) and pii_listed:
        from steward.data.pii import names

        if not names.is_built():
            err_console.print("[bold]building the built-in PII names model once[/] (spaCy NER fine-tuned on "
                              "generated text, a few minutes on 2 cores; cached under $STEWARD_CACHE)")
            names.ensure(progress=True)
    if "injection" not in guards.input or str(guards.injection_model) != "builtin":
        return
    from steward.service.guards.detector import ensure, is_built

    if not is_built():
        err_console.print("[bold]building the built-in injection detector once[/] (data → train → evaluate on the "
                          "shipped set, a few minutes on 2 cores; cached under $STEWARD_CACHE)")
        info = ensure(progress=True)
        err_console.print(f"built {info.name}: recall {info.scorecard.get('recall')} at a false-block rate of "
                          f"{info.scorecard.get('false_block_rate')} on its held-out test split")
