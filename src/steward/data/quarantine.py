"""The quarantine ledger of rows: every dropped or changed row is recorded here with its reason.

Records never hold raw text (which may be PII), only the sha256 of the row's original text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import pandas as pd

from steward.types import QuarantineRecord

COLUMNS = ["row_id", "reason", "stage", "text_sha256", "detail", "action"]


class Quarantine:
    """Collects :class:`QuarantineRecord` s as the stage runs."""

    def __init__(self) -> None:
        self.records: list[QuarantineRecord] = []

    def drop(self, rows: pd.DataFrame, reason: str, stage: str, detail: str | Iterable[str] = "") -> None:
        self._add(rows, reason, stage, detail, "dropped")

    def changed(self, rows: pd.DataFrame, reason: str, stage: str, detail: str | Iterable[str] = "") -> None:
        self._add(rows, reason, stage, detail, "changed")

    def drop_raw(self, row_id: int, reason: str, stage: str, text_sha256: str, detail: str = "") -> None:
        """Record a row that never became a DataFrame row (e.g. a malformed line)."""
        self.records.append(QuarantineRecord(row_id, reason, stage, text_sha256, detail, "dropped"))

    def _add(self, rows: pd.DataFrame, reason: str, stage: str, detail: str | Iterable[str], action: str) -> None:
        if rows.empty:
            return
        details = [detail] * len(rows) if isinstance(detail, str) else list(detail)
        if len(details) != len(rows):
            raise ValueError("one detail per row is required")
        for rid, h, d in zip(rows["row_id"].tolist(), rows["raw_sha256"].tolist(), details, strict=True):
            self.records.append(QuarantineRecord(int(rid), reason, stage, h, d, action))

    @property
    def dropped_ids(self) -> set[int]:
        return {r.row_id for r in self.records if r.action == "dropped"}

    def counts(self, action: str = "dropped") -> dict[str, int]:
        return dict(Counter(r.reason for r in self.records if r.action == action).most_common())

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([_asdict(r) for r in self.records], columns=COLUMNS)


def _asdict(r: QuarantineRecord) -> dict[str, object]:
    return {c: getattr(r, c) for c in COLUMNS}
