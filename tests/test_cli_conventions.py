"""CLI conventions a user relies on: a missing run folder is named as such, a run folder is not silently
reused for another data set, --help shows the defaults, classes can be named."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from steward.cli.app import app


def _steward(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("cmd", [["train"], ["evaluate"], ["compress"], ["serve"], ["reaudit"],
                                 ["retrain", "--new-run-dir", "x"], ["ledger", "verify"]])
def test_a_nonexistent_run_folder_is_named_as_such(cmd: list[str], tmp_path: Path) -> None:
    res = _steward(*cmd, "--run-dir", str(tmp_path / "typo"))
    assert res.exit_code == 2, res.output
    assert "no such run folder" in " ".join(res.stderr.split())


def _csv(path: Path, n: int, labels: list[str]) -> Path:
    words = ["parcel", "refund", "invoice", "router", "order", "screen", "charge", "account"]
    texts = [f"note {i}: my {words[i % 8]} and the {words[(i * 3) % 8]} are {words[(i * 5) % 8]} again"
             for i in range(n)]
    pd.DataFrame({"text": texts, "label": [labels[i % len(labels)] for i in range(n)]}).to_csv(path, index=False)
    return path


def test_a_run_folder_is_not_reused_for_another_data_set(tmp_path: Path) -> None:
    run = str(tmp_path / "runs" / "default")
    a, b = _csv(tmp_path / "a.csv", 80, ["x", "y"]), _csv(tmp_path / "b.csv", 90, ["x", "y"])
    assert _steward("data", str(a), "--run-dir", run, "--regex-only").exit_code == 0
    assert _steward("data", str(a), "--run-dir", run, "--regex-only").exit_code == 0  # same data: a rerun
    res = _steward("data", str(b), "--run-dir", run, "--regex-only")
    assert res.exit_code == 2 and "holds the data stage of another input file" in " ".join(res.stderr.split())
    assert str(a) in res.stderr.replace("\n", "")  # names the file the folder holds
    assert json.loads((Path(run) / "data" / "summary.json").read_text())["rows_in"] == 80  # untouched
    _csv(a, 85, ["x", "y"])  # the same file, edited
    res = _steward("data", str(a), "--run-dir", run, "--regex-only")
    assert res.exit_code == 2 and "a.csv changed since the data stage last read it" in " ".join(res.stderr.split())
    assert _steward("data", str(b), "--run-dir", run, "--regex-only", "--overwrite").exit_code == 0
    assert json.loads((Path(run) / "data" / "summary.json").read_text())["rows_in"] == 90


@pytest.mark.parametrize("cmd, shown", [(["data", "run"], "[default: text, or steward.yaml's]"),
                                        (["train"], "[default: lora, or steward.yaml's]"),
                                        (["serve"], "[default: 8000, or steward.yaml's]"),
                                        (["evaluate"], "[default: 1000, or steward.yaml's]")])
def test_help_shows_the_defaults_the_config_uses(cmd: list[str], shown: str) -> None:
    res = CliRunner().invoke(app, [*cmd, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and shown in res.output


def test_classes_can_be_named(tmp_path: Path) -> None:
    src = _csv(tmp_path / "numbers.csv", 120, ["0", "1", "1.0"])
    cfg = tmp_path / "steward.yaml"
    cfg.write_text(json.dumps({"data": {"label_names": {"0": "negative", "1": "positive"},
                                        "input": {"labels": ["negative", "1"]}}}))  # a name or a raw value
    res = _steward("data", str(src), "-c", str(cfg), "--run-dir", str(tmp_path / "r"), "--regex-only", "--json")
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "r" / "data" / "manifest.json").read_text())
    assert manifest["labels"] == ["negative", "positive"]
    assert json.loads(res.stdout)["labels_found"] == {"positive": 80, "negative": 40}
