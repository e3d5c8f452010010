"""The quarantine ledger of rows: every dropped or changed row is recorded here with its reason.

Records never hold raw text (which may be PII), only the sha256 of the row's original text.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from steward.at_rest import read_parquet
from steward.types import QuarantineRecord

COLUMNS = ["row_id", "line", "reason", "stage", "text_sha256", "detail", "action"]
FAILED_DIR = "data_failed"  # a run the loss guard stopped keeps its quarantine here, never in data/


class Quarantine:
    """Collects :class:`QuarantineRecord` s as the stage runs."""

    def __init__(self) -> None:
        self.records: list[QuarantineRecord] = []

    def drop(self, rows: pd.DataFrame, reason: str, stage: str, detail: str | Iterable[str] = "") -> None:
        self._add(rows, reason, stage, detail, "dropped")

    def changed(self, rows: pd.DataFrame, reason: str, stage: str, detail: str | Iterable[str] = "") -> None:
        self._add(rows, reason, stage, detail, "changed")

    def drop_raw(self, row_id: int, reason: str, stage: str, text_sha256: str, detail: str = "", *,
                 line: int | None = None) -> None:
        """Record a row that never became a DataFrame row (e.g. a malformed line)."""
        self.records.append(QuarantineRecord(row_id, reason, stage, text_sha256, detail, "dropped", line))

    def _add(self, rows: pd.DataFrame, reason: str, stage: str, detail: str | Iterable[str], action: str) -> None:
        if rows.empty:
            return
        details = [detail] * len(rows) if isinstance(detail, str) else list(detail)
        if len(details) != len(rows):
            raise ValueError("one detail per row is required")
        lines = rows["line"].tolist() if "line" in rows else [None] * len(rows)
        for rid, h, d, ln in zip(rows["row_id"].tolist(), rows["raw_sha256"].tolist(), details, lines, strict=True):
            self.records.append(QuarantineRecord(int(rid), reason, stage, h, d, action,
                                                 None if ln is None else int(ln)))

    @property
    def dropped_ids(self) -> set[int]:
        return {r.row_id for r in self.records if r.action == "dropped"}

    def counts(self, action: str = "dropped") -> dict[str, int]:
        return dict(Counter(r.reason for r in self.records if r.action == action).most_common())

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([_asdict(r) for r in self.records], columns=COLUMNS)


def _asdict(r: QuarantineRecord) -> dict[str, object]:
    return {c: getattr(r, c) for c in COLUMNS}


def read_report(run_dir: str | os.PathLike[str], reason: str | None = None) -> dict[str, Any]:
    """The quarantine a data-stage run left (or its failed attempt), as rows with the fix for each reason."""
    from steward.data.loss import FIXES
    from steward.errors import ConfigError

    run = Path(run_dir)
    if not run.is_dir():
        raise ConfigError(f"--run-dir: got {str(run_dir)!r}: no such run folder (looked in {Path.cwd()})")
    failed, done = run / FAILED_DIR / "quarantine.parquet", run / "data" / "quarantine.parquet"
    path = failed if failed.is_file() else done  # a successful run removes data_failed/
    if not path.is_file():
        raise ConfigError(f"--run-dir: got {str(run_dir)!r}: no data stage has run there (no {done}); run "
                          f"`steward data FILE --run-dir {run_dir}` first")
    frame = read_parquet(path)
    if "line" not in frame:
        frame = frame.assign(line=None)  # written before line numbers were recorded
    counts = frame["reason"].value_counts().to_dict()
    if reason is not None:
        if reason not in counts:
            raise ConfigError(f"--reason: got {reason!r}: no row was quarantined for it; reasons in this run: "
                              f"{', '.join(sorted(counts)) or 'none'}")
        frame = frame[frame["reason"] == reason]
    frame = frame.astype(object).where(frame.notna(), None)
    rows = [{**r, "fix": FIXES.get(r["reason"], "")} for r in frame.to_dict("records")]
    return {"source": str(path), "failed_attempt": path == failed, "total": len(rows),
            "by_reason": {str(k): int(v) for k, v in counts.items()}, "rows": rows}
