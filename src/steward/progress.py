"""One progress-bar factory for every stage (rich), so long work looks and behaves the same everywhere."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any


def progress_bar(enabled: bool, *, remaining: bool = False, counts: bool = True) -> AbstractContextManager[Any]:
    """A transient rich Progress (description, bar, n/total, elapsed or remaining time), or a null context
    yielding None when disabled (callers test ``if bar:``)."""
    if not enabled:
        return nullcontext(None)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns: list[Any] = [TextColumn("{task.description}"), BarColumn()]
    if counts:
        columns.append(MofNCompleteColumn())
    columns.append(TimeRemainingColumn() if remaining else TimeElapsedColumn())
    return Progress(*columns, transient=True)
