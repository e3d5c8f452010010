"""One progress factory for every stage, so long work looks and behaves the same everywhere.

On a terminal it is a transient rich bar. When stderr is not a terminal (CI, ``nohup``, a pipe into a log
file) a bar draws nothing useful, so the same calls print plain lines instead: one per step of a short
task (a probe, a data step) with its time, and one per tenth of a long one (training batches).
"""

from __future__ import annotations

import sys
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, TextIO

SHORT_TASK = 20  # tasks with at most this many steps report every step
QUIET_SECONDS = 30.0  # a long task reports at least this often


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    last_step: float = field(default_factory=time.perf_counter)
    last_line: float = field(default_factory=time.perf_counter)
    reported_tenth: int = 0


class LineProgress:
    """The part of rich's ``Progress`` the stages use (add_task, update, advance), printed as log lines."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.tasks: list[_Task] = []

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        for t in self.tasks:
            if t.total and t.total > SHORT_TASK and t.completed < t.total and not exc[0]:
                self._line(t, f"stopped at {t.completed:g}/{t.total:g}")

    def add_task(self, description: str, total: float | None = None, completed: float = 0, **_: Any) -> int:
        task = _Task(description, total, float(completed))
        task.reported_tenth = int(10 * completed / total) if total else 0
        self.tasks.append(task)
        return len(self.tasks) - 1

    def update(self, task_id: int, *, advance: float = 0, description: str | None = None,
               completed: float | None = None, **_: Any) -> None:
        t = self.tasks[task_id]
        if description is not None:
            t.description = description
        if advance or completed is not None:
            self._step(t, t.completed + advance if completed is None else completed)

    def advance(self, task_id: int, advance: float = 1) -> None:
        t = self.tasks[task_id]
        self._step(t, t.completed + advance)

    def _step(self, t: _Task, completed: float) -> None:
        now = time.perf_counter()
        t.completed = completed
        step_seconds, t.last_step = now - t.last_step, now
        if t.total is not None and t.total <= SHORT_TASK:
            self._line(t, f"{t.completed:g}/{t.total:g} done in {step_seconds:.1f} s")
            return
        tenth = int(10 * t.completed / t.total) if t.total else 0
        if tenth > t.reported_tenth or now - t.last_line >= QUIET_SECONDS:
            t.reported_tenth = max(tenth, t.reported_tenth)
            self._line(t, f"{t.completed:g}/{t.total:g}" if t.total else f"{t.completed:g}")

    def _line(self, t: _Task, what: str) -> None:
        t.last_line = time.perf_counter()
        stream = self.stream or sys.stderr
        stream.write(f"{t.description}: {what} ({t.last_line - t.started:.1f} s elapsed)\n")
        stream.flush()


def progress_bar(enabled: bool, *, remaining: bool = False, counts: bool = True) -> AbstractContextManager[Any]:
    """A transient rich Progress (description, bar, n/total, elapsed or remaining time) on a terminal,
    :class:`LineProgress` elsewhere, or a null context yielding None when disabled (callers test ``if bar:``)."""
    if not enabled:
        return nullcontext(None)
    if not sys.stderr.isatty():
        return LineProgress()
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
