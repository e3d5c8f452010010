"""Training-data augmentation: counterfactual identity swaps and adversarial perturbations.

Both add copies of training rows with the label kept, so a model sees that the label does not depend on
"he" versus "she", or on a typo. Validation and test are never augmented.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import pandas as pd

from steward.textops import (
    IDENTITY_PAIRS,
    counterfactual,
    match_case,
    perturb,
    swap_map,
)

__all__ = ["IDENTITY_PAIRS", "augment", "counterfactual", "perturb", "swap_map"]


def augment(train: pd.DataFrame, *, task: str, counterfactual_on: bool, adversarial_on: bool,
            pairs: Sequence[tuple[str, str]] | None, ratio: float, seed: int) -> tuple[pd.DataFrame, dict[str, int]]:
    """Return train plus augmented copies (``augmented`` column says which) and counts per kind."""
    parts = [train.assign(augmented="")]
    counts = {"counterfactual": 0, "adversarial": 0}
    if counterfactual_on:
        mapping = swap_map(pairs if pairs is not None else IDENTITY_PAIRS)
        if task == "ner":
            # Token-for-token swaps keep the tags aligned.
            new_tokens = [[match_case(t, mapping[t.lower()]) if t.lower() in mapping else t for t in toks]
                          for toks in train["tokens"]]
            changed = [list(a) != list(b) for a, b in zip(new_tokens, train["tokens"], strict=True)]
            cf = train[changed].assign(tokens=[t for t, c in zip(new_tokens, changed, strict=True) if c])
            cf = cf.assign(text=[" ".join(t) for t in cf["tokens"]])
        else:
            swapped = [counterfactual(t, mapping) for t in train["text"]]
            keep = [s is not None for s in swapped]
            cf = train[keep].assign(text=[s for s in swapped if s is not None])
        counts["counterfactual"] = len(cf)
        parts.append(cf.assign(augmented="counterfactual"))
    if adversarial_on and task != "ner":
        rng = random.Random(seed)
        picked = train.sample(frac=ratio, random_state=seed)
        adv = picked.assign(text=[perturb(t, rng) for t in picked["text"]])
        counts["adversarial"] = len(adv)
        parts.append(adv.assign(augmented="adversarial"))
    return pd.concat(parts, ignore_index=True), counts
