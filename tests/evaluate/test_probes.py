"""Each probe on classifiers whose right answers are known."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from steward.evaluate.config import EvaluateConfig, GateSettings
from steward.evaluate.gates import judge
from steward.evaluate.probes import PROBES
from tests.evaluate.conftest import KeywordSentiment, make_ctx, sentiment_rows


def _run(name: str, ctx):  # type: ignore[no-untyped-def]
    return PROBES.create(name, ctx)


def test_every_dimension_is_registered() -> None:
    assert PROBES.names() == sorted(["performance", "fairness", "counterfactual", "robustness", "calibration",
                                     "explainability", "privacy", "resources"])


def test_performance_exact_on_a_perfect_and_a_biased_model(rows: pd.DataFrame) -> None:
    res = _run("performance", make_ctx(KeywordSentiment(), rows))
    assert res.figures["accuracy"].value == 1.0 and res.figures["macro_f1"].value == 1.0
    assert sum(map(sum, res.details["confusion_matrix"])) == len(rows)
    biased = _run("performance", make_ctx(KeywordSentiment(favour="she"), rows))
    wrong = ((rows["gender"] == "female") & (rows["label"] == "0")).sum()
    assert biased.figures["accuracy"].value == pytest.approx(1 - wrong / len(rows))
    lo, hi = biased.figures["accuracy"].ci  # type: ignore[misc]
    assert lo < biased.figures["accuracy"].value < hi
    assert biased.details["per_class"]["0"]["recall"] < 1.0


def test_a_model_biased_on_purpose_fails_the_fairness_gate_and_an_unbiased_one_passes(rows: pd.DataFrame) -> None:
    gates = GateSettings(max_eo_difference=0.1)
    fair = _run("fairness", make_ctx(KeywordSentiment(), rows))
    biased = _run("fairness", make_ctx(KeywordSentiment(favour="she"), rows))
    assert fair.figures["eo_difference"].value == 0.0  # perfect in every group
    assert biased.figures["eo_difference"].value == 1.0  # every negative "she" text called positive
    assert biased.figures["dp_difference"].value > fair.figures["dp_difference"].value
    lo, hi = biased.figures["dp_difference"].ci  # type: ignore[misc]
    assert lo <= biased.figures["dp_difference"].value <= hi
    (g_fair,) = judge(gates, {"fairness": fair.to_dict()}, "classification")
    (g_biased,) = judge(gates, {"fairness": biased.to_dict()}, "classification")
    assert g_fair.passed and not g_biased.passed
    assert "eo_difference = 1" in g_biased.message and "FAILED" in g_biased.message


def test_groups_too_small_to_judge_are_named_not_averaged(rows: pd.DataFrame) -> None:
    extra = pd.DataFrame([{"text": "they said it was bad", "label": "0", "gender": "nonbinary"}] * 5)
    res = _run("fairness", make_ctx(KeywordSentiment(favour="they"), pd.concat([rows, extra], ignore_index=True),
                                    EvaluateConfig(bootstrap=0, min_group_size=30)))
    col = res.details["columns"]["gender"]["1"]
    assert col["too_small"] == ["nonbinary"] and col["judged_groups"] == ["female", "male"]
    assert res.figures["eo_difference"].value == 0.0  # the small group's errors are not mixed in
    assert col["by_group"]["nonbinary"]["n"] == 5 and col["by_group"]["nonbinary"]["accuracy"] == 0.0


def test_counterfactual_swaps_flip_only_the_biased_model(rows: pd.DataFrame) -> None:
    fair = _run("counterfactual", make_ctx(KeywordSentiment(), rows))
    assert fair.figures["flip_rate"].value == 0.0
    biased = _run("counterfactual", make_ctx(KeywordSentiment(favour="she"), rows))
    pair = biased.details["by_pair"]["he<->she"]
    assert pair["n"] == len(rows) and pair["category"] == "gender"
    # A negative text flips whichever way it is swapped (he->she becomes positive; she->he loses the bias).
    assert pair["flip_rate"] == pytest.approx((rows["label"] == "0").mean())
    assert biased.examples and biased.examples[0]["original_label"] != biased.examples[0]["counterfactual_label"]


def test_counterfactual_with_no_identity_terms_is_skipped_with_a_reason() -> None:
    frame = pd.DataFrame({"text": ["good stuff", "bad stuff"], "label": ["1", "0"]})
    res = _run("counterfactual", make_ctx(KeywordSentiment(), frame))
    assert res.skipped and not res.figures


def test_attacks_flip_exactly_the_rows_a_keyword_decides(rows: pd.DataFrame) -> None:
    cfg = EvaluateConfig(robustness={"max_rows": 60, "max_queries": 60})
    res = _run("robustness", make_ctx(KeywordSentiment(), rows, cfg))
    # A positive text hangs on one keyword: a typo or a synonym of it removes the evidence and flips it.
    # A negative text is the keyword model's default: no single edit can make it positive.
    attacked = res.details["attacked_rows"]
    rng = np.random.default_rng(cfg.seed)
    picked = np.sort(rng.choice(len(rows), size=60, replace=False))
    positive_share = (rows["label"].to_numpy()[picked] == "1").mean()
    assert attacked == 60
    assert res.figures["char_attack_success"].value == pytest.approx(positive_share)
    assert res.figures["word_attack_success"].value == pytest.approx(positive_share)
    assert res.figures["sentence_attack_success"].value == 0.0  # distractors carry no keyword
    assert res.figures["attack_success"].value == pytest.approx(positive_share)
    kinds = {e["attack"] for e in res.examples}
    assert kinds == {"char", "word"} and all(e["new_label"] == "0" for e in res.examples)
    assert all(e["queries"] <= 60 for e in res.examples)


def test_disguise_attacks_meet_the_served_form_first() -> None:
    """A look-alike letter or an invisible character flips the bare keyword model; the text a service passes
    to the model (canonical form) undoes both, so as served the same attack fails."""
    from steward.evaluate.attacks import greedy_word_attack
    from steward.evaluate.probes.robustness import ServedPredictor
    from steward.textops import HOMOGLYPHS

    def disguises(word: str) -> list[str]:
        glyph = next((k for k, c in enumerate(word) if c in HOMOGLYPHS), None)
        out = [word[:1] + "\u200b" + word[1:], word[:1] + "\u00ad" + word[1:]]  # zero-width space, soft hyphen
        if glyph is not None:
            out.append(word[:glyph] + HOMOGLYPHS[word[glyph]] + word[glyph + 1:])
        return out

    bare = KeywordSentiment()
    text = "a great phone"
    hit = greedy_word_attack(text, 1, bare, disguises, max_queries=30, max_edit_share=0.5)
    assert hit.success and hit.adversarial != text
    served = greedy_word_attack(text, 1, ServedPredictor(bare), disguises, max_queries=30, max_edit_share=0.5)
    assert not served.success


def test_the_robustness_probe_attacks_the_served_form_unless_told(rows: pd.DataFrame) -> None:
    served = _run("robustness", make_ctx(KeywordSentiment(), rows, EvaluateConfig(robustness={"max_rows": 20})))
    bare = _run("robustness", make_ctx(KeywordSentiment(), rows,
                                        EvaluateConfig(robustness={"max_rows": 20, "as_served": False})))
    assert served.details["as_served"] is True and bare.details["as_served"] is False
    # Typos and dropped letters still flip a keyword as served: the canonical form is no spelling fix.
    assert served.figures["char_attack_success"].value == bare.figures["char_attack_success"].value > 0


def test_calibration_error_is_the_gap_between_confidence_and_accuracy(rows: pd.DataFrame) -> None:
    res = _run("calibration", make_ctx(KeywordSentiment(confidence=0.9), rows))
    assert res.figures["ece"].value == pytest.approx(0.1)  # always right, always 90 % sure
    sharp = _run("calibration", make_ctx(KeywordSentiment(confidence=0.99), rows))
    assert sharp.figures["ece"].value == pytest.approx(0.01)
    biased = _run("calibration", make_ctx(KeywordSentiment(favour="she", confidence=0.99), rows))
    assert biased.figures["ece"].value > 0.15
    assert res.details["recommended_threshold"] == 0.0  # every answer is right: no need to abstain
    assert len(res.details["bins"]) == 15 and sum(b["n"] for b in res.details["bins"]) == len(rows)


class Memoriser(KeywordSentiment):
    """Near-certain on the rows it was 'trained' on, unsure elsewhere: a model that leaks membership."""

    def __init__(self, seen: pd.DataFrame) -> None:
        super().__init__()
        self.seen = dict(zip(seen["text"], seen["label"].astype(int), strict=True))

    def predict_proba(self, texts):  # type: ignore[no-untyped-def]
        out = super().predict_proba(texts)
        for i, t in enumerate(texts):
            if t in self.seen:
                out[i] = [0.001, 0.999] if self.seen[t] else [0.999, 0.001]
        return out


def test_membership_inference_catches_a_memorising_model() -> None:
    train = sentiment_rows(150, seed=1).assign(text=lambda f: f["text"] + " at " + f.index.astype(str))
    test = sentiment_rows(150, seed=2).assign(text=lambda f: f["text"] + " on " + f.index.astype(str))
    leaky = _run("privacy", make_ctx(Memoriser(train), test, train=train))
    assert leaky.figures["mia_auc"].value == 1.0
    honest = _run("privacy", make_ctx(KeywordSentiment(), test, train=train))
    assert honest.figures["mia_auc"].value == pytest.approx(0.5)
    lo, hi = honest.figures["mia_auc"].ci  # type: ignore[misc]
    assert lo <= 0.5 <= hi
    gate = GateSettings(max_mia_auc=0.6)
    assert judge(gate, {"privacy": honest.to_dict()}, "classification")[0].passed
    assert not judge(gate, {"privacy": leaky.to_dict()}, "classification")[0].passed


def test_a_gate_on_a_probe_that_did_not_run_fails() -> None:
    (g,) = judge(GateSettings(max_ece=0.05), {}, "classification")
    assert not g.passed and g.measured is None and "not measured" in g.message


def test_resources_count_the_flops_a_bert_layer_must_do(tiny_model) -> None:  # type: ignore[no-untyped-def]
    """FLOPs from torch's counter equal the matmul count worked out by hand for the tiny BERT."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from steward.inference import TorchClassifier

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=3).eval()
    clf = TorchClassifier(AutoTokenizer.from_pretrained(tiny_model), ["a", "b", "c"], model=model)
    text = "the parcel arrived two days late and the box was torn"
    frame = pd.DataFrame({"text": [text] * 8, "label": ["a"] * 8})
    res = PROBES.create("resources", make_ctx(clf, frame, EvaluateConfig(resources={"latency_runs": 5})))
    t = len(clf.tokenizer(text)["input_ids"])
    h, inter, layers = 32, 64, 2
    per_layer = 2 * t * h * h * 4 + 2 * 2 * t * t * h + 2 * 2 * t * h * inter  # q,k,v,o; scores and mix; FFN
    expected = layers * per_layer + 2 * h * h + 2 * h * 3  # + pooler and classifier on [CLS]
    assert res.figures["gflops_per_example"].value * 1e9 == pytest.approx(expected)
    assert res.figures["parameters"].value == sum(p.numel() for p in model.parameters())
    assert 0 < res.figures["latency_ms_p50"].value <= res.figures["latency_ms_p95"].value
    assert res.figures["throughput_per_s"].value > 0


class ThreeWay:
    """Routes texts by keyword; for one group it sends every "billing" text to "refund" (biased)."""

    labels: ClassVar[list[str]] = ["billing", "refund", "delivery"]

    def predict_proba(self, texts):  # type: ignore[no-untyped-def]
        out = []
        for t in texts:
            k = next(i for i, lbl in enumerate(self.labels) if lbl in t)
            if "she" in t.split() and k == 0:
                k = 1
            p = [0.05] * 3
            p[k] = 0.9
            out.append(p)
        return np.array(out)


def test_multiclass_fairness_is_judged_one_vs_rest_and_names_the_worst_label() -> None:
    rng = np.random.default_rng(3)
    rows = [{"text": f"{'she' if g == 'female' else 'he'} asked about {lbl}", "label": lbl, "gender": g}
            for lbl, g in zip(rng.choice(ThreeWay.labels, 300), rng.choice(["female", "male"], 300), strict=True)]
    frame = pd.DataFrame(rows)
    res = PROBES.create("fairness", make_ctx(ThreeWay(), frame, EvaluateConfig(bootstrap=0)))
    assert res.details["one_vs_rest"] and res.details["favourable_labels"] == ThreeWay.labels
    assert res.figures["eo_difference"].value == 1.0  # billing TPR: 0 for women, 1 for men
    assert "label 'billing'" in res.figures["eo_difference"].note
    assert res.details["columns"]["gender"]["delivery"]["eo_difference"] == 0.0
    only = PROBES.create("fairness", make_ctx(ThreeWay(), frame, EvaluateConfig(bootstrap=0,
                                                                               favourable_label="delivery")))
    assert only.figures["eo_difference"].value == 0.0 and list(only.details["columns"]["gender"]) == ["delivery"]


def _planted(secrets: list[str], label: str = "1") -> dict:
    template = "my account number is {secret}"
    return {"template": template, "digits": 6,
            "canaries": [{"secret": s, "text": template.format(secret=s), "label": label, "row_ids": [0]}
                         for s in secrets]}


def test_canary_exposure_separates_a_memorising_model_from_one_that_is_not() -> None:
    from steward.data.canaries import exposure

    planted = _planted(["482913", "100734"])
    cfg = EvaluateConfig(bootstrap=50, privacy={"canary_candidates": 255})
    rows = sentiment_rows(60)
    canary_rows = pd.DataFrame([{"text": c["text"], "label": "1"} for c in planted["canaries"]])
    memoriser = _run("privacy", make_ctx(Memoriser(canary_rows), rows, cfg=cfg, train=rows, canaries=planted))
    assert memoriser.figures["canary_exposure_max"].value == pytest.approx(8.0)  # log2(256): ranked first
    assert memoriser.details["canaries"]["ranked_first"] == 2
    blind = _run("privacy", make_ctx(KeywordSentiment(), rows, cfg=cfg, train=rows, canaries=planted))
    # every secret scores the same: rank is the middle, exposure log2(256) - log2(128.5) ~ 1 bit
    assert blind.figures["canary_exposure_max"].value == pytest.approx(1.0, abs=0.01)
    gate = GateSettings(max_canary_exposure=3.0)
    assert judge(gate, {"privacy": blind.to_dict()}, "classification")[0].passed
    assert not judge(gate, {"privacy": memoriser.to_dict()}, "classification")[0].passed
    bits, rank = exposure(0.5, np.array([0.1, 0.2, 0.9, 1.0]))
    assert rank == 3.0 and bits == pytest.approx(np.log2(5) - np.log2(3))


def test_without_canaries_the_exposure_gate_fails_as_unmeasured() -> None:
    rows = sentiment_rows(60)
    res = _run("privacy", make_ctx(KeywordSentiment(), rows, train=rows))
    assert "canary_exposure_max" not in res.figures and "none planted" in res.details["canaries"]
    (g,) = judge(GateSettings(max_canary_exposure=3.0), {"privacy": res.to_dict()}, "classification")
    assert not g.passed and g.measured is None
