"""NER (sub-word alignment, seqeval) and multi-label classification on the tiny model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from steward.config import parse_config
from steward.data import run as run_data
from steward.train import run
from steward.train.config import TrainConfig
from steward.train.data import IGNORE_INDEX, TrainData, encode
from tests.conftest import write_csv
from tests.train.conftest import train_cfg


def test_subword_alignment_labels_first_piece_only(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    frame = pd.DataFrame({"tokens": [["Blackburn", "visited", "Antananarivo"]], "tags": [["B-PER", "O", "B-LOC"]],
                          "sample_weight": [1.0]})
    data = TrainData("ner", False, ["O", "B-LOC", "B-PER"], frame, frame, {})
    ex = encode(frame, data, tok, TrainConfig())[0]
    pieces = tok.convert_ids_to_tokens(ex["input_ids"])
    labelled = [(p, lab) for p, lab in zip(pieces, ex["labels"], strict=True) if lab != IGNORE_INDEX]
    assert [lab for _, lab in labelled] == [2, 0, 1]  # one label per word
    assert next(p for p, _ in labelled) == pieces[1]  # the first piece after [CLS]
    assert ex["labels"][0] == IGNORE_INDEX and ex["labels"][-1] == IGNORE_INDEX  # [CLS], [SEP]
    assert sum(1 for lab in ex["labels"] if lab == IGNORE_INDEX) > 2  # continuation pieces ignored


def test_ner_on_real_conll(tiny_model: Path, tmp_path: Path, shared_data: Path) -> None:
    lines = (shared_data / "conll2003" / "train.txt").read_text().split("\n\n")[:400]
    src = tmp_path / "train.conll"
    src.write_text("\n\n".join(lines) + "\n")
    run_dir = tmp_path / "run"
    run_data(parse_config({"run_dir": str(run_dir), "data": {
        "input": {"path": str(src), "task": "ner"}, "pii": {"enabled": False}, "quality": {"min_chars": 1}}}))
    m = run(train_cfg(run_dir, tiny_model, method="full", epochs=1, learning_rate=1e-3)).manifest
    assert m["task"] == "ner" and m["best_metric"]["name"] == "entity_f1"
    assert {"entity_f1", "entity_precision", "entity_recall"} <= set(m["history"][0])
    assert "B-PER" in m["labels"] and m["labels"][0] == "O"


def test_multi_label(tiny_model: Path, tmp_path: Path) -> None:
    import random

    rng = random.Random(0)
    words = {"billing": "invoice charge bill", "refund": "refund money back", "delivery": "parcel courier late"}
    rows = []
    for i in range(240):
        chosen = rng.sample(sorted(words), k=rng.choice([1, 2]))
        text = " ".join(rng.choice(words[c].split()) for c in chosen for _ in range(3)) + f" ticket {i}"
        rows.append([text, "|".join(sorted(chosen))])
    src = write_csv(tmp_path / "ml.csv", ["text", "label"], rows)
    run_dir = tmp_path / "run"
    run_data(parse_config({"run_dir": str(run_dir), "data": {"input": {"path": str(src)}, "pii": {"ner": False},
                                                              "dedup": {"near": False}}}))
    m = run(train_cfg(run_dir, tiny_model, method="full", epochs=1, multi_label_separator="|")).manifest
    assert m["multi_label"] and m["labels"] == ["billing", "delivery", "refund"]
    assert {"accuracy", "macro_f1", "micro_f1"} <= set(m["history"][0])
