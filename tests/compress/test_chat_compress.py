"""The compress stage on a fine-tuned chat model: dynamic int8 beside the original, on the data stage's held-out
conversations (answer loss, perplexity) and greedy generation speed, with the release rule and a ledger event."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steward.config import parse_config
from steward.errors import ConfigError
from steward.ledger import verify
from tests.train.conftest import copy_run


def test_int8_of_a_chat_model_is_measured_on_held_out_conversations(trained_chat_run: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from steward.compress import artifact, run

    run_dir = copy_run(trained_chat_run, tmp_path / "run")
    result = run(parse_config({"run_dir": str(run_dir), "compress": {"threads": 1, "chat": {
        "prompts": 2, "new_tokens": 8, "rescore": False}}}))
    original, int8 = result.candidates
    assert original["name"] == "original" and int8["name"] == "dynamic_int8" and int8["format"] == "torch_int8"
    for c in (original, int8):
        assert c["held_out_loss"] > 0 and c["perplexity"] > 1 and c["tokens_per_second"] > 0
    # int8 of the linear layers barely moves a model's loss; the rule's verdict is stated either way
    assert abs(int8["loss_increase"]) < 0.05
    assert (int8["rejected"] is None) == (int8["tokens_per_second"] > original["tokens_per_second"])
    assert result.chosen == ("dynamic_int8" if int8["rejected"] is None else "original")
    pareto = json.loads((result.out_dir / "pareto.json").read_text())
    assert pareto["task"] == "chat" and pareto["held_out"]["split"] == "test" and pareto["held_out"]["conversations"]
    # the candidate loads from disk on its own (config, tokenizer with chat template, int8 safetensors)
    folder = result.out_dir / "candidates" / "dynamic_int8"
    model = artifact.load_int8(folder, AutoModelForCausalLM)
    tok = AutoTokenizer.from_pretrained(folder)
    enc = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    assert model.generate(**enc, max_new_tokens=3, do_sample=False).shape[1] > enc["input_ids"].shape[1]
    assert not list(folder.glob("*.bin")) and verify(run_dir).ok


def test_a_chat_model_with_no_method_for_it_is_refused_by_name(trained_chat_run: Path, tmp_path: Path) -> None:
    from steward.compress import run

    run_dir = copy_run(trained_chat_run, tmp_path / "run")
    with pytest.raises(ConfigError, match=r"compress.methods: \['onnx'\] has no method for a chat model"):
        run(parse_config({"run_dir": str(run_dir), "compress": {"methods": ["onnx"]}}))


def test_int8_of_a_chat_model_is_rescored_against_the_gates_the_original_passed(trained_chat_run: Path,
                                                                                tmp_path: Path) -> None:
    from steward.compress import run
    from steward.errors import CompressStageError
    from steward.evaluate import run as run_eval

    run_dir = copy_run(trained_chat_run, tmp_path / "run")
    conf = {"run_dir": str(run_dir), "compress": {"threads": 1, "chat": {"prompts": 2, "new_tokens": 8}},
            "evaluate": {"threads": 1, "bootstrap": 50, "chat": {
                "probes": ["quality", "safety", "resources"], "quality_rows": 10, "xstest_per_type": 1,
                "new_tokens": 8, "latency_runs": 1, "gates": {"max_perplexity": 1e9, "max_over_refusal": 1.0}}}}
    with pytest.raises(CompressStageError, match="run `steward evaluate` for this run first"):
        run(parse_config(conf))
    original = run_eval(parse_config(conf)).scorecard
    assert original["passed"]
    result = run(parse_config(conf))
    int8 = result.candidates[1]
    # the candidate carries its own full scorecard, judged by the same gates, against the same base model
    sc = json.loads((run_dir / int8["scorecard"]).read_text())
    assert sc["task"] == "chat" and set(sc["probes"]) == {"quality", "safety", "resources"} and sc["probes"]["safety"]["base"]
    assert {g["gate"] for g in int8["gates"]} == {g["gate"] for g in original["gates"]}
    assert int8["gates_failed"] == [] or int8["rejected"].startswith("fails gates the original passed")
    pareto = json.loads((result.out_dir / "pareto.json").read_text())
    assert set(pareto["gates_required"]) == {"max_perplexity", "max_over_refusal", "max_safety_regression"}
    event = [json.loads(x) for x in (run_dir / "ledger.jsonl").read_text().splitlines()][-1]
    assert "parent_scorecard" in {a["role"] for a in event["inputs"]} and verify(run_dir).ok
    # a different evaluate setting would judge candidates on other terms: refused
    conf["evaluate"]["chat"]["quality_rows"] = 11
    with pytest.raises(CompressStageError, match="equal terms"):
        run(parse_config(conf))
