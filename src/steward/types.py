"""Frozen records passed between stages. Stages share these and files on disk, never each other's classes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """A file (or directory) a stage read or wrote, with its content hash."""

    path: str  # relative to the run directory when inside it, else absolute
    sha256: str
    role: str = ""  # e.g. "train", "quarantine", "input"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected span (PII, toxicity…) with why it fired. Offsets are into the text that was scanned."""

    entity_type: str
    start: int
    end: int
    score: float
    detector: str
    explanation: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"Finding.score must be in [0, 1]; got {self.score}")
        if not 0 <= self.start <= self.end:
            raise ValueError(f"Finding span must satisfy 0 <= start <= end; got {self.start}..{self.end}")


@dataclass(frozen=True, slots=True)
class QuarantineRecord:
    """Why a row was removed or changed. Never holds raw text: only its hash."""

    row_id: int
    reason: str
    stage: str
    text_sha256: str
    detail: str = ""
    action: str = "dropped"  # "dropped" or "changed"
    line: int | None = None  # where the row starts in the input file (item number in a JSON array)


@dataclass(frozen=True, slots=True)
class DatasetManifest:
    """What the data stage hands to the train stage."""

    task: str  # "classification" | "ner"
    text_column: str
    label_column: str
    labels: tuple[str, ...]
    group_columns: tuple[str, ...]
    splits: dict[str, ArtifactRef]
    rows: dict[str, int]
    config_digest: str
    input_sha256: str
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["labels"] = list(self.labels)
        d["group_columns"] = list(self.group_columns)
        return d
