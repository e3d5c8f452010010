"""Retrain from feedback: a new run whose training data is the original run's plus the labelled cases the
service collected, trained and evaluated with the same configuration and gates.

The new run's data folder keeps the original validation and test splits unchanged (so the scorecards of
the two runs are comparable) and appends the feedback cases to train: their redacted text (the only text
the audit log holds), the corrected label, weight 1, and any group attributes the feedback carried.
Its ledger starts with a ``retrain_data`` event naming the parent run, its ledger head and the feedback.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self

import pandas as pd

from steward.at_rest import is_encrypted, master_key, read_parquet, write_parquet
from steward.errors import ConfigError
from steward.records import DataManifest, TrainManifest
from steward.serve.config import ServeRun
from steward.train.config import TrainRun


class RetrainRun(TrainRun, ServeRun, Protocol):
    """What retraining reads of a run's config: the train, evaluate and serve sections, and a copy of it for
    the new run folder (:class:`steward.config.RunConfig` is one)."""

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self: ...


@dataclass(frozen=True)
class RetrainResult:
    run_dir: Path
    feedback_rows: int
    train_manifest: dict[str, Any]
    scorecard: dict[str, Any]
    passed: bool


def build_data(parent: Path, child: Path, cases: list[dict[str, Any]], texts: dict[str, str]) -> int:
    """Write ``child/data`` = the parent's splits with the feedback cases appended to train; return how many."""
    from steward.atomic import atomic_dir
    from steward.hashing import sha256_file

    src = (parent / "data").resolve()
    manifest = DataManifest.read(src / "manifest.json")
    train = read_parquet(src / "train.parquet")
    rows = []
    next_id = int(train["row_id"].max()) + 1 if "row_id" in train and len(train) else 0
    for k, c in enumerate(cases):
        text = texts.get(c["decision_id"])
        if not text:
            continue
        row: dict[str, Any] = dict.fromkeys(train.columns)
        row.update({"text": text, "label": c["label"], "sample_weight": 1.0, "split": "train"})
        if "row_id" in train:
            row["row_id"] = next_id + k
        for col in manifest.group_columns:
            if col in c["groups"]:
                row[col] = c["groups"][col]
        rows.append(row)
    added = pd.DataFrame(rows, columns=train.columns).astype(train.dtypes.to_dict(), errors="ignore")
    merged = pd.concat([train, added], ignore_index=True)
    with atomic_dir(child / "data") as gen:
        for name in ("validation.parquet", "test.parquet", "data_card.md", "summary.json"):
            if (src / name).exists():
                shutil.copy2(src / name, gen / name)
        # encrypted at rest if the parent run's split was, under the same machine key
        write_parquet(merged, gen / "train.parquet", master_key() if is_encrypted(src / "train.parquet") else None)
        splits = {name: ref.model_copy(update={"sha256": sha256_file(gen / Path(ref.path).name)})
                  for name, ref in manifest.splits.items()}
        manifest.model_copy(update={"splits": splits, "rows": {**manifest.rows, "train": len(merged)},
                                    "feedback_rows": len(rows)}).write(gen / "manifest.json")
    return len(rows)


def retrain(cfg: RetrainRun, new_run_dir: Path, *, progress: bool = False) -> RetrainResult:
    from steward.evaluate import run as run_eval
    from steward.ledger.store import Ledger, artifact, now_iso
    from steward.serve.reaudit import resolve
    from steward.service.audit import AuditLog, database_url
    from steward.service.core import record_cipher
    from steward.train import run as run_train

    parent = Path(cfg.run_dir)
    new_run_dir = Path(new_run_dir)
    if new_run_dir.resolve() == parent.resolve():
        raise ConfigError("--new-run-dir: got the run itself; retraining writes a new run folder. Fix: name a new one")
    if (new_run_dir / "ledger.jsonl").exists():
        raise ConfigError(f"--new-run-dir: got {new_run_dir}, which already holds a run. Fix: name an empty folder")
    log = AuditLog(database_url(cfg.serve.database_url, parent), record_cipher(cfg.serve, parent, create=False))
    labels = set(TrainManifest.read(parent / "train" / "manifest.json").labels)
    accepted, disputed = resolve(log)  # only accepted feedback; disputed cases are left out
    cases = [c for c in accepted if c["label"] in labels]
    texts = {}
    for rec in log.records():
        if rec["kind"] == "predict" and rec["redacted_input"]:
            texts[rec["decision_id"]] = rec["redacted_input"]
    started = now_iso()
    n = build_data(parent, new_run_dir, cases, texts)
    head = Ledger(parent).events()[-1].hash if (parent / "ledger.jsonl").exists() else None
    Ledger(new_run_dir).append(
        stage="retrain_data", started_at=started, config_digest="", inputs=[],
        outputs=[artifact(p, new_run_dir, p.name) for p in sorted((new_run_dir / "data").iterdir()) if p.is_file()],
        summary={"parent_run": str(parent.resolve()), "parent_ledger_head": head, "feedback_rows": n,
                 "disputed_feedback": disputed,
                 "audit_records": log.count(), "at": time.time()})
    child = cfg.model_copy(update={"run_dir": new_run_dir})
    trained = run_train(child, progress=progress).manifest
    evaluated = run_eval(child, progress=progress)
    return RetrainResult(new_run_dir, n, trained, evaluated.scorecard, evaluated.passed)
