"""`steward reaudit`: performance and group fairness recomputed on the service's feedback."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from steward.cli.app import app
from steward.service.audit import AuditLog, database_url
from tests.serve.conftest import add_feedback
from tests.train.conftest import copy_run


def test_reaudit_finds_a_gap_that_feedback_reveals(served_run: Path, tmp_path: Path) -> None:
    run_dir = copy_run(served_run, tmp_path / "run")
    labels = json.loads((run_dir / "train" / "manifest.json").read_text())["labels"]
    a, b = labels[0], labels[1]
    log = AuditLog(database_url(None, run_dir))
    for i in range(40):  # right for men; for women it calls every `a` case `b`
        gender = "female" if i % 2 else "male"
        true = a if i % 4 < 2 else b
        add_feedback(log, i, b if gender == "female" else true, true, gender)
    log.append(decision_id="d99", kind="predict", key_id="k", model_version="v", model_hash="h", input_hash="x",
               redacted_input="t", findings=[], output={"label": a}, latency_ms=1.0)

    def label(fid: str, ref: str, key: str, value: str, basis: str) -> None:
        log.append(decision_id=fid, kind="feedback", key_id=key, model_version="v", model_hash="h", input_hash=None,
                   redacted_input=None, findings=[], ref=ref, latency_ms=0.0,
                   output={"label": value, "predicted": a, "correct": value == a, "groups": {"gender": "male"},
                           "basis": basis})

    label("f99", "d99", "k", b, "own_decision")  # the key that asked says b …
    label("f99b", "d99", "r", a, "reviewer")  # … a reviewer corrects it to a: the reviewer's label counts
    label("f0b", "d0", "k", b, "reviewer")  # a second label by the same key is not accepted
    cfg = tmp_path / "steward.yaml"
    cfg.write_text(json.dumps({"run_dir": str(run_dir), "evaluate": {
        "min_group_size": 5, "bootstrap": 50, "gates": {"min_accuracy": 0.5, "max_eo_difference": 0.2}}}))
    res = CliRunner().invoke(app, ["reaudit", "-c", str(cfg), "--json"])
    assert res.exit_code == 1, res.output
    out = json.loads(res.stdout[: res.stdout.rindex("}") + 1])
    assert out["feedback_cases"] == 41 and out["disputed_cases"] == 0  # one accepted label per decision
    acc = out["probes"]["performance"]["figures"]["accuracy"]["value"]
    assert acc == (41 - 10) / 41  # ten female `a` cases were wrong
    assert out["probes"]["fairness"]["figures"]["eo_difference"]["value"] > 0.2
    failed = {g["gate"] for g in out["gates"] if not g["passed"]}
    assert failed == {"max_eo_difference"}
    assert (run_dir / "reaudit" / "reaudit.json").is_file()
    events = [json.loads(x) for x in (run_dir / "ledger.jsonl").read_text().splitlines()]
    assert events[-1]["stage"] == "reaudit" and events[-1]["summary"]["feedback_cases"] == 41


def test_retrain_adds_feedback_to_train_and_runs_the_same_gates(served_run: Path, tiny_model: Path,
                                                                tmp_path: Path) -> None:
    import pandas as pd

    from steward.ledger import verify

    run_dir = copy_run(served_run, tmp_path / "run")
    labels = json.loads((run_dir / "train" / "manifest.json").read_text())["labels"]
    log = AuditLog(database_url(None, run_dir))
    for i in range(6):
        log.append(decision_id=f"d{i}", kind="predict", key_id="k", model_version="v", model_hash="h",
                   input_hash="x", redacted_input=f"my <EMAIL_ADDRESS> order {i} never came", findings=[],
                   output={"label": labels[0]}, latency_ms=1.0)
        log.append(decision_id=f"f{i}", kind="feedback", key_id="k", model_version="v", model_hash="h",
                   input_hash=None, redacted_input=None, findings=[], ref=f"d{i}", latency_ms=0.0,
                   output={"label": labels[1], "predicted": labels[0], "correct": False, "groups": {"gender": "female"}})
    cfg = tmp_path / "steward.yaml"
    cfg.write_text(json.dumps({"run_dir": str(run_dir), "train": {
        "model": str(tiny_model), "method": "full", "epochs": 1, "batch_size": 16, "max_length": 32, "mlflow": False,
        "threads": 1}, "evaluate": {"probes": ["performance"], "bootstrap": 10,
                                              "gates": {"min_accuracy": 0.0, "min_f1_lift": None}}}))
    new = tmp_path / "retrained"
    res = CliRunner().invoke(app, ["retrain", "-c", str(cfg), "--new-run-dir", str(new), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout[res.stdout.index("{"):])
    assert out["feedback_rows"] == 6 and out["passed"]
    old_train = pd.read_parquet(run_dir / "data" / "train.parquet")
    new_train = pd.read_parquet(new / "data" / "train.parquet")
    assert len(new_train) == len(old_train) + 6
    added = new_train.tail(6)
    assert set(added["label"]) == {labels[1]} and set(added["gender"]) == {"female"}
    assert all("<EMAIL_ADDRESS>" in t for t in added["text"])
    assert pd.read_parquet(new / "data" / "test.parquet").equals(pd.read_parquet(run_dir / "data" / "test.parquet"))
    stages = [json.loads(x)["stage"] for x in (new / "ledger.jsonl").read_text().splitlines()]
    assert stages == ["retrain_data", "train", "evaluate"] and verify(new).ok
    again = CliRunner().invoke(app, ["retrain", "-c", str(cfg), "--new-run-dir", str(new)])
    assert again.exit_code == 2 and "already holds a run" in again.output
