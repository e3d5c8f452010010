"""The toxicity screen's fast path gives exactly the library's probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from steward.data.screen import toxicity_scores


def test_fast_path_equals_alt_profanity_check(shared_data) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd
    from profanity_check import predict_prob

    tweets = pd.read_csv(shared_data / "hate_offensive" / "labeled_data.csv")["tweet"].head(300).tolist()
    texts = [*tweets, "thanks for the quick help", "you stupid idiot", "", "ok"]
    np.testing.assert_allclose(toxicity_scores(texts), predict_prob(texts), rtol=0, atol=1e-12)
    assert toxicity_scores([]).shape == (0,)
    # The one-text path (what the service's guard calls) skips the sparse matrix; same probabilities.
    one = np.array([toxicity_scores([t])[0] for t in texts])
    np.testing.assert_allclose(one, predict_prob(texts), rtol=0, atol=1e-12)


@pytest.mark.parametrize("text, toxic", [("you stupid fucking idiot", True), ("thank you, that fixed it", False)])
def test_scores_separate_abuse_from_politeness(text: str, toxic: bool) -> None:
    assert (toxicity_scores([text])[0] > 0.8) == toxic
