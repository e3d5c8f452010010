"""The evaluate stage end to end on a tiny trained BERT: files, ledger, gates and exit codes, bad inputs,
the report in real headless Chromium, and the model card through huggingface_hub's parser."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from steward.cli.app import app
from steward.config import parse_config
from steward.errors import ConfigError, EvaluateStageError
from steward.evaluate import run as run_eval
from steward.ledger import verify
from steward.train import run as run_train
from tests.browser import chromium_page
from tests.train.conftest import copy_run, train_cfg

FAST = {"bootstrap": 50, "robustness": {"max_rows": 10, "max_queries": 20}, "explain": {"rows": 4, "ig_steps": 8},
        "privacy": {"rows": 60}, "resources": {"latency_runs": 5, "throughput_batch": 8}, "threads": 1}


@pytest.fixture(scope="module")
def trained_run(demo_data_run: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = copy_run(demo_data_run, tmp_path_factory.mktemp("eval") / "run")
    run_train(train_cfg(run_dir, tiny_model, method="full", epochs=8, learning_rate=3e-3))  # beats the baseline
    return run_dir


def _cfg(run_dir: Path, **ev: object):  # type: ignore[no-untyped-def]
    return parse_config({"run_dir": str(run_dir), "evaluate": {**FAST, **ev}})


@pytest.fixture(scope="module")
def evaluated(trained_run: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    run_dir = copy_run(trained_run, tmp_path_factory.mktemp("evaluated") / "run")
    return run_eval(_cfg(run_dir, gates={"min_accuracy": 0.0, "max_latency_ms_p95": 10_000}))


def test_writes_scorecard_report_card_and_a_ledger_event(evaluated) -> None:  # type: ignore[no-untyped-def]
    out = evaluated.out_dir
    assert {p.name for p in out.iterdir()} == {"scorecard.json", "report.html", "MODEL_CARD.md"}
    sc = json.loads((out / "scorecard.json").read_text())
    assert set(sc["probes"]) == {"performance", "fairness", "counterfactual", "robustness", "calibration",
                                 "explainability", "privacy", "resources"}
    assert [g["gate"] for g in sc["gates"]] == ["min_accuracy", "min_f1_lift", "max_latency_ms_p95"]
    assert sc["passed"] and evaluated.passed
    assert sc["probes"]["performance"]["figures"]["accuracy"]["unit"] == "fraction"
    assert sc["probes"]["resources"]["figures"]["gflops_per_example"]["value"] > 0
    assert sc["probes"]["fairness"]["details"]["columns"]["gender"]  # the data stage's group column
    timing = sc["timing"]  # every second of the stage is either set-up (loading) or one probe's
    assert sum(timing["share"].values()) + timing["setup_seconds"] / timing["seconds"] == pytest.approx(1.0, abs=0.01)
    weights = json.loads((out.parent / "train" / "manifest.json").read_text())["model_weights_sha256"]
    assert sc["model"]["weights_sha256"] == weights
    events = [json.loads(line) for line in (out.parent / "ledger.jsonl").read_text().splitlines()]
    ev = events[-1]
    assert ev["stage"] == "evaluate" and ev["summary"]["passed"] is True
    assert {a["role"] for a in ev["inputs"]} >= {"test", "model", "train"}
    assert verify(out.parent).ok


def test_failed_gates_exit_1_and_name_each_gate_with_its_value(trained_run: Path, tmp_path: Path) -> None:
    run_dir = copy_run(trained_run, tmp_path / "run")
    cfg_path = tmp_path / "steward.yaml"
    cfg_path.write_text(json.dumps({"run_dir": str(run_dir), "evaluate": {
        **FAST, "probes": ["performance", "calibration"], "gates": {"min_accuracy": 0.99, "max_ece": 0.0001,
                                                                    "max_mia_auc": 0.6}}}))
    res = CliRunner().invoke(app, ["evaluate", "-c", str(cfg_path)])
    assert res.exit_code == 1, res.output
    out = res.output + (res.stderr if res.stderr_bytes else "")
    assert "min_accuracy: performance.accuracy =" in out and "FAILED" in out
    assert "max_ece: calibration.ece =" in out
    assert "max_mia_auc: privacy.mia_auc was not measured" in out  # a gate on a probe that did not run fails
    sc = json.loads((run_dir / "evaluate" / "scorecard.json").read_text())  # written even though gates failed
    assert not sc["passed"] and {g["gate"] for g in sc["gates"] if not g["passed"]} == {"min_accuracy", "max_ece",
                                                                                        "max_mia_auc"}


def test_cli_json_output_and_passing_exit(trained_run: Path, tmp_path: Path) -> None:
    run_dir = copy_run(trained_run, tmp_path / "run")
    res = CliRunner().invoke(app, ["evaluate", "--run-dir", str(run_dir), "--probes", "performance,resources",
                                   "--max-rows", "40", "--json"])
    assert res.exit_code == 0, res.output
    sc = json.loads(res.stdout)
    assert set(sc["probes"]) == {"performance", "resources"} and sc["rows"] == 40


def test_bad_inputs_are_clear_errors(trained_run: Path, demo_data_run: Path, tmp_path: Path) -> None:
    with pytest.raises(EvaluateStageError, match="run `steward train`"):
        run_eval(_cfg(copy_run(demo_data_run, tmp_path / "untrained")))
    with pytest.raises(ConfigError, match=r"evaluate.sensitive_columns: got \['religion'\].*gender"):
        run_eval(_cfg(trained_run, sensitive_columns=["religion"]))
    with pytest.raises(ConfigError, match="favourable_label: got 'nope'"):
        run_eval(_cfg(trained_run, probes=["fairness"], favourable_label="nope"))
    tampered = copy_run(trained_run, tmp_path / "tampered")
    weights = next((tampered / "train" / "model").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ConfigError, match="do not match the hashes in the train manifest"):
        run_eval(_cfg(tampered))
    assert not (tampered / "evaluate").exists()
    edited = copy_run(trained_run, tmp_path / "edited")
    test_file = edited / "data" / "test.parquet"
    test_file.write_bytes(test_file.read_bytes() + b"\0")
    with pytest.raises(EvaluateStageError, match="changed since the data stage wrote it"):
        run_eval(_cfg(edited))


def test_model_card_parses_with_huggingface_hub(evaluated) -> None:  # type: ignore[no-untyped-def]
    from huggingface_hub import ModelCard

    card = ModelCard.load(evaluated.out_dir / "MODEL_CARD.md")
    assert card.data.library_name == "transformers" and "steward" in card.data.tags
    metrics = {r.metric_name: r.metric_value for r in card.data.eval_results}
    acc = evaluated.scorecard["probes"]["performance"]["figures"]["accuracy"]["value"]
    assert metrics["accuracy"] == pytest.approx(acc, abs=1e-4)
    for section in ("## Intended use", "## Out-of-scope use", "## Training data", "## Evaluation results",
                    "## Fairness", "## Privacy", "## Limitations"):
        assert section in card.text


def test_report_renders_in_headless_chromium_without_console_errors(evaluated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    requests: list[str] = []
    with chromium_page(errors, requests) as page:
        page.goto((evaluated.out_dir / "report.html").as_uri())
        assert page.locator("#verdict").inner_text().startswith("All 3 release gates passed")
        assert page.locator("#baseline tr").count() == 3 and page.locator("#per-class tr").count() > 3
        plots = page.locator("figure svg")
        assert plots.count() >= 5  # confusion, group bars, robustness, reliability, coverage (+ counterfactual)
        box = plots.first.bounding_box()
        assert box and box["width"] > 200 and box["height"] > 150
        assert page.locator("#attributions .tok").count() > 0
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
    assert errors == []
    assert all(u.startswith("file://") for u in requests)  # self-contained: nothing fetched from a network
    from PIL import Image

    img = Image.open(shot).convert("RGB")
    assert img.height > 2000
    colours = img.resize((64, 256)).getcolors(64 * 256) or []
    assert len(colours) > 20  # plots, not a blank page


def test_report_escapes_markup_from_the_data() -> None:
    from steward.evaluate.report import render_report

    sc = json.loads(json.dumps(_minimal_scorecard()))
    sc["probes"]["robustness"]["examples"] = [{"attack": "char", "original": "<script>alert(1)</script>",
                                               "adversarial": "<img src=x onerror=alert(1)>", "label": "a",
                                               "new_label": "b", "queries": 3}]
    html = render_report(sc)
    assert "<script>alert" not in html and "&lt;script&gt;" in html and "<img src=x" not in html


def _minimal_scorecard() -> dict:  # type: ignore[type-arg]
    return {"task": "classification", "labels": ["a", "b"], "split": "test", "rows": 2,
            "model": {"base_model": {"id": "m"}, "method": "lora"}, "provenance": {"steward_version": "0"},
            "timing": {"seconds": 1.0, "share": {}}, "config": {"confidence": 0.95}, "passed": True, "gates": [],
            "composite": {"value": 1.0, "formula": "f", "factors": {}},
            "probes": {"robustness": {"figures": {}, "details": {"attacks": {}}, "examples": [], "seconds": 0.1}}}


def test_canaries_planted_by_the_data_stage_are_scored_after_training(tiny_model: Path, tmp_path: Path) -> None:
    from steward.data import run as run_data
    from steward.demo import PLANTED_LOSS_LIMITS, generate_support_dataset

    run_dir = tmp_path / "run"
    generate_support_dataset(tmp_path / "raw.csv", n=300, seed=5)
    run_data(parse_config({"run_dir": str(run_dir), "data": {
        "input": {"path": str(tmp_path / "raw.csv")}, "pii": {"ner": False},
        "loss": {"max_share_by_reason": PLANTED_LOSS_LIMITS},
        "canaries": {"count": 4, "repeats": 5, "digits": 6}}}))
    run_train(train_cfg(run_dir, tiny_model, method="full", epochs=1, learning_rate=1e-3))
    res = run_eval(_cfg(run_dir, probes=["privacy"], privacy={"rows": 20, "canary_candidates": 63},
                        gates={"max_canary_exposure": 6.0}))
    privacy = res.scorecard["probes"]["privacy"]
    can = privacy["details"]["canaries"]
    assert can["scored"] == 4 and can["candidates"] == 63 and can["max_possible"] == pytest.approx(6.0)
    assert 0.0 <= privacy["figures"]["canary_exposure_mean"]["value"] <= privacy["figures"]["canary_exposure_max"]["value"] <= 6.0
    assert res.passed  # exposure can never exceed log2(64) = 6 bits
    ev = json.loads((run_dir / "ledger.jsonl").read_text().splitlines()[-1])
    assert "canaries" in {a["role"] for a in ev["inputs"]}


def test_the_row_limit_bounds_every_probe(trained_run: Path, tmp_path: Path) -> None:
    run_dir = copy_run(trained_run, tmp_path / "run")
    res = run_eval(_cfg(run_dir, max_rows=12, robustness={"max_rows": 200, "max_queries": 10},
                        explain={"rows": 50, "ig_steps": 4}, privacy={"rows": 1000},
                        probes=["performance", "robustness", "explainability", "privacy"]))
    sc = res.scorecard
    assert sc["rows"] == 12
    assert 0 < sc["probes"]["robustness"]["details"]["attacked_rows"] <= 12
    assert sc["probes"]["explainability"]["details"]["rows"] <= 12
    assert sc["probes"]["privacy"]["details"]["members"] == sc["probes"]["privacy"]["details"]["non_members"] <= 12


def test_a_model_that_does_not_beat_the_majority_baseline_fails_by_default(demo_data_run: Path, tiny_model: Path,
                                                                          tmp_path: Path) -> None:
    run_dir = copy_run(demo_data_run, tmp_path / "run")
    run_train(train_cfg(run_dir, tiny_model, method="full", epochs=1, learning_rate=1e-3))  # a useless model
    cfg = tmp_path / "steward.yaml"
    cfg.write_text(json.dumps({"run_dir": str(run_dir), "evaluate": {**FAST, "probes": ["performance"]}}))
    res = CliRunner().invoke(app, ["evaluate", "-c", str(cfg)])
    sc = json.loads((run_dir / "evaluate" / "scorecard.json").read_text())
    perf = sc["probes"]["performance"]
    lift = perf["figures"]["f1_lift"]["value"]
    base = perf["details"]["baseline"]
    counts = np.bincount(json_labels(run_dir, sc["labels"]))
    assert base["accuracy"] == pytest.approx(counts.max() / counts.sum())  # always the most frequent class
    assert lift == pytest.approx(perf["figures"]["macro_f1"]["ci"][0] - base["macro_f1"], abs=1e-6)
    assert lift <= 0 and res.exit_code == 1
    assert "not shown to beat the majority-class baseline" in " ".join(res.output.split())
    html = (run_dir / "evaluate" / "report.html").read_text()
    assert 'id="baseline-warning"' in html and 'id="per-class"' in html and "min_f1_lift" in html
    assert "the model is **not shown to beat it**" in (run_dir / "evaluate" / "MODEL_CARD.md").read_text()


def test_a_trained_model_beats_the_baseline(trained_run: Path, tmp_path: Path) -> None:
    res = run_eval(_cfg(copy_run(trained_run, tmp_path / "run"), probes=["performance"]))
    assert res.passed and [g.gate for g in res.gates] == ["min_f1_lift"]
    assert res.scorecard["probes"]["performance"]["figures"]["f1_lift"]["value"] > 0.3


def json_labels(run_dir: Path, labels: list[str]) -> list[int]:
    import pandas as pd

    frame = pd.read_parquet(run_dir / "data" / "test.parquet")
    return [labels.index(str(v)) for v in frame["label"]]
