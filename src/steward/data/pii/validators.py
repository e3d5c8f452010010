"""Checksum and structure validators that turn a regex candidate into a confident finding."""

from __future__ import annotations

import ipaddress
import re

_DIGITS = re.compile(r"\D")


def luhn(value: str) -> bool:
    """Luhn mod-10 check used by every payment card number."""
    digits = [int(c) for c in _DIGITS.sub("", value)]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# ISO 13616 IBAN lengths by country (the registry's list).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def iban(value: str) -> bool:
    """ISO 13616: country length and the mod-97 check digits."""
    s = re.sub(r"[\W_]", "", value).upper()
    if len(s) < 15 or IBAN_LENGTHS.get(s[:2]) != len(s) or not s[2:4].isdigit():
        return False
    rearranged = s[4:] + s[:4]
    try:
        number = int("".join(str(int(c, 36)) for c in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


def us_ssn(value: str) -> bool:
    """SSA rules: area not 000, 666 or 9xx; group not 00; serial not 0000; not an all-same number."""
    d = _DIGITS.sub("", value)
    if len(d) != 9 or len(set(d)) == 1 or d in {"123456789", "987654321"}:
        return False
    area, group, serial = d[:3], d[3:5], d[5:]
    return area not in {"000", "666"} and not area.startswith("9") and group != "00" and serial != "0000"


def ip_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


_EXTENSION = re.compile(r"\s?(?:x|ext\.?|extension)\s?\d{1,6}$")


def phone(value: str) -> bool:
    """A plausible phone number: 7–15 digits (E.164) before any extension ("x1234", "ext. 12"), not a date-
    or year-like run of digits."""
    d = _DIGITS.sub("", _EXTENSION.sub("", value))
    return 7 <= len(d) <= 15 and len(set(d)) > 2
