from steward.config.models import PIIConfig
from steward.data.pii.operators import OperatorContext, PIIKey, apply_operators, apply_to_tokens, pseudonym
from steward.types import Finding

TEXT = "mail jane@example.com or call 212-555-0147, card 4111111111111111"
FINDINGS = [
    Finding("EMAIL_ADDRESS", 5, 21, 0.95, "regex:EMAIL_ADDRESS", "pattern email"),
    Finding("PHONE_NUMBER", 30, 42, 0.8, "regex:PHONE_NUMBER", "pattern phone"),
    Finding("CREDIT_CARD", 49, 65, 0.85, "regex:CREDIT_CARD", "luhn"),
]
KEY = PIIKey(b"secret-key", ephemeral=False)


def ctx(**kw: object) -> OperatorContext:
    return OperatorContext(PIIConfig(**kw), KEY)


def test_redact_default_and_change_records_hold_no_values() -> None:
    new, changes = apply_operators(TEXT, FINDINGS, ctx())
    assert new == "mail <EMAIL_ADDRESS> or call <PHONE_NUMBER>, card <CREDIT_CARD>"
    assert [c["entity"] for c in changes] == ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD"]
    assert "jane" not in repr(changes) and "4111" not in repr(changes)


def test_mask_keeps_last_digits_only_for_numbers() -> None:
    new, _ = apply_operators(TEXT, FINDINGS, ctx(default_action="mask"))
    assert new == "mail ****@*******.*** or call ***-***-0147, card ************1111"


def test_pseudonyms_are_stable_keyed_and_per_type() -> None:
    a = pseudonym("Jane Doe", "PERSON", KEY)
    assert a == pseudonym("  jane   DOE ", "PERSON", KEY)  # same person, same token
    assert a != pseudonym("Jane Doe", "PERSON", PIIKey(b"other", False))  # needs the key
    assert a.startswith("<PERSON_") and "Jane" not in a
    new, _ = apply_operators(TEXT, FINDINGS, ctx(actions={"EMAIL_ADDRESS": "pseudonymise"}))
    assert new.startswith("mail <EMAIL_ADDRESS_") and "<PHONE_NUMBER>" in new


def test_flag_and_drop_leave_text_unchanged() -> None:
    for action in ("flag", "drop"):
        new, changes = apply_operators(TEXT, FINDINGS, ctx(default_action=action))
        assert new == TEXT and {c["action"] for c in changes} == {action}


def test_token_rewrite_keeps_alignment() -> None:
    tokens = ["Peter", "Blackburn", "visited", "Paris"]
    findings = [Finding("PERSON", 0, 15, 0.85, "spacy:ner")]
    out = apply_to_tokens(tokens, findings, ctx())
    assert out == ["<PERSON>", "<PERSON>", "visited", "Paris"] and len(out) == len(tokens)


def test_ephemeral_key_when_env_missing(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("STEWARD_PII_KEY", raising=False)
    assert PIIKey.from_env("STEWARD_PII_KEY").ephemeral
    monkeypatch.setenv("STEWARD_PII_KEY", "k")
    assert PIIKey.from_env("STEWARD_PII_KEY") == PIIKey(b"k", False)
