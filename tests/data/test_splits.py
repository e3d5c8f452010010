import numpy as np
import pandas as pd
import pytest

from steward.data.config import SplitConfig
from steward.data.splits import assign_splits, from_column


def test_stratified_split_sizes_and_label_shares_are_kept() -> None:
    frame = pd.DataFrame({"label": ["a"] * 800 + ["b"] * 200})
    names = assign_splits(frame, SplitConfig(validation=0.1, test=0.1, seed=1), stratify=True)
    counts = pd.Series(names).value_counts().to_dict()
    assert counts == {"train": 800, "validation": 100, "test": 100}
    for split in ("validation", "test"):
        assert (frame["label"][names == split] == "b").sum() == 20
    again = assign_splits(frame, SplitConfig(validation=0.1, test=0.1, seed=1), stratify=True)
    assert (names == again).all()  # same seed, same split
    other = assign_splits(frame, SplitConfig(validation=0.1, test=0.1, seed=2), stratify=True)
    assert not (names == other).all()


@pytest.mark.parametrize("n", [1, 2, 3, 5, 9])
def test_tiny_and_uneven_sets_never_fail(n: int) -> None:
    frame = pd.DataFrame({"label": [f"l{i}" for i in range(n)]})  # every label unique: not stratifiable
    names = assign_splits(frame, SplitConfig(validation=0.2, test=0.2), stratify=True)
    assert len(names) == n and set(names) <= {"train", "validation", "test"}


def test_user_split_column_aliases() -> None:
    names, valid = from_column(pd.Series(["train", "Dev", "TEST", "val", "holdout"]))
    assert names.tolist()[:4] == ["train", "validation", "test", "validation"]
    assert valid.tolist() == [True, True, True, True, False]
    assert isinstance(names, np.ndarray)
