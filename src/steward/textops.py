"""Text transformations shared by the train stage (augmentation) and the evaluate stage (probes).

Identity-term swaps (counterfactual fairness) and character/word perturbations (robustness) must be the
same code in both places: a model trained on swapped copies is then tested with exactly those swaps.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

# Built-in identity pairs by category, swapped in both directions. Deliberately small and unambiguous;
# "her" maps to "his" (the possessive reading), which is wrong for the object reading ("I told her") — an
# accepted imprecision of word-level swaps, noted in the docs. The evaluate stage reports flip rates per
# category and pair; the train stage's augmentation uses all of them.
IDENTITY_PAIRS_BY_CATEGORY: dict[str, list[tuple[str, str]]] = {
    "gender": [
        ("he", "she"), ("his", "her"), ("him", "her"), ("himself", "herself"), ("man", "woman"), ("men", "women"),
        ("boy", "girl"), ("boys", "girls"), ("male", "female"), ("husband", "wife"), ("father", "mother"),
        ("dad", "mom"), ("son", "daughter"), ("brother", "sister"), ("boyfriend", "girlfriend"), ("mr", "mrs"),
        ("gentleman", "lady"), ("king", "queen"), ("grandfather", "grandmother"), ("uncle", "aunt"),
    ],
    "religion": [("christian", "muslim"), ("christians", "muslims"), ("church", "mosque"), ("jewish", "hindu")],
    "nationality": [("american", "mexican"), ("british", "nigerian"), ("german", "chinese"), ("french", "indian")],
    "race_ethnicity": [("european", "african"), ("caucasian", "asian")],
    "age": [("young", "old")],
}
IDENTITY_PAIRS: list[tuple[str, str]] = [p for pairs in IDENTITY_PAIRS_BY_CATEGORY.values() for p in pairs]

HOMOGLYPHS = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "i": "і"}  # Latin -> Cyrillic


def swap_map(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for a, b in pairs:
        out.setdefault(a.lower(), b.lower())
        out.setdefault(b.lower(), a.lower())
    return out


def match_case(src: str, word: str) -> str:
    if src.isupper() and len(src) > 1:
        return word.upper()
    if src[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def term_pattern(terms: Sequence[str]) -> re.Pattern[str]:
    """Whole-word, case-insensitive match of any term (longest first, so "himself" beats "him")."""
    return re.compile(r"\b(" + "|".join(map(re.escape, sorted(terms, key=len, reverse=True))) + r")\b", re.IGNORECASE)


def counterfactual(text: str, mapping: dict[str, str]) -> str | None:
    """The text with every identity term swapped, or None when it has none."""
    rx = term_pattern(list(mapping))
    if not rx.search(text):
        return None
    return rx.sub(lambda m: match_case(m.group(0), mapping[m.group(0).lower()]), text)


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


