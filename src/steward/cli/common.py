"""Shared CLI helpers: error reporting and output."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from steward.errors import ConfigError, InputDataError, StewardError


def _flags_without_metavar() -> None:
    """Typer 0.29 prints ``<bool>`` beside every on/off flag (``--json <bool>``), which reads as if the flag
    took a value; a flag takes none, so show no type for it. The one override, in one place."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "_steward", False):
        return

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


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
