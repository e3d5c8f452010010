from steward.data.config import PIIConfig
from steward.data.pii.operators import (
    OperatorContext,
    PIIKey,
    apply_operators,
    apply_to_tagged_tokens,
    pseudonym,
    surrogate_name,
)
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


def test_tagged_tokens_follow_their_tag_and_detections_touch_only_untagged_ones() -> None:
    tokens = ["Peter", "Blackburn", "met", "Bovine", "Spongiform", "Encephalopathy", "experts", "at",
              "jane@example.com", "PRICE", "100.92"]
    tags = ["B-PER", "I-PER", "O", "B-MISC", "I-MISC", "I-MISC", "O", "O", "O", "O", "O"]
    text = " ".join(tokens)
    findings = [Finding("PERSON", 0, 15, 0.85, "spacy:ner"),  # the tagged person
                Finding("PERSON", text.index("Bovine"), text.index(" experts"), 0.85, "spacy:ner"),  # a MISC span
                Finding("EMAIL_ADDRESS", text.index("jane"), text.index(" PRICE"), 1.0, "regex"),
                Finding("STREET_ADDRESS", text.index("PRICE"), len(text), 0.6, "regex")]  # a false positive
    new, changes = apply_to_tagged_tokens(tokens, tags, findings, ctx())
    assert len(new) == len(tokens)
    assert new[0] != "Peter" and new[1] != "Blackburn" and new[0][0].isupper() and "<" not in new[0] + new[1]
    assert new[3:6] == ["Bovine", "Spongiform", "Encephalopathy"]  # a label covers them: never rewritten
    assert new[8] == "<EMAIL_ADDRESS>" and new[9:] == ["PRICE", "100.92"]
    actions = {(c["entity"], c["tag"], c["action"]) for c in changes}
    assert actions == {("PER", "PER", "pseudonymise"), ("PERSON", "MISC", "kept_labelled"), ("EMAIL_ADDRESS", "O", "redact"),
                       ("STREET_ADDRESS", "O", "ignored_in_ner")}


def test_surrogate_names_are_consistent_keyed_and_keep_case() -> None:
    k1, k2 = PIIKey(b"one", False), PIIKey(b"two", False)
    a, b = surrogate_name("Blackburn", first=False, key=k1), surrogate_name("blackburn", first=False, key=k1)
    assert a.casefold() == b.casefold() and a[0].isupper() and b[0].islower()
    assert surrogate_name("BLACKBURN", first=False, key=k1).isupper()
    names = {surrogate_name(f"Person{i}", first=False, key=k1) for i in range(200)}
    assert len(names) > 150  # spread over the list, not a handful of names
    differs = sum(surrogate_name(f"P{i}", first=True, key=k1) != surrogate_name(f"P{i}", first=True, key=k2)
                  for i in range(50))
    assert differs > 40  # another key, other surrogates


def test_ephemeral_key_when_env_missing(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("STEWARD_PII_KEY", raising=False)
    assert PIIKey.from_env("STEWARD_PII_KEY").ephemeral
    monkeypatch.setenv("STEWARD_PII_KEY", "k")
    assert PIIKey.from_env("STEWARD_PII_KEY") == PIIKey(b"k", False)


def test_a_finding_across_a_label_and_untagged_tokens_rewrites_only_the_untagged_part() -> None:
    tokens = ["call", "Acme", "+44", "20", "7946", "0958"]  # a detector's span runs into the ORG name
    tags = ["O", "B-ORG", "O", "O", "O", "O"]
    text = " ".join(tokens)
    new, changes = apply_to_tagged_tokens(tokens, tags, [Finding("PHONE_NUMBER", text.index("Acme"), len(text),
                                                                 0.9, "regex")], ctx())
    assert new[:2] == ["call", "Acme"] and all(t == "<PHONE_NUMBER>" for t in new[2:])
    assert {c["action"] for c in changes} == {"kept_labelled", "redact"}


def test_a_surrogate_is_never_the_real_name() -> None:
    from steward.data.pii.operators import _name_lists

    firsts, lasts = _name_lists()
    key = PIIKey(b"k", False)
    assert all(surrogate_name(n, first=False, key=key).casefold() != n.casefold() for n in lasts)
    assert all(surrogate_name(n, first=True, key=key).casefold() != n.casefold() for n in firsts)
