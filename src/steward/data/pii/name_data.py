"""Generated, labelled text for Steward's person-name model (``steward.data.pii.names``).

A general NER model misses names where support text puts them: lower-case ("ask for eva kleist"), in lists
("they had 3: adam, mika and brian"), as a speaker before a colon ("Éva: what a wife"), from many countries
("Vsevolod", "Amadeo Vitorović"), in headers and signatures. It also takes surnames inside organisation names
("Clark, Romero and Hall", "the Davis Orchestra") and street names ("Waechter Turnpike") for people. These
templates put names from Faker's locales into exactly those places, and the look-alike non-names beside them
labelled as what they are, so fine-tuning teaches both.

The templates are our own: none is copied from an evaluation set (the presidio-research set the bench scores
on was not read to write them; see docs/benchmarks.md for the split we tuned on). Deterministic for a seed.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass

# Faker locales whose names are written in Latin script (Japanese and Chinese by their romanised names).
LOCALES = ("en_US", "en_GB", "en_IE", "en_IN", "en_AU", "de_DE", "de_AT", "fr_FR", "es_ES", "es_MX", "it_IT",
           "pt_BR", "pt_PT", "nl_NL", "sv_SE", "da_DK", "no_NO", "fi_FI", "is_IS", "pl_PL", "cs_CZ", "sk_SK",
           "hu_HU", "hr_HR", "sl_SI", "ro_RO", "tr_TR", "lt_LT", "lv_LV", "et_EE", "id_ID", "vi_VN", "ja_JP",
           "zh_CN")
ROMANISED = {"ja_JP", "zh_CN"}
TITLES = ("Mr", "Mrs", "Ms", "Miss", "Dr", "Prof", "Mr.", "Mrs.", "Ms.", "Dr.", "Sir", "Mx")

LABELS = ("PERSON", "ORG", "GPE", "FAC")  # what the generator labels (the look-alikes are labelled as what they are)
Span = tuple[int, int, str]


@dataclass(frozen=True)
class Example:
    text: str
    entities: tuple[Span, ...]


class _Writer:
    """Builds one text from pieces, recording the character span of every labelled piece."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.spans: list[Span] = []
        self.n = 0

    def add(self, text: str, label: str | None = None) -> None:
        if label is not None and text:
            self.spans.append((self.n, self.n + len(text), label))
        self.parts.append(text)
        self.n += len(text)

    def example(self) -> Example:
        return Example("".join(self.parts), tuple(self.spans))


def _fix_order(faker) -> None:  # type: ignore[no-untyped-def]
    """Sort the word lists some Faker locales build from sets (it_IT's cities: ``list({...})``), whose order
    changes with PYTHONHASHSEED: the same seed must give the same text in every process, or the names model's
    cache key (a hash of this text) would differ from run to run. Static lists are tuples and stay as they are."""
    for generator in faker.factories:
        for provider in generator.providers:
            for attr, value in vars(type(provider)).items():
                if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                    setattr(provider, attr, sorted(value))


class Names:
    """Name parts drawn from one seeded generator across ``LOCALES``."""

    def __init__(self, seed: int) -> None:
        from faker import Faker

        self.rng = random.Random(seed)
        self.fakers = []
        for i, loc in enumerate(LOCALES):
            f = Faker(loc)
            f.seed_instance(seed * 1000 + i)
            _fix_order(f)
            self.fakers.append((loc, f))

    def _faker(self):  # type: ignore[no-untyped-def]
        return self.rng.choice(self.fakers)

    def first(self) -> str:
        loc, f = self._faker()
        return f.first_romanized_name() if loc in ROMANISED else f.first_name()

    def last(self) -> str:
        loc, f = self._faker()
        return f.last_romanized_name() if loc in ROMANISED else f.last_name()

    def full(self) -> tuple[str, str]:
        """(title or "", name): a person's name in one of the shapes people write it. The title is not part
        of the name's span (it says nothing about who the person is)."""
        loc, f = self._faker()
        first = f.first_romanized_name() if loc in ROMANISED else f.first_name()
        last = f.last_romanized_name() if loc in ROMANISED else f.last_name()
        r = self.rng.random()
        if r < 0.55:
            return "", f"{first} {last}"
        if r < 0.7:
            return "", f"{first} {self.rng.choice('ABCDEFGHJKLMNPRSTVW')}. {last}"
        if r < 0.8:
            return "", first
        if r < 0.88:
            return f"{self.rng.choice(TITLES)} ", last if self.rng.random() < 0.7 else f"{first} {last}"
        if r < 0.94:
            return "", f"{first} {last}-{self.last()}" if self.rng.random() < 0.5 else f"{last}, {first}"
        return "", f"{first} {self.first()} {last}"

    def city(self) -> str:
        """Half real cities (from the IANA time-zone names, so well-known ones), half Faker's per locale."""
        if self.rng.random() < 0.5:
            return self.rng.choice(_real_cities())
        return self._faker()[1].city()

    def country(self) -> str:
        return self.fakers[0][1].country()

    def company(self) -> str:
        """Organisation names, many of them made of surnames (the usual false positive)."""
        a, b, c = self.last(), self.last(), self.last()
        if self.rng.random() < 0.4:
            f = self._faker()[1]
            try:
                return str(f.company())
            except AttributeError:
                pass
        return self.rng.choice((f"{a}, {b} and {c}", f"{a} & {b}", f"{a} Ltd", f"{a} Inc.", f"{a} Group",
                                f"{a} and Sons", f"the {a} Orchestra", f"{a}-{b} LLC", f"{a} Foundation",
                                f"{a} Consulting", f"{a} Bank", f"{a} Hospital", f"{self.city()} United",
                                f"{self.city()} Council", f"Real {self.city()}", f"{a} Motors", f"{a} Airlines",
                                f"{a} Investments", f"{a} Analytics", f"{a} Technologies", f"{a} Partners",
                                f"{a} Transit", f"{a} Systems", f"{a} Labs"))

    def brand(self) -> str:
        """An invented one-word brand made of two words ("Brightpath", "DataNest"), as start-ups name themselves.
        (Invented syllables, "Velorado", taught the model that any unknown word is an organisation: single
        foreign given names were lost.)"""
        a, b = self.rng.choice(BRAND_HEADS), self.rng.choice(BRAND_TAILS)
        return a + (b.capitalize() if self.rng.random() < 0.35 else b)

    def organisation(self) -> str:
        return self.brand() if self.rng.random() < 0.2 else self.company()

    def street(self) -> str:
        f = self._faker()[1]
        if self.rng.random() < 0.5:
            return f"{self.rng.randint(1, 9999)} {self.last()} {self.rng.choice(('Street', 'Road', 'Avenue', 'Lane', 'Turnpike', 'Drive', 'Way', 'Court'))}"
        try:
            return f.street_address()
        except AttributeError:
            return f"{self.last()} Street {self.rng.randint(1, 99)}"


@functools.cache
def _real_cities() -> tuple[str, ...]:
    import importlib.resources

    # The tzdata package's list, not the system's: the same on every machine with the same tzdata version.
    zones = sorted((importlib.resources.files("tzdata") / "zones").read_text(encoding="utf-8").split())
    skip = ("Etc/", "SystemV/", "US/", "Canada/", "Brazil/", "Chile/", "Mexico/")
    cities = {z.split("/")[-1].replace("_", " ") for z in zones if "/" in z and not z.startswith(skip)}
    return tuple(sorted(c for c in cities if not c.isupper()))  # not "ACT", "NSW"


@functools.cache
def known_name_words() -> frozenset[str]:
    """Given names and surnames of every locale in ``LOCALES`` (casefolded, about 26,000 words). In lower-case
    text a span has no capital letter to say it is a name; one of these words in it is the evidence instead."""
    return _faker_words(("first_names", "last_names", "first_names_male", "first_names_female",
                         "first_romanized_names", "last_romanized_names"))


@functools.cache
def known_given_names() -> frozenset[str]:
    """Given names alone (casefolded): a span starting with one is a person even where a town would stand."""
    return _faker_words(("first_names", "first_names_male", "first_names_female", "first_romanized_names"))


def _faker_words(attrs: tuple[str, ...]) -> frozenset[str]:
    from faker import Faker

    words: set[str] = set()
    for loc in LOCALES:
        for generator in Faker(loc).factories:
            for provider in generator.providers:
                for attr in attrs:
                    for name in getattr(provider, attr, None) or ():
                        words.update(w.casefold() for w in str(name).replace("-", " ").split())
    return frozenset(words)


# Pieces of invented brand names (our own lists): "Bright" + "path", "Data" + "nest".
BRAND_HEADS = ("Bright", "Data", "Cloud", "Open", "Blue", "Green", "Smart", "Net", "Flight", "Law", "Loca", "Nauti",
               "Quant", "Pixel", "Hyper", "Brain", "Code", "Mint", "Sun", "Iron", "Silver", "True", "Next", "Fin",
               "Med", "Agri", "Geo", "Eco", "Aero", "Info", "Terra", "Nova", "Zen", "Spark", "Swift", "Deep", "Great")
BRAND_TAILS = ("path", "nest", "wave", "works", "ly", "ify", "hub", "base", "wise", "aware", "counter", "dragon",
               "vore", "lytics", "scape", "forge", "stack", "field", "point", "line", "sense", "logic", "mind", "craft",
               "gate", "box", "cart", "dash", "flow", "grid", "labs", "schools", "bridge", "leaf", "port", "ware")


# Capitalised words that are not names: the model must see them unlabelled beside names.
NOT_NAMES = ("Monday", "Friday", "January", "August", "Christmas", "Easter", "Customer Service", "Support Team",
             "Manager", "Salesperson of the Month", "Employee of the Year", "Premium Plan", "Gold Card", "Visa",
             "Mastercard", "Wi-Fi", "Bluetooth", "iPhone", "Android", "Windows", "Excel", "Guilty Pleasures",
             "Harvest Moon", "The Great Escape", "Order Status", "Account Settings", "Terms of Service",
             "Happy Birthday", "Black Friday", "Prime Minister", "Head of Sales", "Chief Executive", "Invoice",
             "Refund Policy", "North Wing", "Platform 9", "Gate B12", "Room 204", "Thank You", "Best Regards")

Writer = _Writer
Template = Callable[[Names, _Writer], None]


def _sentence(parts: str) -> Template:
    """A template from a string with slots: {P} person, {C} company, {G} place, {S} street, {N} non-name,
    {X} any of person, company or place (contexts where each reads naturally: the model must tell them apart
    by the name itself)."""
    import re

    tokens = re.split(r"(\{[PCGSNX]\})", parts)

    def fill(names: Names, w: _Writer) -> None:
        for tok in tokens:
            if tok == "{X}":
                tok = names.rng.choice(("{P}", "{P}", "{C}", "{G}", "{G}"))
            if tok == "{P}":
                title, name = names.full()
                w.add(title)
                w.add(name, "PERSON")
            elif tok == "{C}":
                w.add(names.organisation(), "ORG")
            elif tok == "{G}":
                place = names.city() if names.rng.random() < 0.7 else names.country()
                w.add(place.upper() if names.rng.random() < 0.15 else place, "GPE")
            elif tok == "{S}":
                w.add(names.street(), "FAC")
            elif tok == "{N}":
                w.add(names.rng.choice(NOT_NAMES))
            else:
                w.add(tok)
    return fill


SENTENCES = (
    "Hi, this is {P}, I ordered a jacket last week and it still hasn't arrived.",
    "Please transfer me to {P} in billing.",
    "{P} from {C} called about the invoice again.",
    "I spoke with {P} yesterday and she promised a refund.",
    "Can {P} ring me back after five?",
    "My account is under the name {P}.",
    "The parcel was signed for by {P} at the front desk.",
    "Thanks to {P} for sorting this out so quickly!",
    "Is {P} still working at the {G} branch?",
    "{P} and {P} both have access to the joint account.",
    "According to {P}, the order left {G} on {N}.",
    "We met {P} of {C} at the conference in {G}.",
    "Forward this to {P}, she handles complaints for {C}.",
    "My husband {P} booked the tickets, not me.",
    "Our neighbour {P} took the delivery for us.",
    "The doctor, {P}, said the results would take a week.",
    "I'm writing on behalf of my mother, {P}, who lives at {S}.",
    "Your colleague {P} told me the {N} was free.",
    "{P} lives at {S} in {G}.",
    "Ship it to {P}, {S}, {G}.",
    "Nobody at {C} answers the phone.",
    "The offices of {C} are on {S}.",
    "{C} has opened a new store in {G}.",
    "I bought the {N} from {C} in {G}.",
    "Turn left at {S} and the shop is on your right.",
    "Our team won {N} this year.",
    "The {N} page keeps crashing on my phone.",
    "We flew from {G} to {G} on {N}.",
    "A tribute to {P}, who founded {C} in 1987.",
    "The award went to {P} of {C}.",
    "Reviewed by {P}; approved by {P}.",
    "{P} is very reliable. You can count on her.",
    "{P} spent a year at {C} before moving to {G}.",
    "I'd like to speak to {P}, the manager on duty.",
    "Who is {P}? I never authorised them.",
    "The song was recorded by {P} in {G}.",
    "{P}'s card was charged twice.",
    "Please cancel {P}'s subscription.",
    "It was {P} who reported the fault, not {P}.",
    "Hello {P}, your appointment is confirmed for {N}.",
    "Dear {P},\nyour order has shipped.\nBest regards,\n{P}\n{C}",
    "From: {P}\nTo: {P}\nSubject: {N}",
    "Name: {P}\nCompany: {C}\nCity: {G}",
    "Contact person: {P} ({C})",
    "> {P} > {C} > {G}",
    "Signed, {P}",
    "cc: {P}, {P}",
    "Customer: {P} | Agent: {P} | Status: open",
    "{P} - {C} - {G}",
    "Assigned to {P} by {P}.",
    "my name is {P} and i need help with my card",
    "{P} began working here in 2019.",
    "{P} had given {P} the keys.",
    "The true owner of the account is {P}.",
    "An early {P} record is worth a lot now.",
    "The {P} version of the song is better.",
    "Compared to {P}, the new manager is strict.",
    "Songwriter {P} wrote most of the album.",
    "Billing address: {P}, {S}, {G}",
    "{P}\nNurse\nPersonal info: {S}",
    "{P}, {C}'s head of marketing, joined in May.",
    "{C}'s {P} and {C}'s {P} will speak first.",
    # The same places hold a person, an organisation or a place.
    "{X} said on Monday that the deal was off.",
    "Talks between {X} and {X} broke down.",
    "{X} announced a new plan for next year.",
    "I have never heard of {X} before.",
    "Thanks to {X} for the support.",
    "We are meeting {X} next week about the contract.",
    "{X} won 2-1 against {X} on Sunday.",
    "The report was sent to {X} and {X}.",
    "{X} has asked for more time.",
    "A spokesman for {X} declined to comment.",
    "{X} beat {X} in the final.",
    "Shares in {X} rose after the news.",
    "The letter came from {X}.",
    "{X} ( {G} ) 3 1 0 7",
    "{X} v {X} 2-0",
    "Everyone at {X} was kind to us.",
    # No person at all: places, organisations, addresses, labels and titles written with capitals.
    "We moved here from {G} last spring.",
    "{G} was great fun to visit.",
    "The economy of {G} depends on tourism.",
    "Who's coming to {G} with me?",
    "Our offices are at {S}, {G}.",
    "Deliver to: {S} | {G} | {G}",
    "Address: {S}\nCity: {G}\nCountry: {G}",
    "{S} > Suite 12 > {G} > {G}",
    "Please send it to {S}, Apt. 4, {G}.",
    "The corner of {S} and {S} is closed.",
    "Categories: {N}, {N}, {N}",
    "Genres: Action & Adventure, Animation, Comedy, Kids & Family, Mystery & Thriller",
    "She told {C} TV that the tour starts in {G}.",
    "The clubs where {C} first played are gone now.",
    "{C} versus {C}: who has the better {N}?",
    "User: where is my order? Bot: Which order number? User: the one from {N}.",
    "Bot: What's the address? User: {S}, {G}",
    "Agent: How can I help? Customer: My {N} stopped working.",
    "Phone: see below\nE-mail: see below\nAddress: {S}",
    "Personal Info: Name: {P} Job: {N} Address: {S}",
    "I love the {N} at {C}, {G}.",
    "Awarded {N} three years in a row at {C}.",
    "Cool, what's the address of the {G} office?",
    "Status: Pending | Priority: High | Team: {N}",
    # Places where a preposition or a role word says "place": in, from, to, at, based in, home town.
    "I'm in {G} this week, back on Friday.",
    "I'm currently in {G}, can you ship it to the hotel?",
    "She is originally from {G} but lives in {G} now.",
    "We got back to {G} late last night.",
    "The train to {G} was cancelled again.",
    "The package reached {G} on Tuesday.",
    "Is there a store near {G}?",
    "They are based in {G}, not {G}.",
    "My home town, {G}, has no post office.",
    "Flights from {G} are delayed.",
    "Greetings from {G}!",
    "{P} moved from {G} to {G} in 2015.",
    # Organisations where a job, a purchase or support says "organisation".
    "I work for {C} as an analyst.",
    "I used to work at {C} but I left last year.",
    "We are proud to support {C} in its mission.",
    "{C} is a design agency based in {G}.",
    "{C} is a start-up founded by {P} and {P}.",
    # ... and a person alone at the start of a sentence, where an organisation or a place also stands above.
    "{P} is a very patient person.",
    "{P} was my nurse last week.",
    "{P} is the one who called me.",
    "{P} has been very helpful, thank you.",
    "{C} was founded in 2011 and is based in {G}.",
    "I have an account with {C} and with {C}.",
    "My order from {C} never came.",
)


def _address_block(names: Names, w: _Writer) -> None:
    """A contact block with one separator between its lines: name, organisation, street, suite, city, country and
    postcode (the city and the organisation sit where a name could; their neighbours say what they are)."""
    sep = names.rng.choice(("\n", " > ", ">", " | ", " / ", " • ", " - ", "  "))
    parts: list[tuple[str, str | None]] = [(names.full()[1], "PERSON")]
    if names.rng.random() < 0.7:
        parts.append((names.organisation(), "ORG"))
    parts.append((names.street(), "FAC"))
    if names.rng.random() < 0.5:
        parts.append((f"{names.rng.choice(('Suite', 'Apt.', 'Unit', 'Floor'))} {names.rng.randint(1, 999)}", None))
    parts.append((names.city(), "GPE"))
    if names.rng.random() < 0.6:
        parts.append((names.country(), "GPE"))
    for i, (text, label) in enumerate(parts):
        if i:
            w.add(sep)
        w.add(text, label)
    if names.rng.random() < 0.7:
        w.add(f" {names.rng.randint(10000, 99999)}")


def _list_template(names: Names, w: _Writer) -> None:
    """Names in a list ("they had 3: adam, mika and brian")."""
    k = names.rng.randint(2, 6)
    w.add(names.rng.choice(("They had {k}: ", "The winners were ", "Team members: ", "Invited: ",
                            "The kids are called ", "Attendees: ", "We have {k} agents on shift: ")).format(k=k))
    for i in range(k):
        w.add(names.first() if names.rng.random() < 0.7 else names.full()[1], "PERSON")
        w.add(", " if i < k - 2 else (names.rng.choice((" and ", ", and ", " & ")) if i == k - 2 else "."))


def _dialogue_template(names: Names, w: _Writer) -> None:
    """A chat transcript with speakers before a colon ("Éva: What a wife.")."""
    a, b = names.first(), names.first()
    lines = ("Who are you?", "I'm calling about my order.", "What a day.", "Can you hear me?", "Remember me?",
             "Yes, that's right.", "I'll check and get back to you.", "Thanks, bye.", "Hello?")
    for _ in range(names.rng.randint(2, 4)):
        for speaker in (a, b):
            w.add(speaker, "PERSON")
            w.add(names.rng.choice((": ", ":", " : ")) + names.rng.choice(lines) + " ")
    if names.rng.random() < 0.5:
        w.add("Agent: Is there anything else? ")


def _founders_template(names: Names, w: _Writer) -> None:
    """Surnames alone, in a list, as people ("our founders: Novak, Reed and Ito")."""
    k = names.rng.randint(2, 4)
    w.add(names.rng.choice(("The company was started by its {k} founders: ", "Partners: ", "The band was {k} friends: ",
                            "Signed by ")).format(k=k))
    for i in range(k):
        w.add(names.last(), "PERSON")
        w.add(", " if i < k - 2 else (" and " if i == k - 2 else "."))


# Lists and dialogues twice: the place and organisation sentences would otherwise outweigh them.
TEMPLATES: tuple[Template, ...] = (*(_sentence(s) for s in SENTENCES), _list_template, _list_template,
                                   _dialogue_template, _dialogue_template, _founders_template, _address_block,
                                   _address_block)


def _recase(ex: Example, mode: str) -> Example:
    text = ex.text.lower() if mode == "lower" else ex.text.upper()
    return Example(text, ex.entities)  # lower()/upper() keep the length of these scripts' names


def generate(n: int, seed: int = 0) -> list[Example]:
    """``n`` labelled texts; about one in six lower-cased and one in forty upper-cased, as chat text is."""
    names = Names(seed)
    rng = random.Random(seed)
    out: list[Example] = []
    while len(out) < n:
        w = _Writer()
        rng.choice(TEMPLATES)(names, w)
        ex = w.example()
        if not len(ex.text.lower()) == len(ex.text) == len(ex.text.upper()):
            continue  # a letter whose case change alters the length (İ, ß) would shift the spans
        r = rng.random()
        if r < 0.17:
            ex = _recase(ex, "lower")
        elif r < 0.195:
            ex = _recase(ex, "upper")
        out.append(ex)
    return out
