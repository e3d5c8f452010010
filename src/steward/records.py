"""Typed records of what one stage hands the next through the run folder: the data manifest, the train
manifest, the scorecard and the compress stage's chosen artifact. Frozen, validated when read, one reader (``read``) and
one writer (``write``) each, so a stage reads another stage's output only through its record.

Only the fields other stages rely on are declared; everything else a stage writes is kept as it is
(``extra="allow"``) and written back unchanged, so a run folder written by an older or newer Steward still
loads (fields an older one did not write get their defaults).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from steward.atomic import write_json
from steward.errors import RunFolderError


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")
    WHAT: ClassVar[str]  # how an error names the file ("the train manifest")
    REWRITE: ClassVar[str]  # the command that writes it again

    @classmethod
    def read(cls, path: Path) -> Self:
        """The record in ``path``; :class:`RunFolderError` naming the file, the field and the fix if it is
        not one. A missing file raises ``FileNotFoundError`` (callers say which stage to run)."""
        text = Path(path).read_text(encoding="utf-8")
        try:
            return cls.model_validate(json.loads(text))
        except json.JSONDecodeError as exc:
            raise RunFolderError(f"{path}: {cls.WHAT} is not JSON ({exc.msg}, line {exc.lineno}). Fix: "
                                 f"{cls.REWRITE}") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "(top level)"
            raise RunFolderError(f"{path}: {cls.WHAT}: {where}: {first.get('msg')} (got "
                                 f"{first.get('input')!r:.80}). Fix: {cls.REWRITE}") from None

    def write(self, path: Path) -> Path:
        return write_json(path, self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()  # python mode: values as the stage wrote them (NaN stays NaN)


class SplitRef(BaseModel):
    """One split file the data stage wrote, relative to the run folder, with its hash."""

    model_config = ConfigDict(frozen=True, extra="allow")

    path: str
    sha256: str


class DataManifest(_Record):
    """``RUN_DIR/data/manifest.json``: the splits the data stage wrote (with their hashes), the task and the
    label set. The train and evaluate stages and retraining read the data stage's output through it."""

    WHAT: ClassVar[str] = "the data manifest"
    REWRITE: ClassVar[str] = "run `steward data` for this run again"

    task: str
    labels: list[str]
    group_columns: list[str] = Field(default_factory=list)
    splits: dict[str, SplitRef]
    rows: dict[str, int] = Field(default_factory=dict)
    config_digest: str | None = None
    input_sha256: str | None = None

    def split(self, name: str) -> SplitRef | None:
        return self.splits.get(name)


class TrainManifest(_Record):
    """``RUN_DIR/train/manifest.json``: what was trained from what, and the hashes of the weights."""

    WHAT: ClassVar[str] = "the train manifest"
    REWRITE: ClassVar[str] = "run `steward train` for this run again"

    task: str
    labels: list[str]
    multi_label: bool = False
    base_model: dict[str, Any] = Field(default_factory=dict)
    method: str | None = None
    model_weights_sha256: dict[str, str] = Field(default_factory=dict)
    data_inputs: dict[str, dict[str, Any]] | None = None
    privacy: dict[str, Any] | None = None
    parameters: dict[str, Any] | None = None
    best_metric: dict[str, Any] | None = None
    mlflow_run_id: str | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)  # the train config as used
    train_rows: int | None = None
    epochs_run: int | None = None


class Scorecard(_Record):
    """``scorecard.json`` of the evaluate stage (and of each compressed candidate): probes, gates, verdict."""

    WHAT: ClassVar[str] = "the scorecard"
    REWRITE: ClassVar[str] = "run `steward evaluate` for this run again"

    task: str | None = None
    split: str = "test"
    probes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    gates: list[dict[str, Any]] = Field(default_factory=list)
    passed: bool | None = None
    composite: dict[str, Any] | None = None
    config_digest: str | None = None

    def probe_details(self, probe: str) -> dict[str, Any]:
        """A probe's ``details`` ({} when the probe did not run or wrote none)."""
        return (self.probes.get(probe) or {}).get("details") or {}

    def figure(self, probe: str, name: str) -> float | None:
        """A probe's headline figure (``figures.<name>.value``), or None when it was not measured."""
        entry = ((self.probes.get(probe) or {}).get("figures") or {}).get(name) or {}
        value = entry.get("value")
        return None if value is None else float(value)

    def abstain_threshold(self) -> float | None:
        """The calibration probe's recommended abstention threshold, if it made one."""
        value = self.probe_details("calibration").get("abstain_threshold")
        return float(value) if value is not None else None

    def passed_gates(self) -> set[str]:
        return {g["gate"] for g in self.gates if g.get("passed")}


class ChosenArtifact(_Record):
    """``RUN_DIR/compress/chosen.json``: the model the compress stage releases (``original``: the trained one)."""

    WHAT: ClassVar[str] = "the compress stage's choice"
    REWRITE: ClassVar[str] = "run `steward compress` for this run again"
    ORIGINAL: ClassVar[str] = "original"

    name: str
    path: str
    format: str
    sha256: str
    parent_sha256: str
