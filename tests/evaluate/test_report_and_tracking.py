"""The report reads as words, can hide offensive examples, and the scorecard lands in training's MLflow run."""

from __future__ import annotations

from pathlib import Path

from steward.evaluate.report import hide_offensive, render_report, whole_words


def test_word_pieces_become_the_words_a_reader_sees() -> None:
    words, scores = whole_words(["the", "un", "##believ", "##able", "refund", "!"], [0.1, 0.2, 0.3, 0.1, -0.5, 0.0])
    assert words == ["the", "unbelievable", "refund", "!"]
    assert scores == [0.1, 0.2 + 0.3 + 0.1, -0.5, 0.0]
    # SentencePiece marks word starts instead of continuations
    words, scores = whole_words(["▁my", "▁par", "cel", "▁is", "▁late"], [1.0, 0.5, 0.25, 0.0, 2.0])
    assert words == ["my", "parcel", "is", "late"] and scores == [1.0, 0.75, 0.0, 2.0]


def _probes(text: str) -> dict:  # type: ignore[type-arg]
    return {"robustness": {"figures": {}, "details": {"attacks": {}}, "examples": [{"attack": "word", "original": text, "adversarial": text + " x",
                                         "label": "a", "new_label": "b", "queries": 3}]},
            "explainability": {"figures": {}, "details": {"methods": {}}, "examples": [{"text": text, "label": "a",
                                             "occlusion": {"tokens": text.split(), "scores": [0.1] * len(text.split())}}]},
            "performance": {"figures": {}}}


def test_offensive_example_texts_can_be_hidden_from_the_report() -> None:
    rude, polite = "fuck this company, where is my damn refund", "where is my parcel please"
    probes = {**_probes(rude), "counterfactual": {"examples": [{"pair": "he/she", "original": polite,
                                                               "counterfactual": polite}]}}
    out = hide_offensive(probes, 0.5)
    ex = out["robustness"]["examples"][0]
    assert ex["original"].startswith("[hidden: offensive text, toxicity") and "fuck" not in str(out)
    assert out["explainability"]["examples"][0]["occlusion"]["tokens"] == ["[hidden]"]
    assert out["counterfactual"]["examples"][0]["original"] == polite  # polite text is shown
    assert probes["robustness"]["examples"][0]["original"] == rude  # the scorecard itself keeps the text


def test_the_scorecard_is_logged_to_the_training_run(tmp_path: Path, demo_data_run: Path, tiny_model: Path) -> None:
    from steward.config import parse_config
    from steward.evaluate import run as run_eval
    from steward.train import run as run_train
    from tests.train.conftest import copy_run, train_cfg

    run_dir = copy_run(demo_data_run, tmp_path / "run")
    m = run_train(train_cfg(run_dir, tiny_model, epochs=1, mlflow=True)).manifest
    run_eval(parse_config({"run_dir": str(run_dir), "evaluate": {
        "probes": ["performance", "calibration"], "bootstrap": 20, "gates": {"min_f1_lift": None}}}))
    runs = list((run_dir / "mlruns").rglob(m["mlflow_run_id"]))
    assert len([r for r in runs if r.is_dir()]) == 1  # one MLflow run: training's
    metrics = {p.name for p in runs[0].rglob("metrics/*")}
    assert {"macro_f1", "evaluate.performance.accuracy", "evaluate.performance.f1_lift",
            "evaluate.calibration.ece", "evaluate.gates_passed"} <= metrics
    assert any(p.name == "scorecard.json" for p in runs[0].rglob("artifacts/*"))


def test_render_report_escapes_and_hides(tmp_path: Path) -> None:
    sc_probes = _probes("<script>alert(1)</script> you stupid morons charged me again")
    sc = {"model": {"base_model": {"id": "m"}, "method": "lora"}, "task": "classification", "rows": 1,
          "split": "test", "provenance": {"steward_version": "0"}, "timing": {"seconds": 1.0, "share": {}},
          "passed": True, "gates": [], "composite": {"value": 0.5, "formula": "f", "factors": {}},
          "config": {"confidence": 0.95}, "probes": sc_probes}
    shown = render_report(sc)
    assert "&lt;script&gt;" in shown and "<script>alert" not in shown
    assert "stupid" not in render_report(sc, hide_offensive_at=0.5)
