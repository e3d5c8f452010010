"""Training-data augmentation: counterfactual identity swaps and adversarial perturbations.

Both add copies of training rows with the label kept, so a model sees that the label does not depend on
"he" versus "she", or on a typo. Validation and test are never augmented.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

import pandas as pd

# Built-in identity pairs, swapped in both directions. Deliberately small and unambiguous; "her" maps to
# "his" (the possessive reading), which is wrong for the object reading ("I told her") — an accepted
# imprecision of word-level swaps, noted in the docs.
IDENTITY_PAIRS: list[tuple[str, str]] = [
    ("he", "she"), ("his", "her"), ("him", "her"), ("himself", "herself"), ("man", "woman"), ("men", "women"),
    ("boy", "girl"), ("boys", "girls"), ("male", "female"), ("husband", "wife"), ("father", "mother"),
    ("dad", "mom"), ("son", "daughter"), ("brother", "sister"), ("boyfriend", "girlfriend"), ("mr", "mrs"),
    ("gentleman", "lady"), ("king", "queen"), ("grandfather", "grandmother"), ("uncle", "aunt"),
    ("christian", "muslim"), ("church", "mosque"), ("jewish", "hindu"), ("young", "old"),
]

HOMOGLYPHS = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "i": "і"}  # Latin -> Cyrillic


def swap_map(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for a, b in pairs:
        out.setdefault(a.lower(), b.lower())
        out.setdefault(b.lower(), a.lower())
    return out


def _match_case(src: str, word: str) -> str:
    if src.isupper() and len(src) > 1:
        return word.upper()
    if src[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def counterfactual(text: str, mapping: dict[str, str]) -> str | None:
    """The text with every identity term swapped, or None when it has none."""
    rx = re.compile(r"\b(" + "|".join(map(re.escape, sorted(mapping, key=len, reverse=True))) + r")\b", re.I)
    if not rx.search(text):
        return None
    return rx.sub(lambda m: _match_case(m.group(0), mapping[m.group(0).lower()]), text)


def perturb(text: str, rng: random.Random) -> str:
    """One character- or word-level perturbation: a typo, a homoglyph, an invisible character, a dropped word."""
    words = text.split()
    if not words:
        return text
    kind = rng.choice(["swap", "delete", "homoglyph", "zero_width", "drop_word"])
    i = rng.randrange(len(words))
    w = words[i]
    if kind == "drop_word" and len(words) > 3:
        del words[i]
    elif kind == "swap" and len(w) > 3:
        j = rng.randrange(len(w) - 1)
        words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    elif kind == "delete" and len(w) > 3:
        j = rng.randrange(len(w))
        words[i] = w[:j] + w[j + 1:]
    elif kind == "homoglyph" and any(c in HOMOGLYPHS for c in w):
        j = next(k for k, c in enumerate(w) if c in HOMOGLYPHS)
        words[i] = w[:j] + HOMOGLYPHS[w[j]] + w[j + 1:]
    else:
        words[i] = w[: len(w) // 2] + "\u200b" + w[len(w) // 2:]
    return " ".join(words)


def augment(train: pd.DataFrame, *, task: str, counterfactual_on: bool, adversarial_on: bool,
            pairs: Sequence[tuple[str, str]] | None, ratio: float, seed: int) -> tuple[pd.DataFrame, dict[str, int]]:
    """Return train plus augmented copies (``augmented`` column says which) and counts per kind."""
    parts = [train.assign(augmented="")]
    counts = {"counterfactual": 0, "adversarial": 0}
    if counterfactual_on:
        mapping = swap_map(pairs if pairs is not None else IDENTITY_PAIRS)
        if task == "ner":
            # Token-for-token swaps keep the tags aligned.
            new_tokens = [[_match_case(t, mapping[t.lower()]) if t.lower() in mapping else t for t in toks]
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
