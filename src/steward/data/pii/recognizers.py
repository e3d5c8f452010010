"""Declarative pattern recognisers: patterns, context words and validators are data on each instance.

A candidate match gets its pattern's base score; a validator (Luhn, mod-97, SSA rules…) rejects it or
confirms it; context words near the match raise the score. Only findings at or above the configured
``min_score`` survive, so weak patterns (a bare 9-digit number as an SSN) need context to count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import regex as re  # the `regex` package: re-compatible, plus \p{Lu}/\p{L} for names and streets in any script

from steward.data.pii import validators as v
from steward.registry import Registry
from steward.types import Finding

CONTEXT_WINDOW = 40  # characters before a match searched for context words
CONTEXT_BOOST = 0.35

# Separators people put between digit groups: any space or dash of Unicode (en dash, no-break space…), dot,
# slash, underscore, middle dot; up to two in a row ("4111  1111"). Recognisers see canonical text
# (``steward.canonical``), so invisible characters and foreign digits are already gone.
SEP = r"[\p{Zs}\p{Pd}./_\u00b7]"
# E-mail addresses with international local parts and domains (RFC 6531 / IDNA): letters and marks of any script.
_LOCAL = r"[\p{L}\p{M}\p{N}._%+-]+"
_LABEL = r"[\p{L}\p{M}\p{N}](?:[\p{L}\p{M}\p{N}-]{0,61}[\p{L}\p{M}\p{N}])?"
_PSEP = r"[\p{Zs}\p{Pd}.]"  # phone group separators: any space or dash, or a dot
_TLD = r"(?:\p{L}[\p{L}\p{M}]{1,23}|xn--[a-z0-9-]{2,59})"


@dataclass(frozen=True)
class Pattern:
    name: str
    regex: str
    score: float
    # A weak shape (a bare "467 3395") that counts only next to a context word ("Phone: 467 3395"). The context
    # word is the evidence, so the recogniser's ``invalid`` vetoes (dates, amounts) do not apply to it.
    needs_context: bool = False


@dataclass(frozen=True)
class PatternRecognizer:
    """Finds one entity type with regexes, optional validator and context words."""

    entity: str
    patterns: tuple[Pattern, ...]
    context: tuple[str, ...] = ()
    validator: Callable[[str], bool] | None = None
    validated_score: float | None = None  # score after a passing validator (checksums are strong evidence)
    invalid: tuple[str, ...] = ()  # regexes that veto a candidate (e.g. dates for phone numbers)
    group: int = 0  # regex group holding the entity (e.g. the name after a title)
    strip_trailing: str = ""  # characters trimmed from the end of a match (URL punctuation)
    extend: str = ""  # a regex matched right after a hit that, where it matches, is part of it (an address's town)
    _compiled: tuple[tuple[Pattern, re.Pattern[str]], ...] = field(init=False, repr=False, compare=False)
    _invalid: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)
    _context: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _extend: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", tuple((p, re.compile(p.regex)) for p in self.patterns))
        object.__setattr__(self, "_invalid", tuple(re.compile(r) for r in self.invalid))
        ctx = re.compile(r"\b(" + "|".join(map(re.escape, self.context)) + r")\b", re.I) if self.context else None
        object.__setattr__(self, "_context", ctx)
        object.__setattr__(self, "_extend", re.compile(self.extend) if self.extend else None)

    def analyze(self, text: str) -> list[Finding]:
        out: list[Finding] = []
        for pattern, rx in self._compiled:
            for m in rx.finditer(text):
                start, end = m.span(self.group)
                value = text[start:end]
                if self.strip_trailing:
                    stripped = value.rstrip(self.strip_trailing)
                    end -= len(value) - len(stripped)
                    value = stripped
                if not value:
                    continue
                if self._extend is not None and (more := self._extend.match(text, end)):
                    end = more.end()
                    value = text[start:end]
                hit = self._context.search(text, max(0, start - CONTEXT_WINDOW), start) if self._context else None
                if pattern.needs_context:
                    if hit is None:
                        continue
                elif any(iv.fullmatch(value) for iv in self._invalid):
                    continue
                score = pattern.score
                why = f"pattern {pattern.name}"
                if self.validator is not None:
                    if not self.validator(value):
                        continue
                    why += f"; {self.validator.__name__} check passed"
                    if self.validated_score is not None:
                        score = max(score, self.validated_score)
                if hit:
                    score = min(1.0, score + CONTEXT_BOOST)
                    why += f"; context word {hit.group(1)!r}"
                out.append(Finding(self.entity, start, end, round(score, 3), f"regex:{self.entity}", why))
        return out


RECOGNIZERS: Registry[PatternRecognizer] = Registry("PII recognizer")


def _register(rec: PatternRecognizer) -> PatternRecognizer:
    RECOGNIZERS.register(rec.entity)(lambda: rec)
    return rec


_register(PatternRecognizer(
    "EMAIL_ADDRESS",
    (Pattern("email", r"(?<![\p{L}\p{M}\p{N}._%+-])" + _LOCAL + "@(?:" + _LABEL + r"\.)+" + _TLD
             + r"(?![\p{L}\p{M}\p{N}-])", 0.95),),
    context=("email", "e-mail", "mail", "contact"),
))
_register(PatternRecognizer(
    "URL",
    (Pattern("url_scheme", r"\bhttps?://[^\s<>\"'()]+", 0.9),
     Pattern("url_www", r"(?<![\w@/.])www\.[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+(?:/[^\s<>\"'()]*)?", 0.85)),
    strip_trailing=".,;:!?)]'\"",
))
_register(PatternRecognizer(
    "IP_ADDRESS",
    (Pattern("ipv4", r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]*\d)", 0.6),
     Pattern("ipv6", r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:])", 0.6),
     Pattern("ipv6_compressed",
             r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){1,6}(?::[0-9A-Fa-f]{1,4}){1,6}(?![\w:])|(?<![\w:])::1(?![\w:])", 0.6)),
    context=("ip", "address", "server", "host", "login", "logged", "connected"),
    validator=v.ip_address, validated_score=0.85,
))
_register(PatternRecognizer(
    "CREDIT_CARD",
    # Not preceded by a digit group ("12-4111…" is part of a longer number); a trailing dash is punctuation.
    (Pattern("card_digits", r"(?<!\d)(?<!\d[\p{Pd}./_])[1-6]\d{3}(?:" + SEP + r"{0,2}\d){9,15}(?!\d)", 0.3),),
    context=("card", "credit", "debit", "visa", "mastercard", "amex", "payment", "cc"),
    validator=v.luhn, validated_score=0.85,
))
_register(PatternRecognizer(
    "IBAN_CODE",
    # Any case ("gb42nawi…" in lower-case chat): the length and mod-97 check decide, not the capitals.
    (Pattern("iban", r"(?i:\b[A-Z]{2}\d{2}(?:" + SEP + r"{0,2}[A-Z0-9]{4}){2,7}(?:" + SEP + r"{0,2}[A-Z0-9]{1,4})?\b)",
             0.3),),
    context=("iban", "account", "bank", "transfer", "wire"),
    validator=v.iban, validated_score=0.95,
))
_register(PatternRecognizer(
    "US_SSN",
    (Pattern("ssn_dashed", r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])", 0.6),
     Pattern("ssn_spaced", r"(?<![\d ])\d{3} \d{2} \d{4}(?![\d])", 0.45),
     Pattern("ssn_plain", r"(?<!\d)\d{9}(?!\d)", 0.2)),
    context=("ssn", "social security", "social", "security number", "taxpayer", "tin"),
    validator=v.us_ssn,
))
# Phone numbers end at a word boundary; sentence punctuation or a "-Fax" label may follow, a time (":08") may not.
_PEND = r"(?:" + r"\p{Zs}?(?:x|ext\.?|extension)\p{Zs}?\d{1,6})?(?!\w|[.-]\d|:\d)"
# Dates in either order ("2019-11-04", "17.01.2007", "4/11/19"): never a phone number, whatever word is near.
_DATE = r"(?:(?:19|20)\d\d[-./]\d\d?[-./]\d|\d\d?[-./]\d\d?[-./](?:19|20)?\d\d(?!\d))"
_register(PatternRecognizer(
    "PHONE_NUMBER",
    (Pattern("phone_international", r"(?<![\w+])\+\d{1,3}" + _PSEP + r"?(?:\(\d{1,4}\)" + _PSEP + r"?)?\d{1,4}(?:"
             + _PSEP + r"?\d{2,4}){1,4}" + _PEND, 0.75),
     Pattern("phone_parens", r"(?<!\w)\(\d{2,4}\)" + _PSEP + r"?\d{3,4}" + _PSEP + r"?\d{2,4}(?:" + _PSEP
             + r"\d{2,4})?" + _PEND, 0.7),
     Pattern("phone_grouped", r"(?<![\w.-])\d{2,4}(?:" + _PSEP + r"\d{2,4}){2,4}" + _PEND, 0.5),
     # A trunk prefix then the subscriber number: "0961-7596216", "0378 3549890".
     Pattern("phone_trunk", r"(?<![\w.-])0\d{1,4}[\p{Zs}\p{Pd}]\d{5,8}" + _PEND, 0.5),
     Pattern("phone_plain", r"(?<![\w.-])0\d{9,10}" + _PEND, 0.4),
     # Short local numbers and bare ten-digit numbers look like counts and IDs: only beside a context word.
     Pattern("phone_local", r"(?<![\w.-])(?!" + _DATE + r")\d{2,4}(?:[\p{Zs}\p{Pd}.]\d{2,8}){1,3}" + _PEND, 0.2, needs_context=True),
     Pattern("phone_bare", r"(?<![\w.-])\d{10}" + _PEND, 0.2, needs_context=True)),
    context=("phone", "call", "tel", "telephone", "mobile", "cell", "fax", "number", "reach", "text", "whatsapp",
             "desk", "office", "landline", "ring", "contact"),
    validator=v.phone,
    # Dates, times, amounts and years that the grouped pattern would otherwise take for phone numbers.
    invalid=(r"\d{1,4}[-./ ]\d{1,2}[-./ ]\d{1,4}", r"\d{4} \d{4}", r"(?:19|20)\d\d(?:" + _PSEP + r"\d{1,2}){0,2}"),
))
def _address_rest() -> str:
    """The rest of an address after its street line — suite, towns, state, then a country or a postcode it must
    end in ("…, Apt. 4, Porto Alegre, RS Brazil 95828", "… > Suite 292 > Zuoz > Switzerland 53730"). Without
    that ending nothing is added: "12 Baker Street, Anna Berg will sign" keeps its name."""
    from faker.providers.address.en_US import Provider as Address

    sep = r"[\p{Zs},>|/•·\n-]{1,6}"
    town = r"\p{Lu}[\p{L}'.-]*(?:\p{Zs}+(?:(?:de|del|da|do|dos|la|le|am|an|upon|sur)\p{Zs}+)?\p{Lu}[\p{L}'.-]*){0,3}"
    country = "|".join(sorted((re.escape(c) for c in Address.countries), key=len, reverse=True))
    postcode = (r"(?:\d{4,6}(?:-\d{3,4}|\p{Zs}\d{2}(?!\d))?|[A-Z]{1,2}\d[A-Z\d]?\p{Zs}?\d[A-Z]{2}"  # UK
                r"|[A-Z]\d[A-Z]\p{Zs}?\d[A-Z]\d)(?!\w)")  # Canada
    suite = r"(?:Apt|Apartment|Suite|Ste|Unit|Floor|Flat)\.?\p{Zs}*[\w-]{1,6}"
    return (r"(?:" + sep + suite + r")?(?:" + sep + town + r"){0,3}?" + sep
            + r"(?:(?:" + country + r")(?:" + sep + postcode + r")?(?![\p{L}])|" + postcode + r")")


_register(PatternRecognizer(
    "STREET_ADDRESS",
    (Pattern("street_number_first",
             r"\b\d{1,6}[A-Za-z]?\s+(?:[A-Z][\w'.-]*\s+){0,4}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|"
             r"Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Trail|Trl|"
             r"Crescent|Close|Row|Alley|Plaza|Loop|Pike|Run)\b\.?"
             r"(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|Flat|#)\.?\s*[\w-]+)?", 0.7),
     Pattern("street_name_first",
             r"\b(?:[A-Z][\w'-]+\s+)?[A-Z][\w'-]*(?:strasse|straße|gasse|weg|platz|allee|vej|gatan|gade|katu|"
             r"ulica|utca|laan|straat|väg|veien)\s+\d{1,5}[a-z]?\b", 0.6),
     Pattern("street_name_word_first",
             r"\b[A-Z][\w'-]+\s+(?:Strasse|Straße|Str\.|Weg|Platz|Allee|Gasse|Ring|Damm|Gade|Vej|Laan|Straat)"
             r"\s+\d{1,5}[a-z]?\b", 0.6),
     Pattern("street_romance",
             r"\b(?:Rue|Via|Viale|Calle|Avenida|Rua|Piazza|Plaza|Paseo|Camino|Boulevard|Avenue|Chemin|Strada)"
             r"\s+(?:(?:de|del|della|da|do|dos|la|le|du|des)\s+)?[A-Z][\w'-]+(?:\s+[A-Z][\w'-]+){0,3},?\s+\d{1,5}\b", 0.6),
     # "6750 Koskikatu 25", "450 Præstevænget 15": house/postal number, street name, number.
     Pattern("number_name_number", r"\b\d{1,6}\s+\p{Lu}[\p{L}'.-]+(?:\s+\p{L}[\p{L}'.-]+){0,3}\s+\d{1,5}\b\.?"
             r"(?:\s+(?:Apt|Apartment|Suite|Ste|Unit)\.?\s*\d+)*", 0.55),
     # US military addresses (USPS Publication 28): a ship, or a unit and box, then FPO/APO/DPO, AA/AE/AP, ZIP.
     Pattern("military_ship", r"\b(?:USNS|USS|USNV|USCGC)\s+\p{Lu}[\p{L}'-]+(?:\s+\p{Lu}[\p{L}'-]+)?,?\s+FPO\s+"
             r"A[AEP]\s+\d{5}(?:-\d{4})?\b", 0.8),
     Pattern("military_box", r"\b(?:Unit|PSC|CMR)\s+\d{1,5},?\s+Box\s+\d{1,5},?\s+[ADF]PO\s+A[AEP]\s+\d{5}(?:-\d{4})?\b",
             0.8)),
    context=("address", "live", "lives", "located", "ship", "deliver", "street"),
    extend=_address_rest(),
))
# Titles followed by capitalised words are names even when the NER model misses them.
_NAME = r"(\p{Lu}[\p{Ll}'-]+(?:\s+(?:\p{Lu}[\p{Ll}'-]+|\p{Lu}\.?(?!\p{L}))){0,3})"
_register(PatternRecognizer(
    "PERSON",
    (Pattern("titled_name", r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Madam)\.?\s+" + _NAME, 0.8),
     # Phrases that introduce a person's name, e.g. "my name is Siiri", "ask for Miklós Hajdu".
     Pattern("introduced_name",
             r"(?i:\b(?:my name is|name:|this is|i am|call me|ask for|speak (?:to|with)|directed by:?|written by|"
             r"signed,?|regards,?|my (?:kid|son|daughter|wife|husband|mother|father|friend|colleague|boss)|"
             r"maybe it's under|last name\??|first name\??|contact person:?))\s+" + _NAME + r"(?!\s*\p{Lu}\p{Ll}*\s+(?:Street|St|Ave))",
             0.7),
     Pattern("name_verb", _NAME + r"(?='s|\s+(?:lives|shouted|said|says|wrote|called|is from|was born|will be))", 0.55)),
    group=1,
    # Capitalised function words ("It's", "What's", "She was born") are not names.
    invalid=(r"(?i:it|its|what|who|whom|whose|here|there|you|he|she|we|they|this|that|these|those|i|my|your|our|"
             r"their|his|her|the|a|an|where|when|why|how|let|everyone|someone|nobody|dr|mr|mrs|ms|st|today|"
             r"tomorrow|yesterday|hello|hi|dear|thanks|bot|user|agent)(?:\s.*)?",),
))
