import numpy as np
import pandas as pd

from steward.data.balance import report, resample, sample_weights, term_associations
from steward.data.config import BalanceConfig


def _frame() -> pd.DataFrame:
    rows = []
    for i in range(200):
        label = "refund" if i < 100 else "billing"
        text = f"message {i} about my order"
        if label == "refund" and i % 2 == 0:
            text += " my wife wants this sorted"
        if label == "billing" and i % 20 == 0:
            text += " my wife asked"
        rows.append({"row_id": i, "text": text, "label": label, "gender": "f" if i % 4 else "m"})
    return pd.DataFrame(rows)


def test_term_association_finds_the_spurious_term() -> None:
    f = _frame()
    assoc = term_associations(f["text"], f["label"], BalanceConfig())
    top = assoc[0]
    assert (top["term"], top["label"]) == ("wife", "refund")
    assert top["p_label_given_term"] > 0.8 and top["p_value"] < 0.01
    assert not [a for a in assoc if a["term"] == "wife" and a["label"] == "billing"]


def test_weights_are_inverse_cell_frequency_with_mean_one() -> None:
    f = pd.DataFrame({"row_id": range(4), "label": ["a", "a", "a", "b"], "g": ["x", "x", "y", "x"]})
    w = sample_weights(f, ["g"], BalanceConfig())
    assert np.isclose(w.mean(), 1.0)
    assert np.isclose(w[0], w[1]) and w[2] > w[0] and np.isclose(w[2], w[3])
    w_label = sample_weights(f, ["g"], BalanceConfig(weighting="label"))
    assert np.isclose(w_label[3] / w_label[0], 3.0)
    assert (sample_weights(f, ["g"], BalanceConfig(weighting="none")) == 1).all()
    # raw weights are a: 4/(2*3), b: 4/(2*1) = 2; clipping at 1 (before normalising) shrinks the ratio to 1.5
    capped = sample_weights(f, ["g"], BalanceConfig(weighting="label", max_weight=1.0))
    assert np.isclose(capped[3] / capped[0], 1.5) and np.isclose(capped.mean(), 1.0)


def test_resample_balances_labels() -> None:
    f = pd.DataFrame({"row_id": range(10), "label": ["a"] * 8 + ["b"] * 2})
    assert resample(f, "oversample", 0)["label"].value_counts().to_dict() == {"a": 8, "b": 8}
    assert resample(f, "undersample", 0)["label"].value_counts().to_dict() == {"a": 2, "b": 2}
    assert resample(f, "none", 0) is f


def test_report_names_small_groups() -> None:
    f = _frame()
    f.loc[:4, "gender"] = "nb"
    r = report(f, ["gender"], BalanceConfig(min_group_size=10), "classification")
    assert r["groups"]["gender"]["too_small_to_judge"] == ["nb"]
    assert r["labels"]["imbalance_ratio"] == 1.0
    assert r["groups"]["gender"]["label_by_group"]["refund"]["nb"] == 5


def test_single_label_or_ubiquitous_term_has_no_association() -> None:
    f = _frame().assign(label="only")
    assert term_associations(f["text"], f["label"], BalanceConfig()) == []
    g = _frame().assign(text="my wife again")
    assert term_associations(g["text"], g["label"], BalanceConfig()) == []
