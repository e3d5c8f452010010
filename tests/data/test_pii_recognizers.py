"""Tables of positive and negative cases per recognizer, plus validator properties."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steward.data.config import PIIConfig
from steward.data.pii import validators as v
from steward.data.pii.engine import PIIEngine

ENGINE = PIIEngine(PIIConfig(ner=False))


def found(text: str) -> set[tuple[str, str]]:
    return {(f.entity_type, text[f.start:f.end]) for f in ENGINE.detect([text])[0]}


POSITIVE = [
    ("write to jane.doe+test@mail.example.co.uk today", "EMAIL_ADDRESS", "jane.doe+test@mail.example.co.uk"),
    ("card 4111 1111 1111 1111 expired", "CREDIT_CARD", "4111 1111 1111 1111"),
    ("amex 378282246310005 please", "CREDIT_CARD", "378282246310005"),
    ("IBAN GB82 WEST 1234 5698 7654 32 thanks", "IBAN_CODE", "GB82 WEST 1234 5698 7654 32"),
    ("pay DE89370400440532013000 now", "IBAN_CODE", "DE89370400440532013000"),
    ("my iban is gb82west12345698765432", "IBAN_CODE", "gb82west12345698765432"),  # lower-case chat
    # US military addresses (USPS Publication 28)
    ("ship it to USNS Miller FPO AE 09510 please", "STREET_ADDRESS", "USNS Miller FPO AE 09510"),
    ("USS Lorenzen\nFPO AP 96349-1234", "STREET_ADDRESS", "USS Lorenzen\nFPO AP 96349-1234"),
    ("Unit 3245 Box 1234, DPO AA 34021", "STREET_ADDRESS", "Unit 3245 Box 1234, DPO AA 34021"),
    ("PSC 1234, Box 5678 APO AE 09021", "STREET_ADDRESS", "PSC 1234, Box 5678 APO AE 09021"),
    # The rest of an address after its street line, when it ends in a country or a postcode
    ("at 6076 Piroska u. 97. Porto Alegre , RS  Brazil 95828", "STREET_ADDRESS",
     "6076 Piroska u. 97. Porto Alegre , RS  Brazil 95828"),
    ("> 83854 Strickstrasse 61 > Suite 292 > Zuoz > Switzerland 53730", "STREET_ADDRESS",
     "83854 Strickstrasse 61 > Suite 292 > Zuoz > Switzerland 53730"),
    ("He lives at 12 Baker Street, London NW1 6XE", "STREET_ADDRESS", "12 Baker Street, London NW1 6XE"),
    ("at 12 Oak Street, Springfield, IL 62704 today", "STREET_ADDRESS", "12 Oak Street, Springfield, IL 62704"),
    ("Send it to 12 Baker Street, Anna Berg will sign.", "STREET_ADDRESS", "12 Baker Street"),  # no ending: kept apart
    ("my ssn is 536-22-8726", "US_SSN", "536-22-8726"),
    ("social security number 078051121", "US_SSN", "078051121"),
    ("logged in from 192.168.10.254 yesterday", "IP_ADDRESS", "192.168.10.254"),
    ("host 2001:0db8:85a3:0000:0000:8a2e:0370:7334 down", "IP_ADDRESS", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
    ("call me on (212) 555-0147 after 5", "PHONE_NUMBER", "(212) 555-0147"),
    ("mobile +44 7700 900123", "PHONE_NUMBER", "+44 7700 900123"),
    # Shapes the grouped pattern missed: extensions, a trunk prefix, sentence punctuation or a label after it,
    # and short local numbers, which count beside a context word only.
    ("Desk: (898)666-3621x0135 Fax: none", "PHONE_NUMBER", "(898)666-3621x0135"),
    ("office 345-899-3560 ext. 4587", "PHONE_NUMBER", "345-899-3560 ext. 4587"),
    ("my registered number is 905-674-3793. Could you check", "PHONE_NUMBER", "905-674-3793"),
    ("registered on 0961-7596216 since May", "PHONE_NUMBER", "0961-7596216"),
    ("085 175 7641-Office, the other one is for faxes", "PHONE_NUMBER", "085 175 7641"),
    ("Phone: 467 3395  E-mail: none", "PHONE_NUMBER", "467 3395"),
    ("can someone call me on 9472 7916? thanks", "PHONE_NUMBER", "9472 7916"),
    ("Fax: 5403926876", "PHONE_NUMBER", "5403926876"),
    ("reach me on +44 20 7946 0958 x1234", "PHONE_NUMBER", "+44 20 7946 0958 x1234"),  # ext. digits not counted
    ("see https://example.com/a/b?c=1.", "URL", "https://example.com/a/b?c=1"),
    ("visit www.example.org for more", "URL", "www.example.org"),
    ("ship to 742 Evergreen Terrace, Springfield", "STREET_ADDRESS", "742 Evergreen Terrace"),
    ("deliver to 1600 Pennsylvania Avenue NW", "STREET_ADDRESS", "1600 Pennsylvania Avenue"),
    ("wohnt in der Augsburger Strasse 36", "STREET_ADDRESS", "Augsburger Strasse 36"),
    ("please ask for Dr. Miriam Okafor at the desk", "PERSON", "Miriam Okafor"),
    ("Hello, my name is Siiri", "PERSON", "Siiri"),
]

NEGATIVE = [
    ("card 4111 1111 1111 1112 fails luhn", "CREDIT_CARD"),
    ("IBAN GB82 WEST 1234 5698 7654 33 bad check digits", "IBAN_CODE"),
    ("iban gb82 west 1234 5698 7654 33 in lower case, still a bad check", "IBAN_CODE"),
    ("the uss enterprise fpo is fiction", "STREET_ADDRESS"),
    ("ssn 000-12-3456 has an invalid area", "US_SSN"),
    ("ssn 666-12-3456 has an invalid area", "US_SSN"),
    ("ssn 123-45-6789 is the well-known example number", "US_SSN"),
    ("order 123456789 shipped", "US_SSN"),  # a bare 9-digit number needs context
    ("version 1.2.3.4567 released", "IP_ADDRESS"),
    ("address 999.10.10.10 is not an IP", "IP_ADDRESS"),
    ("meeting on 12-05-2019 at noon", "PHONE_NUMBER"),
    ("we sold 2019 2020 units", "PHONE_NUMBER"),
    ("the price is 1,299.00 dollars", "PHONE_NUMBER"),
    ("On 2007-01-17 23:08:55 the order was placed", "PHONE_NUMBER"),  # a timestamp
    ("Date: 2003-08-28 12:13:52 Name: Ann", "PHONE_NUMBER"),
    ("call me about invoice 2019-11-04 please", "PHONE_NUMBER"),  # a date beside a context word
    ("please contact us before 17-01-2007", "PHONE_NUMBER"),  # ... day first
    ("call me on 17.01.2007", "PHONE_NUMBER"),
    ("we shipped 467 3395 units last year", "PHONE_NUMBER"),  # a short number without context
    ("reference 5403926876 on the parcel", "PHONE_NUMBER"),  # ten digits without context
    ("email me at home", "EMAIL_ADDRESS"),
    ("What's your name? It's fine", "PERSON"),
    ("I read it on the website yesterday", "URL"),
]


@pytest.mark.parametrize(("text", "entity", "value"), POSITIVE)
def test_positive(text: str, entity: str, value: str) -> None:
    assert (entity, value) in found(text)


@pytest.mark.parametrize(("text", "entity"), NEGATIVE)
def test_negative(text: str, entity: str) -> None:
    assert entity not in {e for e, _ in found(text)}


def test_findings_explain_why() -> None:
    (f,) = ENGINE.detect(["card number 4111111111111111"])[0]
    assert f.entity_type == "CREDIT_CARD" and "luhn check passed" in f.explanation and "context word 'card'" in f.explanation


def _luhn_complete(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


@given(st.text(alphabet="0123456789", min_size=12, max_size=18), st.integers(0, 17), st.integers(1, 9))
def test_luhn_accepts_valid_and_rejects_single_digit_errors(body: str, pos: int, delta: int) -> None:
    number = _luhn_complete(body)
    assert v.luhn(number)
    i = pos % len(number)
    corrupted = number[:i] + str((int(number[i]) + delta) % 10) + number[i + 1:]
    assert not v.luhn(corrupted)  # Luhn catches every single-digit error


def test_iban_and_ssn_validators() -> None:
    assert v.iban("GB82WEST12345698765432") and not v.iban("GB82WEST12345698765431")
    assert not v.iban("XX82WEST12345698765432")
    assert v.us_ssn("078-05-1121") and not v.us_ssn("900-12-3456") and not v.us_ssn("123-00-4567")
