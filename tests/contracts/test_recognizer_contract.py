"""Every registered PII recognizer passes the same contract."""

import pytest

from steward.data.pii.recognizers import RECOGNIZERS
from steward.types import Finding

SAMPLES = [
    "", " ", "plain text with nothing in it",
    "Mr. John Smith at 10 Downing Street, card 4111 1111 1111 1111, ssn 536-22-8726, ip 10.0.0.1, "
    "mail a@b.co, call +1 212 555 0147, IBAN GB82 WEST 1234 5698 7654 32, https://x.org/y",
    "ünïcödé Ωμέγα 名前 " * 20,
]


@pytest.mark.parametrize("name", RECOGNIZERS.names())
def test_recognizer_contract(name: str) -> None:
    rec = RECOGNIZERS.create(name)
    assert rec.entity == name
    for text in SAMPLES:
        for f in rec.analyze(text):
            assert isinstance(f, Finding)
            assert f.entity_type == name
            assert 0 <= f.start < f.end <= len(text)
            assert 0.0 <= f.score <= 1.0
            assert f.explanation and f.detector == f"regex:{name}"
    assert rec.analyze("") == []


def test_every_recognizer_fires_on_the_kitchen_sink() -> None:
    hits = {f.entity_type for n in RECOGNIZERS.names() for f in RECOGNIZERS.create(n).analyze(SAMPLES[3])}
    assert hits == set(RECOGNIZERS.names())
