import random
from pathlib import Path

import pandas as pd

from steward.train import run
from steward.train.augment import IDENTITY_PAIRS, augment, counterfactual, perturb, swap_map
from tests.train.conftest import copy_run, train_cfg


def test_counterfactual_swaps_both_ways_and_keeps_case() -> None:
    m = swap_map(IDENTITY_PAIRS)
    assert counterfactual("My husband called; He said his card failed.", m) == \
        "My wife called; She said her card failed."
    assert counterfactual("SHE asked her mother", m) == "HE asked his father"
    assert counterfactual("the shepherd hesitated", m) is None  # whole words only


def test_perturb_changes_text_but_little() -> None:
    rng = random.Random(1)
    text = "please cancel my subscription at the end of the month"
    outs = {perturb(text, rng) for _ in range(50)}
    assert text not in outs and len(outs) > 10
    longest = max(len(w) for w in text.split()) + 1  # at most one word (and its space) goes
    assert all(abs(len(o) - len(text)) <= longest for o in outs)


def test_augment_adds_labelled_copies() -> None:
    train = pd.DataFrame({"row_id": [1, 2, 3, 4], "text": ["he wants a refund", "my wife lost her card",
                                                             "no identity words here", "where is the parcel"],
                          "label": ["r", "b", "d", "d"], "sample_weight": [1.0, 2.0, 1.0, 1.0]})
    out, counts = augment(train, task="classification", counterfactual_on=True, adversarial_on=True, pairs=None,
                          ratio=0.5, seed=0)
    assert counts == {"counterfactual": 2, "adversarial": 2}
    cf = out[out["augmented"] == "counterfactual"]
    assert cf["text"].tolist() == ["she wants a refund", "my husband lost his card"]
    assert cf["label"].tolist() == ["r", "b"] and cf["sample_weight"].tolist() == [1.0, 2.0]


def test_train_with_augmentation_records_counts(demo_data_run: Path, tiny_model: Path, tmp_path: Path) -> None:
    run_dir = copy_run(demo_data_run, tmp_path / "run")
    m = run(train_cfg(run_dir, tiny_model, epochs=1, augment={"counterfactual": True, "adversarial": True})).manifest
    assert m["augmentation"]["counterfactual"] > 0 and m["augmentation"]["adversarial"] > 0
    assert m["train_rows"] > m["augmentation"]["counterfactual"] + m["augmentation"]["adversarial"]
