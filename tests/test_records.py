"""Stage records (steward.records): a run folder written before the records existed still loads, reading and
writing a record changes no file, and a broken record names its file, field and fix."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from steward.errors import RunFolderError
from steward.records import ChosenArtifact, DataManifest, Scorecard, TrainManifest

# The demo run's records (`make demo`) as main wrote them before steward.records existed (see its README).
OLD_RUN = Path(__file__).parent / "fixtures" / "run_ed83ed5"


def test_a_run_folder_written_before_the_records_loads() -> None:
    manifest = TrainManifest.read(OLD_RUN / "train" / "manifest.json")
    assert manifest.task == "classification" and "billing" in manifest.labels and not manifest.multi_label
    assert manifest.method == "lora" and manifest.model_weights_sha256
    assert all(len(h) == 64 for h in manifest.model_weights_sha256.values())
    scorecard = Scorecard.read(OLD_RUN / "evaluate" / "scorecard.json")
    assert scorecard.split == "test" and "calibration" in scorecard.probes and scorecard.gates
    threshold = scorecard.abstain_threshold()
    assert threshold is not None and 0.0 <= threshold < 1.0  # the calibration probe's recommendation
    assert scorecard.passed_gates() <= {g["gate"] for g in scorecard.gates}
    chosen = ChosenArtifact.read(OLD_RUN / "compress" / "chosen.json")
    assert chosen.name in ("original", "dynamic_int8", "onnx_int8") and len(chosen.parent_sha256) == 64
    data = DataManifest.read(OLD_RUN / "data" / "manifest.json")
    assert data.task == "classification" and data.labels == manifest.labels
    assert data.group_columns == ["gender", "age_band"] and data.split("train").path == "data/train.parquet"
    assert data.split("missing") is None and data.rows["train"] == manifest.train_rows


@pytest.mark.parametrize("record, path", [(DataManifest, "data/manifest.json"), (TrainManifest, "train/manifest.json"),
                                          (Scorecard, "evaluate/scorecard.json"),
                                          (ChosenArtifact, "compress/chosen.json")])
def test_reading_and_writing_a_record_changes_nothing_in_the_file(record: type, path: str, tmp_path: Path) -> None:
    original = OLD_RUN / path
    out = record.read(original).write(tmp_path / "copy.json")
    assert json.loads(out.read_text()) == json.loads(original.read_text())  # fields not declared are kept too


def test_values_json_cannot_hold_are_written_as_the_stage_wrote_them(tmp_path: Path) -> None:
    sc = Scorecard.model_validate({"probes": {"fairness": {"figures": {"gap": {"value": float("nan")}}}}})
    back = json.loads(sc.write(tmp_path / "scorecard.json").read_text())
    assert math.isnan(back["probes"]["fairness"]["figures"]["gap"]["value"])  # not turned into null


def test_a_record_written_by_an_older_steward_gets_defaults_for_what_it_lacks(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"task": "classification", "labels": ["a", "b"]}))
    m = TrainManifest.read(path)
    assert m.model_weights_sha256 == {} and m.mlflow_run_id is None and m.privacy is None


@pytest.mark.parametrize("content, where", [
    ({"labels": ["a"]}, "task"),  # a field every reader needs is missing
    ({"task": "classification", "labels": "a,b"}, "labels"),  # the wrong type
])
def test_a_broken_record_names_the_file_the_field_and_the_fix(content: dict, where: str, tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(content))
    with pytest.raises(RunFolderError, match=where) as err:
        TrainManifest.read(path)
    assert str(path) in str(err.value) and "steward train" in str(err.value)


def test_a_record_that_is_not_json_says_so(tmp_path: Path) -> None:
    path = tmp_path / "chosen.json"
    path.write_text('{"name": "onnx",')
    with pytest.raises(RunFolderError, match=r"not JSON.*steward compress"):
        ChosenArtifact.read(path)


def test_a_scorecard_names_a_figure_or_says_it_was_not_measured() -> None:
    scorecard = Scorecard.read(OLD_RUN / "evaluate" / "scorecard.json")
    raw = json.loads((OLD_RUN / "evaluate" / "scorecard.json").read_text())
    assert scorecard.figure("performance", "accuracy") == raw["probes"]["performance"]["figures"]["accuracy"]["value"]
    assert scorecard.figure("performance", "no_such_figure") is None
    assert scorecard.figure("no_such_probe", "accuracy") is None
    unmeasured = Scorecard.model_validate({"probes": {"fairness": {"figures": {"dp_difference": {"value": None}}}}})
    assert unmeasured.figure("fairness", "dp_difference") is None
