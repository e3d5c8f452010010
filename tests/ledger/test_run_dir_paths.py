"""Every stage, run from the CLI with a relative run folder (as `make demo` does) and with an absolute one,
leaves a ledger that verifies from any other working directory: artifacts are recorded relative to the
run folder, never relative to where the command happened to run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from steward.cli.app import app
from steward.demo import PLANTED_LOSS_LIMITS
from steward.ledger import Ledger, verify

FAST = {
    "data": {"pii": {"ner": False}, "split": {"validation": 0.15, "test": 0.15},
             "loss": {"max_share_by_reason": PLANTED_LOSS_LIMITS}},
    "train": {"method": "full", "epochs": 1, "batch_size": 16, "max_length": 32, "mlflow": False, "threads": 1},
    "evaluate": {"bootstrap": 20, "max_rows": 60, "robustness": {"max_rows": 4, "max_queries": 8},
                 "explain": {"rows": 2, "ig_steps": 4}, "privacy": {"rows": 30},
                 "resources": {"latency_runs": 5, "throughput_batch": 8}, "threads": 1,
                 "gates": {"min_accuracy": 0.0, "min_f1_lift": None}},  # one epoch: no better than the baseline
    "compress": {"methods": ["dynamic_int8"], "threads": 1},
}


def _invoke(*args: str) -> str:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, f"steward {' '.join(args)} exited {res.exit_code}:\n{res.output}"
    return res.output


def _feedback(run_dir: Path, labels: list[str]) -> None:
    from steward.service.audit import AuditLog, database_url
    from tests.serve.conftest import add_feedback

    log = AuditLog(database_url(None, run_dir))
    for i in range(12):
        add_feedback(log, i, labels[0], labels[i % 2], "female" if i % 3 else "male")


@pytest.mark.parametrize("form", ["relative", "absolute"])
def test_every_stage_leaves_a_ledger_that_verifies_from_another_directory(
        form: str, tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from steward.demo import generate_support_dataset

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    generate_support_dataset(Path("raw.csv"), n=300, seed=5)
    cfg = {**FAST, "train": {**FAST["train"], "model": str(tiny_model)}}
    Path("steward.yaml").write_text(json.dumps(cfg))
    run = "runs/r" if form == "relative" else str(work / "runs" / "r")
    new = "runs/r2" if form == "relative" else str(work / "runs" / "r2")

    _invoke("data", "raw.csv", "-c", "steward.yaml", "--run-dir", run, "--group-column", "gender", "--json")
    _invoke("train", "-c", "steward.yaml", "--run-dir", run, "--json")
    logged = _invoke("evaluate", "-c", "steward.yaml", "--run-dir", run)
    # stderr is not a terminal here: one progress line per probe, with its time
    for probe in ("performance", "robustness", "explainability", "privacy"):
        assert f"evaluate: {probe}: " in logged and " done in " in logged, logged
    _invoke("compress", "-c", "steward.yaml", "--run-dir", run, "--json")
    labels = json.loads((work / "runs" / "r" / "train" / "manifest.json").read_text())["labels"]
    _feedback(Path(run), labels)
    _invoke("reaudit", "-c", "steward.yaml", "--run-dir", run, "--json")
    _invoke("retrain", "-c", "steward.yaml", "--run-dir", run, "--new-run-dir", new, "--json")

    events = Ledger(work / "runs" / "r").events()
    assert [e.stage for e in events] == ["data", "train", "evaluate", "compress", "reaudit"]
    for e in events:
        for ref in (*e.inputs, *e.outputs):
            # Inside the run folder: relative to it. The raw input and base model lie outside it: absolute.
            if Path(ref.path).is_absolute():
                assert ref.role in {"input", "base_model"} and not Path(ref.path).is_relative_to(work / "runs")
            else:
                assert (work / "runs" / "r" / ref.path).exists(), (e.stage, ref)
    # Verify from a different working directory, both by the CLI and by the library.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for cwd, name in ((work / "runs", "r"), (elsewhere, os.path.relpath(work / "runs" / "r", elsewhere)),
                      (tmp_path, str(work / "runs" / "r"))):
        monkeypatch.chdir(cwd)
        report = verify(name)
        assert report.ok and report.events == 5, (cwd, report)
        assert "ledger intact" in _invoke("ledger", "verify", "--run-dir", name)
        monkeypatch.chdir(cwd)
        assert verify(os.path.relpath(work / "runs" / "r2", cwd)).ok
    # The run folder moved elsewhere still verifies (nothing recorded points at the old place)...
    moved = tmp_path / "moved"
    (work / "runs" / "r").rename(moved)
    assert verify(moved).ok
    # ...and a deleted split is caught, naming it by its path in the run folder.
    (moved / "data" / "train.parquet").unlink()
    report = verify(moved)
    assert not report.ok and "data/train.parquet is missing" in (report.error or "")
