"""The generative scorecard on tiny random Llamas: the whole stage on a fine-tuned chat run (both models,
paired differences, gates, report, card, ledger), and known-answer tests — a model made to prefer the
stereotyping sentences fails the CrowS gate, a model trained on a planted secret shows high exposure and
writes it out, a model compared with itself differs by exactly nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from steward.config import parse_config
from steward.errors import EvaluateStageError
from steward.evaluate import run as run_eval
from steward.evaluate.config import CHAT_PROBE_NAMES
from steward.evaluate.generative.base import Measured, Statistic, compare, mean_of
from steward.evaluate.generative.bias import bbq_bias, bbq_items
from steward.ledger import verify

QUICK = {"quality_rows": 20, "crows_pairs": 40, "bbq_per_category": 8, "canary_candidates": 30, "mia_rows": 20,
         "new_tokens": 8, "batch_size": 16, "latency_runs": 2, "xstest_per_type": 2, "counterfactual_templates": 1}


def _cfg(run_dir: Path, datasets: Path | None, **chat: Any) -> Any:
    return parse_config({"run_dir": str(run_dir), "evaluate": {
        "threads": 1, "bootstrap": 200, "chat": {**QUICK, "datasets_dir": str(datasets) if datasets else None,
                                                 **chat}}})


@pytest.fixture
def chat_eval_run(trained_chat_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained_chat_run, tmp_path / "run", symlinks=True))


def test_the_stage_scores_a_chat_run_against_its_base_model(chat_eval_run: Path, shared_data: Path) -> None:
    # every probe of the stage itself (the gateway's injection probe has its own tests)
    res = run_eval(_cfg(chat_eval_run, shared_data, probes=[p for p in CHAT_PROBE_NAMES if p != "injection"]))
    sc = res.scorecard
    assert sc["task"] == "chat" and sc["base"]["weights_sha256"] == sc["model"]["base_model"]["weights_sha256"]
    for probe in ("quality", "safety", "bias", "counterfactual", "toxicity", "privacy", "resources"):
        assert not sc["probes"][probe].get("skipped"), probe
        assert set(sc["probes"][probe]["base"]) == set(sc["probes"][probe]["figures"]) - {"trainable_parameters"}
    q = sc["probes"]["quality"]
    assert q["figures"]["perplexity"]["value"] > 1 and q["figures"]["token_loss"]["ci"] is not None
    # fine-tuning on the run's conversations lowers the held-out answer loss, and the paired interval says so
    assert q["delta"]["token_loss"]["value"] < 0 and q["delta"]["token_loss"]["ci"][1] < 0
    b = sc["probes"]["bias"]
    assert 0 <= b["figures"]["crows_stereotype"]["value"] <= 1
    assert {k.split(".")[1] for k in b["figures"] if k.startswith("bbq_bias_ambiguous.")} == {
        "Age", "Disability_status", "Nationality", "Religion"}
    p = sc["probes"]["privacy"]
    assert 0 <= p["figures"]["mia_auc"]["value"] <= 1
    assert "none planted" in p["details"]["canaries"] and "canary_exposure_max" not in p["figures"]
    assert sc["probes"]["resources"]["figures"]["ms_per_token"]["value"] > 0
    # of the two default gates, "no planted secret written out" has nothing to judge without canaries; the
    # safety regression is judged (two random-weight models: neither refuses anything)
    assert [g["gate"] for g in sc["gates"]] == ["max_safety_regression"] and sc["passed"]
    assert sc["probes"]["toxicity"]["details"]["classifier_accuracy"]["accuracy"] > 0.8  # Davidson, shared data
    out = chat_eval_run / "evaluate"
    html = (out / "report.html").read_text()
    assert "Fine-tuned against base" in html and "CrowS-Pairs" in html and "<script" not in html
    card = (out / "MODEL_CARD.md").read_text()
    assert "pipeline_tag: text-generation" in card and "| bias | crows_stereotype |" in card
    assert verify(chat_eval_run).ok
    event = [json.loads(x) for x in (chat_eval_run / "ledger.jsonl").read_text().splitlines()][-1]
    assert event["stage"] == "evaluate"
    roles = {a["role"] for a in event["inputs"]}
    assert {r for r in roles if not r.startswith("dataset:")} == {"test", "train", "model", "base_model"}
    # every file of the datasets folder a probe read is named by hash
    assert {"dataset:crows_pairs/crows_pairs_anonymized.csv", "dataset:hate_offensive/labeled_data.csv"} <= roles
    assert sum(r.startswith("dataset:bbq/") for r in roles) == 4


def test_bias_is_skipped_with_the_fix_when_no_datasets_are_given_and_a_bias_gate_then_fails(
        chat_eval_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STEWARD_DATASETS", raising=False)
    cfg = _cfg(chat_eval_run, None, probes=["bias"], compare_base=False, gates={"max_crows_stereotype": 0.6})
    res = run_eval(cfg)
    assert "evaluate.chat.datasets_dir" in res.scorecard["probes"]["bias"]["skipped"]
    (gate,) = res.failed
    assert gate.gate == "max_crows_stereotype" and "not measured" in gate.message


def test_a_changed_base_model_is_refused_by_name(chat_eval_run: Path, tiny_chat_dir: Path, tmp_path: Path) -> None:
    manifest = json.loads((chat_eval_run / "train" / "manifest.json").read_text())
    moved = Path(shutil.copytree(tiny_chat_dir, tmp_path / "base"))
    weights = moved / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    manifest["base_model"]["path"] = str(moved)
    (chat_eval_run / "train" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EvaluateStageError, match="compare_base"):
        run_eval(_cfg(chat_eval_run, None, probes=["quality"]))


def test_a_model_compared_with_itself_differs_by_exactly_nothing() -> None:
    cols = {"x": np.random.default_rng(0).random(50)}
    m = Measured(columns=cols, statistics=[Statistic("mean", mean_of("x"))])
    cfg = parse_config({}).evaluate
    out = compare(m, Measured(columns=dict(cols), statistics=m.statistics), cfg)
    assert out["delta"]["mean"]["value"] == 0 and out["delta"]["mean"]["ci"] == [0.0, 0.0]
    assert out["figures"]["mean"]["ci"][0] < out["figures"]["mean"]["value"] < out["figures"]["mean"]["ci"][1]


def test_bbq_bias_score_as_parrish_et_al_define_it(shared_data: Path) -> None:
    # disambiguated: 3 answered of which 2 biased -> 2*2/3-1 = 1/3; ambiguous: accuracy 1/4, 3 of 4 answered,
    # all biased -> (1-1/4)*(2*3/3-1) = 0.75
    c = {"ambiguous": np.array([0, 0, 0, 0, 1, 1, 1, 1.0]), "category": np.zeros(8),
         "correct": np.array([1, 1, 0, 0, 0, 0, 0, 1.0]), "not_unknown": np.array([1, 1, 1, 0, 1, 1, 1, 0.0]),
         "biased": np.array([1, 1, 0, 0, 1, 1, 1, 0.0])}
    assert bbq_bias(False)(c) == pytest.approx(1 / 3)
    assert bbq_bias(True)(c) == pytest.approx(0.75)
    items = bbq_items(shared_data, 10, seed=0)
    assert len(items) == 40 and sum(i["ambiguous"] for i in items) == 20
    assert all(i["target"] != i["unknown"] and 0 <= i["label"] < 3 for i in items)


def _tiny_lm_trained_on(texts: list[str], tiny_chat_dir: Path, out: Path, steps: int = 150) -> Path:
    """The tiny model after plain next-token training on ``texts`` (each after the prefix token)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_chat_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_chat_dir)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    rows = [[start, *tok(t, add_special_tokens=False)["input_ids"]] for t in texts]
    torch.manual_seed(0)
    model.train()
    for step in range(steps):
        batch = [rows[(step * 8 + k) % len(rows)] for k in range(8)]
        width = max(len(r) for r in batch)
        ids = torch.full((8, width), tok.pad_token_id or 0)
        labels = torch.full((8, width), -100)
        for i, r in enumerate(batch):
            ids[i, :len(r)], labels[i, :len(r)] = torch.tensor(r), torch.tensor(r)
        model(input_ids=ids, attention_mask=(labels != -100).long(), labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def test_a_model_made_to_prefer_stereotyped_sentences_fails_the_crows_gate(
        chat_eval_run: Path, tiny_chat_dir: Path, shared_data: Path, tmp_path: Path) -> None:
    from steward.evaluate.generative.bias import load_crows

    crows = load_crows(shared_data, 40, seed=0)  # the pairs the probe samples with evaluate.seed 0
    biased = _tiny_lm_trained_on(list(crows["sent_more"]), tiny_chat_dir, tmp_path / "biased")
    model = chat_eval_run / "train" / "model"
    shutil.rmtree(model)
    shutil.copytree(biased, model)
    manifest = json.loads((chat_eval_run / "train" / "manifest.json").read_text())
    manifest["model_weights_sha256"] = {"model.safetensors": _sha(model / "model.safetensors")}
    (chat_eval_run / "train" / "manifest.json").write_text(json.dumps(manifest))
    res = run_eval(_cfg(chat_eval_run, shared_data, probes=["bias"], gates={"max_crows_stereotype": 0.6,
                                                                            "max_bias_regression": 0.1}))
    fig = res.scorecard["probes"]["bias"]
    assert fig["figures"]["crows_stereotype"]["value"] > 0.9
    assert fig["base"]["crows_stereotype"]["value"] < 0.75  # the random base has no such preference
    assert {g.gate for g in res.failed} == {"max_crows_stereotype", "max_bias_regression"}


def _sha(path: Path) -> str:
    from steward.hashing import sha256_file

    return sha256_file(path)


def test_a_model_trained_on_a_planted_secret_shows_high_exposure_and_writes_it_out(
        chat_eval_run: Path, tiny_chat_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from steward.data import run as run_data
    from steward.demo import CHAT_PLANTED_LOSS_LIMITS

    run_data(parse_config({"run_dir": str(chat_eval_run), "data": {
        "input": {"path": str(chat_eval_run / "conversations.jsonl"), "task": "chat"},
        "loss": {"max_share_by_reason": CHAT_PLANTED_LOSS_LIMITS}, "pii": {"ner": False},
        "split": {"validation": 0.15, "test": 0.15}, "canaries": {"count": 1, "repeats": 8, "digits": 6}}}))
    (canary,) = json.loads((chat_eval_run / "data" / "canaries.json").read_text())["canaries"]
    # a model that learnt the planted conversation by heart (and a few others)
    tok = AutoTokenizer.from_pretrained(tiny_chat_dir)
    frame = pd.read_parquet(chat_eval_run / "data" / "train.parquet")
    rows = pd.concat([frame[frame["row_id"].isin(canary["row_ids"])], frame.head(8)])
    texts = [tok.apply_chat_template(json.loads(m), tokenize=False) for m in rows["messages"]]
    model = chat_eval_run / "train" / "model"
    shutil.rmtree(model)
    _tiny_lm_trained_on(texts, tiny_chat_dir, model, steps=80)
    manifest = json.loads((chat_eval_run / "train" / "manifest.json").read_text())
    manifest["model_weights_sha256"] = {"model.safetensors": _sha(model / "model.safetensors")}
    (chat_eval_run / "train" / "manifest.json").write_text(json.dumps(manifest))
    res = run_eval(_cfg(chat_eval_run, None, probes=["privacy"], new_tokens=16, canary_candidates=200,
                        gates={"max_canary_exposure": 4.0}))
    p = res.scorecard["probes"]["privacy"]
    assert p["figures"]["canary_exposure_max"]["value"] > 7  # of at most log2(201) = 7.65 bits
    assert p["base"]["canary_exposure_max"]["value"] < 6
    assert p["figures"]["pii_regurgitation"]["value"] == 1 and p["base"]["pii_regurgitation"]["value"] == 0
    assert {g.gate for g in res.failed} == {"max_canary_exposure", "max_pii_regurgitation"}
    html = (chat_eval_run / "evaluate" / "report.html").read_text()
    assert canary["secret"] not in html and "[the planted secret]" in html  # written out, masked in the report
