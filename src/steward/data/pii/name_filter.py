"""Which NER person spans are names: the checks after the model, the same for every NER backend.

A general NER model takes capitalised English words, organisations, streets and towns for people; these
checks use what the text itself says (its case, the punctuation in a span, the words after it, an address
before it) and three word lists: Faker's given names and surnames (34 locales), wordfreq's English and
six other languages' word frequencies, and the organisation and place endings below.
"""

from __future__ import annotations

import functools

import regex as re  # \p{Lu}: capitals in any script

from steward.data.pii.name_data import known_given_names, known_name_words
from steward.types import Finding

_NOT_A_NAME = re.compile(r"[\d@#/\\<>_=]|^\W|\W$")
# Punctuation no written name contains: a model's span across a speaker's colon or a quotation holds two pieces
# ('Alice:"I'm Chris', 'Answer:"Tube Snake Boogie'), each judged on its own.
_SPLIT = re.compile(r"[:;\"“”«»!?()\[\]{}*%$+|~^]+")
COMMON_ZIPF = 3.0  # wordfreq's Zipf scale: 3.0 is once per million words ("energetic" 3.7, "hobbits" 2.7)
OTHER_LANGUAGES = ("de", "fr", "es", "it", "nl", "pt")
ENGLISH_MARGIN = 1.0  # Zipf points above the other languages' median: "wisdom" 2.0, "obama" 0.6


def _street_suffixes() -> tuple[str, ...]:
    """USPS street suffixes (Publication 28, as Faker's en_US address provider lists them: Trail, Turnpike, Pass…)."""
    from faker.providers.address.en_US import Provider as Address

    return tuple(Address.street_suffixes)


# A span ending in one of these words names an organisation or a place ("Russell Investments", "Arpin Van Lines",
# "Berg Hills Street"), whatever the model says, unless the word is also a surname (Park, Lane, Bridge).
NOT_NAME_ENDINGS = frozenset("""
inc ltd llc plc gmbh ag sa spa bv co corp corporation company group holdings partners investments incorporated
technologies technology analytics transit lines bank consulting foundation hospital university college school
institute association society club council ministry agency airlines motors systems solutions services labs
street st road rd avenue ave lane drive boulevard way court place square park bridge station airport hotel
orchestra band choir ensemble quartet trio brothers sons research finance movers capital ventures media studio
studios records pictures entertainment energy power pharma health insurance logistics software networks
communications electric industries enterprises international global trust fund associates realty properties
construction engineering design marketing advisors
""".split()) | frozenset(w.casefold() for w in _street_suffixes())
# Capitalised words after a span that hold one of those words: the span begins an organisation's or a
# place's name ("Clark, Romero [and Hall Orchestra]", "Jones[, Smith and Davis Orchestra]", "Rosa [Street]").
_NAME_CONTINUES = re.compile(r"(?:(?:,?\s+(?:and|&)\s+|,\s+|\s+)\p{Lu}[\p{L}'-]*){1,5}")


def plausible_name(value: str, text: str) -> bool:
    """Whether an NER person span can be a name, by its characters and its case against the text's case: no
    digits or symbols; in mixed-case text a name is capitalised (a lower-case span there is a word) and not all
    capitals ("my IBAN is", "PRESS NEXT", a town in an address block). Where the whole text is in one case
    (lower-case chat, a message in capitals) case is no evidence, so a span counts when it holds a known given
    name or surname ("eva kleist" yes, "redeem points" and "ITSELF EVERY" no)."""
    last = value.rsplit(None, 1)[-1].strip(".,").casefold()
    if _NOT_A_NAME.search(value) or (last in NOT_NAME_ENDINGS and last not in known_name_words()):
        return False  # "Susan Park", "Lois Lane" stay names: Park and Lane are surnames too
    if all_common_words(value) or compound_of_words(value):
        return False  # "Energetic", "Princess Royal", "Border Force", "Flightaware": English, no name in it
    upper, lower = sum(c.isupper() for c in text), sum(c.islower() for c in text)
    one_case = min(upper, lower) <= 0.02 * (upper + lower)  # all lower (chat) or all upper (shouting, a form)
    if one_case:  # case says nothing here: a known given name or surname in the span, and no plain word ("gave rock")
        words = _words(value)
        return any(w in known_name_words() for w in words) and not any(_english_word(w) for w in words)
    # Mixed-case text: a name is capitalised, and not all capitals ("my IBAN is", "PRESS NEXT").
    return any(c.isupper() for c in value) and not value.isupper()


@functools.lru_cache(maxsize=65_536)
def _frequent(word: str) -> bool:
    """Frequent in English text (wordfreq's Zipf scale: ≥ 3.0 is once per million words)."""
    from wordfreq import zipf_frequency

    return zipf_frequency(word, "en") >= COMMON_ZIPF and word not in known_name_words()


@functools.lru_cache(maxsize=65_536)
def _english_word(word: str) -> bool:
    """Frequent in English and far less so in other languages: an English word ("energetic", "supposed",
    "princess"). A famous name is frequent in every language's news ("obama", "merkel", "clinton": within one
    Zipf point of English in the median of six others), so frequency alone would take it for a word."""
    from wordfreq import zipf_frequency

    if not _frequent(word):
        return False
    others = sorted(zipf_frequency(word, lang) for lang in OTHER_LANGUAGES)
    return zipf_frequency(word, "en") - others[len(others) // 2] >= ENGLISH_MARGIN


def all_common_words(value: str) -> bool:
    """Whether a span is plain English: one word frequent in English that is no one's given name or surname,
    or several such words of which at least one is an English word rather than a name that travels.

    A capitalised word at the start of a sentence, in a title or a heading ("Energetic and driven…",
    "The Princess Royal", "Border Force") is the general model's usual false name. Word frequencies come from
    wordfreq (the maintained multi-source list); Faker's name lists keep names that are also words ("Rose",
    "Mark", "Hope", "Bill Baker"); the other languages keep famous names ("Barack Obama")."""
    words = _words(value)
    if len(words) == 1:  # one frequent word ("Energetic", "Leeds", "Germany") is no evidence of a person
        return _frequent(words[0])
    return bool(words) and all(_frequent(w) for w in words) and any(_english_word(w) for w in words)


COMPOUND_ZIPF = 3.5  # both halves of a brand-like compound this frequent ("flight" 4.6 + "aware" 4.5)


@functools.lru_cache(maxsize=65_536)
def compound_of_words(value: str) -> bool:
    """Whether a one-word span is two frequent English words run together ("Flightaware", "Opencounter",
    "Blackrock"): how brands and places are named. Not when the word is a known name, or its first half a
    given name ("Jackson", "Peterson": patronymics)."""
    word = value.strip(".,'’").casefold()
    if len(word) < 6 or not word.isalpha() or word in known_name_words():
        return False
    from wordfreq import zipf_frequency

    return any(word[:i] not in known_given_names() and zipf_frequency(word[:i], "en") >= COMPOUND_ZIPF
               and zipf_frequency(word[i:], "en") >= COMPOUND_ZIPF for i in range(3, len(word) - 2))


def load_word_lists() -> None:
    """Load the name and frequency lists now (about 3 s once per process) rather than inside the first batch."""
    from wordfreq import zipf_frequency

    known_name_words()
    known_given_names()
    for lang in ("en", *OTHER_LANGUAGES):
        zipf_frequency("name", lang)  # through the lookup's own path: its list cache is keyed by call shape


def _words(value: str) -> list[str]:
    """A span's words, casefolded, without initials ("eric g. samoylova" → eric, samoylova)."""
    words = (w.strip(".,'’") for w in value.casefold().replace("-", " ").split())
    return [w for w in words if len(w) > 1]


def _continues_as_organisation(text: str, end: int) -> bool:
    """Whether the capitalised words right after a span run into an organisation or place ending: the next
    word, or any word of a list joined by commas or "and" ("Clark, Romero and Hall Orchestra")."""
    m = _NAME_CONTINUES.match(text, end, min(len(text), end + 80))
    words = re.findall(r"\p{Lu}[\p{L}'-]*", m.group()) if m else []
    if not re.search(r",|\s(?:and|&)\s", m.group() if m else ""):
        words = words[:1]  # "Selina Eldarkhanov Smith Ltd.": a name, then a company named after someone else
    return any(w.casefold() in NOT_NAME_ENDINGS and w.casefold() not in known_name_words() for w in words)


def name_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The plausible names inside one NER person span of ``text``: split at punctuation no name contains,
    each piece trimmed of spaces and edge symbols and checked with ``plausible_name``."""
    out: list[tuple[int, int]] = []
    pos = start
    for stop, nxt in [*((m.start(), m.end()) for m in _SPLIT.finditer(text, start, end)), (end, end)]:
        a, b = pos, stop
        while a < b and not text[a].isalnum():
            a += 1
        while b > a and not text[b - 1].isalnum():
            b -= 1
        if (a < b and plausible_name(text[a:b], text) and not _continues_as_organisation(text, b)
                and not context_says_not_a_person(text, a, b)):
            out.append((a, b))
        pos = nxt
    return out


# The word before a span that makes it a place when it holds no given name ("in Den Haag", "the city Voorburg").
_PLACE_BEFORE = re.compile(r"(?i)\b(?:in|near|city|town|village|capital)\s+$")
_TITLE_BEFORE = re.compile(r"(?i)\b(?:mr|mrs|ms|miss|mx|dr|prof|sir|dame|lady|lord)\.?\s+$")
_POSSESSIVE_BEFORE = re.compile(r"\p{L}['’]s\s+$")  # "Faina D. Yefremova's [Cautionary Tales]"
# A street named without a suffix, then its number: "lives on Pod Floriánem 1677.", "side of Joaquin Suarez 2906"
_STREET_BEFORE = re.compile(r"(?i)\b(?:on|at|of|in|to)\s+$")
_HOUSE_NUMBER_AFTER = re.compile(r" \d{2,5}[a-zA-Z]?(?:[,.;)]|$)(?!\S)")
def context_says_not_a_person(text: str, start: int, end: int) -> bool:
    """Whether the words around a span that holds no given name make it a place, a street, a firm or a thing.

    A surname alone is a person only by context; these are the contexts where it is not: after a locative
    word ("in Bremen Ohlenhof"), before a house number ("Joaquin Suarez 2906"), after a possessive ("Ström's
    Cautionary Tales"), the plural of a word ("Hobbits"), a holiday ("Labor Day"), or a double surname alone without a title ("Weeks-Rivas
    is a 501(c)3"). Otherwise a span with a known given name is always kept. Three surnames in a list
    ("Marshall, Hernandez and Simpson") stay names: as often founders as a firm."""
    value = text[start:end]
    words = _words(value)
    before = text[max(0, start - 24):start]
    if len(value.split()) == 1 and "-" in value and not _TITLE_BEFORE.search(before):
        last = words[-1] if words else ""
        # "Weeks-Rivas is a 501(c)3", "Valentine-Murray invested": a double surname alone, no title, is a firm
        # (Faker's and the world's "{surname}-{surname}"); "Jean-Pierre", "Anne-Marie" are given names
        return last in known_name_words() and last not in known_given_names()
    if any(w in known_given_names() for w in words):
        return False
    if _PLACE_BEFORE.search(before) or (_STREET_BEFORE.search(before) and _HOUSE_NUMBER_AFTER.match(text, end)):
        return True
    if _POSSESSIVE_BEFORE.search(before) and not any(w in known_name_words() for w in words):
        return True
    if len(words) >= 2 and words[-1] in ("day", "eve"):
        return True  # "Labor Day", "New Year's Eve": holidays (a given name keeps "Doris Day")
    # "Hobbits", "Greeks": the plural of a word, unless a surname ("Graves", "Rogers")
    return (len(words) == 1 and words[0].endswith("s") and words[0] not in known_name_words()
            and _frequent(words[0][:-1]))


# What may stand between a street address and the town after it: separators, a flat or suite, a postcode.
_AFTER_ADDRESS = re.compile(r"(?:[\W_]+|(?:Apt|Apartment|Suite|Ste|Unit|Floor|Flat)\.?\s*\w{1,5}\b|\d{4,6}\b){0,6}")


def drop_towns_after_addresses(text: str, findings: list[Finding]) -> list[Finding]:
    """Drop NER names that directly follow a street address unless they start with a given name: in an address
    block the word after the street ("… Strickstrasse 61 > Suite 292 > Zuoz > Switzerland") is its town, not a
    person (who comes first)."""
    ends = [f.end for f in findings if f.entity_type == "STREET_ADDRESS"]
    if not ends:
        return findings

    def after_address(f: Finding) -> bool:
        if text[f.start:f.end].split()[0].casefold() in known_given_names():
            return False  # "… 12 Baker Street, Anna Berg will sign": a given name is a person's
        for end in ends:
            if end <= f.start <= end + 40:
                m = _AFTER_ADDRESS.match(text, end, f.start)
                if m and m.end() == f.start:
                    return True
        return False

    return [f for f in findings if f.detector not in ("spacy:ner", "presidio:ner") or not after_address(f)]
