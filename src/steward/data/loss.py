"""The guard against silent data loss: a cleaning step that removes far more than expected is more often
a wrong setting (encoding, label list, delimiter, file shape) than dirty data, so it stops the stage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from steward.data.config import LossGuardConfig

# What to change when a reason removes a large share of the rows, keyed by quarantine reason.
FIXES = {
    "bad_encoding": "the file is not in data.input.encoding; leave it at auto (detected) or pass --encoding, "
                    "e.g. --encoding latin-1",
    "unknown_label": "data.input.labels (--labels) leaves out labels the file holds; add them or drop the setting",
    "malformed_line": "the rows do not have the shape Steward expected; check data.input.format and the delimiter",
    "missing_label": "data.input.label_column (--label-column) is empty on these rows; is it the right column?",
    "empty_text": "data.input.text_column (--text-column) is empty on these rows; is it the right column?",
    "harmful_text": "set data.screen.action: flag to keep and mark them, or raise data.screen.threshold",
    "wrong_language": "set data.quality.languages to the languages of the data, or null to keep every language",
    "duplicate_exact": "the file repeats rows; if that is intended pass --allow-loss",
    "duplicate_near": "raise data.dedup.threshold if these rows are distinct, or pass --allow-loss",
    "too_short": "lower data.quality.min_chars, or check data.input.text_column",
    "mostly_non_alphabetic": "lower data.quality.min_alpha_ratio if the texts are codes or numbers by design",
    "invalid_tag": "the tag column is not in BIO form (O, B-X, I-X); check data.input.tags_column",
}


@dataclass(frozen=True)
class LossFinding:
    """One reason the guard fired: a quarantine reason over the limit, or a label with no row left."""

    kind: str  # "reason" or "label"
    name: str  # the quarantine reason or the label
    count: int
    share: float
    fix: str

    def message(self) -> str:
        if self.kind == "label":
            return (f"label {self.name!r}: all {self.count} rows of it were removed, so the model would never "
                    f"learn it. Fix: {self.fix}")
        return (f"{self.name}: {self.count} rows ({self.share:.1%}) quarantined for this one reason. "
                f"Fix: {self.fix}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "message": self.message()}


def check(rows_in: int, dropped_by_reason: Mapping[str, int], labels_in: Mapping[str, int],
          labels_kept: set[str], cfg: LossGuardConfig, run_dir: str) -> list[LossFinding]:
    """Every way the stage lost more than ``cfg`` allows, largest first.

    ``labels_in`` counts every label the file holds (declared or not), ``labels_kept`` those with a row left.
    """
    see = f"; rows and line numbers: steward data quarantine --run-dir {run_dir} --reason "
    out = [LossFinding("reason", reason, n, n / rows_in,
                       FIXES.get(reason, "check the setting behind it or pass --allow-loss") + see + reason)
           for reason, n in dropped_by_reason.items()
           if rows_in and n / rows_in > cfg.max_share_by_reason.get(reason, cfg.max_share) and n >= cfg.min_rows]
    for label, n in labels_in.items():
        if label not in labels_kept and n >= cfg.min_rows:
            out.append(LossFinding("label", label, n, n / rows_in if rows_in else 0.0,
                                   "see which steps removed it with steward data quarantine --run-dir "
                                   f"{run_dir}; add it to data.input.labels if it was left out"))
    return sorted(out, key=lambda f: -f.count)
