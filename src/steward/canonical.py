"""One canonical form of text for every guard, every detector and the model, whatever characters it uses.

A review got card numbers and prompt injections past the guards with characters a reader never sees
(U+034F, tag characters), bidi overrides, digits of other scripts and look-alike letters. Listing such
characters by hand misses whole classes, so every step here is a Unicode property or table:

1. ``resolve_bidi``: an RLO…PDF span is replaced by what a reader sees (its characters reversed); every other
   bidi control is dropped. Stripping the override alone would leave the reversed number for the detectors.
2. ``remove_ignorables``: every Default_Ignorable_Code_Point (the ``regex`` module's Unicode property: zero
   widths, joiners, U+034F, variation selectors, tag characters, fillers, bidi controls…).
3. ``repair_lookalikes``: in a word that mixes Latin with other letters, each letter whose UTS #39 skeleton is
   a Latin letter becomes that letter ("pаypal" with a Cyrillic а). A word wholly in another script is left
   alone. Before NFKC, which turns some look-alikes into letters that no longer look alike (ϲ -> ς).
4. NFKC (``unicodedata2``, kept current with Unicode): full widths, ligatures, compatibility spaces.
5. ``fold_digits``: a decimal digit of any script (Arabic-Indic, Devanagari, full width…) becomes 0–9.

``canonical_text`` applies all five; ASCII text is returned untouched (it has none of these characters).
``match_key`` is for *comparisons only* (patterns, topics): the UTS #39 confusable skeleton, case-folded,
without accents, with the ambiguous l/I/1 folded together and leetspeak digits inside words read as letters.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import regex
import unicodedata2

_IGNORABLE = regex.compile(r"\p{Default_Ignorable_Code_Point}+")
_DIGIT = regex.compile(r"\p{Nd}")
_MARK = regex.compile(r"\p{Mn}+")
_SPACE = regex.compile(r"\s+")
_WORD = regex.compile(r"\w+")
_BIDI = regex.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_LRE, _RLE, _PDF, _LRO, _RLO = "\u202a", "\u202b", "\u202c", "\u202d", "\u202e"
_PARAGRAPH = "\n\r\u2029\u0085"
# Leetspeak inside a word that also has letters ("1gn0re", "pr3vious"). Not Unicode data: no table holds it.
# 0 and 1 are already mapped by the confusables table (to O and l).
_LEET = str.maketrans({"3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_LEET_WORD = regex.compile(r"[\p{L}\d@$]*\p{L}[\p{L}\d@$]*")


@dataclass(frozen=True)
class Canonical:
    """The canonical text and what it took to get there (counts for a guard's findings)."""

    text: str
    ignorable: int = 0  # default-ignorable characters removed (bidi controls included)
    bidi_overrides: int = 0  # right-to-left override spans replaced by their visual order
    digits_folded: int = 0  # digits of other scripts rewritten as 0-9
    homoglyphs: int = 0  # look-alike letters inside Latin words replaced by the Latin letter
    compatibility: bool = False  # NFKC changed the text (full widths, ligatures…)

    @property
    def changed(self) -> bool:
        return bool(self.ignorable or self.bidi_overrides or self.digits_folded or self.homoglyphs
                    or self.compatibility)


def resolve_bidi(text: str) -> tuple[str, int]:
    """Replace each right-to-left override span (RLO … PDF, or to the end of the paragraph) by its visual order
    and drop the other embedding/override/isolate controls. Returns the text and the number of RLO spans.

    Written by hand because a full bidi reordering (python-bidi) would also reverse genuine Arabic or Hebrew
    text, which is stored in reading order; only an explicit override changes what the reader sees for Latin
    letters and digits. Reversal is by grapheme, so accents stay on their letters.
    """
    if not _BIDI.search(text):
        return text, 0
    stack: list[tuple[str, list[str]]] = [("", [])]
    spans = 0

    def close() -> None:
        nonlocal spans
        kind, parts = stack.pop()
        seg = "".join(parts)
        if kind == _RLO:
            spans += 1
            seg = "".join(reversed(regex.findall(r"\X", seg)))
        stack[-1][1].append(seg)

    for ch in text:
        if ch in (_LRE, _RLE, _LRO, _RLO):
            stack.append((ch, []))
        elif ch == _PDF:
            if len(stack) > 1:
                close()
        elif ch in _PARAGRAPH:
            while len(stack) > 1:
                close()
            stack[-1][1].append(ch)
        elif not _BIDI.match(ch):
            stack[-1][1].append(ch)
    while len(stack) > 1:
        close()
    return "".join(stack[0][1]), spans


def remove_ignorables(text: str) -> tuple[str, int]:
    count = sum(len(m) for m in _IGNORABLE.findall(text))
    return (_IGNORABLE.sub("", text), count) if count else (text, 0)


def fold_digits(text: str) -> tuple[str, int]:
    """Decimal digits of every script as ASCII 0-9 (``unicodedata2.decimal``: the current Unicode data)."""
    n = 0

    def one(m: regex.Match[str]) -> str:
        nonlocal n
        c = m.group(0)
        if c.isascii():
            return c
        n += 1
        return str(unicodedata2.decimal(c))

    out = _DIGIT.sub(one, text)
    return out, n


def repair_lookalikes(text: str) -> tuple[str, int]:
    """Letters imitating Latin ones inside words that mix scripts, as the Latin letters (see the module doc)."""
    swapped = 0

    def fix(m: regex.Match[str]) -> str:
        nonlocal swapped
        word = m.group(0)
        if word.isascii() or not any(c.isascii() and c.isalpha() for c in word):
            return word
        out = []
        for c in word:
            latin = latin_lookalike(c)
            swapped += latin is not None
            out.append(latin or c)
        return "".join(out)

    return _WORD.sub(fix, text), swapped


def canonicalize(text: str, *, nfkc: bool = True, digits: bool = True, lookalikes: bool = True) -> Canonical:
    if text.isascii():
        return Canonical(text)
    controls = len(_BIDI.findall(text))
    text, spans = resolve_bidi(text)
    text, ignorable = remove_ignorables(text)
    ignorable += controls
    swapped = 0
    if lookalikes:
        text, swapped = repair_lookalikes(text)
    compat = False
    if nfkc:
        new = unicodedata2.normalize("NFKC", text)
        compat, text = new != text, new
        text, more = remove_ignorables(text)  # NFKC can expose an ignorable (rare compatibility decompositions)
        ignorable += more
    folded = 0
    if digits:
        text, folded = fold_digits(text)
    return Canonical(text, ignorable, spans, folded, swapped, compat)


def canonical_text(text: str) -> str:
    return canonicalize(text).text


_UNSTORABLE = regex.compile(r"[\ud800-\udfff\x00]")


def check_storable(text: str) -> str | None:
    """Why ``text`` cannot be scored, hashed or stored, or None when it can: a lone surrogate (JSON's
    ``"\\ud800"`` decodes to one; it is not Unicode, and no UTF-8 encoder, tokenizer or database takes it) or
    U+0000 (PostgreSQL text refuses it)."""
    m = _UNSTORABLE.search(text)
    if m is None:
        return None
    ch = m.group(0)
    if ch == "\x00":
        return f"U+0000 (NUL) at position {m.start()}: not allowed in text. Fix: remove it"
    return (f"a lone surrogate U+{ord(ch):04X} at position {m.start()} is not valid Unicode. Fix: send UTF-8 "
            f"text; in JSON a \\uD800-\\uDBFF escape must be followed by its \\uDC00-\\uDFFF pair")


@functools.cache
def _spoof_checker():  # type: ignore[no-untyped-def]
    """ICU's SpoofChecker (PyICU, from the ``pyicu-wheels`` binary wheels): the reference UTS #39 skeleton on
    ICU's current confusables data. Its const operations are thread-safe, so one serves every thread."""
    import icu

    return icu.SpoofChecker()


def skeleton(text: str) -> str:
    """UTS #39 skeleton: NFD, default ignorables removed, each character replaced by its prototype, NFD."""
    return str(_spoof_checker().getSkeleton(0, text))


def latin_lookalike(ch: str) -> str | None:
    """The ASCII letter a non-ASCII letter is confusable with (Cyrillic а -> a, Greek Ι -> I), or None."""
    if ch.isascii() or not ch.isalpha():
        return None
    proto = skeleton(ch)
    if len(proto) != 1 or not proto.isascii() or not proto.isalpha():
        return None
    if proto == "l" and ch.isupper():  # the table's prototype for I is l; an upper-case source meant I
        return "I"
    return proto


@functools.lru_cache(maxsize=4096)
def _key_cached(text: str) -> str:
    key = skeleton(canonical_text(text)).casefold()
    key = _MARK.sub("", skeleton(key))
    key = _LEET_WORD.sub(lambda m: m.group(0).translate(_LEET), key)
    # The table maps I, 1 and | to l, and a lower-case i stays i: fold them together.
    return _SPACE.sub(" ", key.replace("l", "i"))


def match_key(text: str) -> str:
    """The comparison form of a text: two texts a reader takes for the same words get the same key."""
    return _key_cached(text) if len(text) <= 512 else _key_cached.__wrapped__(text)


def key_pattern(source: str) -> str:
    """A regex written for plain lower-case text, rewritten to match ``match_key`` output: each literal letter
    is replaced by its key (``m`` -> ``rn``, ``l`` -> ``i``). Escapes (``\\b``, ``\\s``) are left alone."""
    out: list[str] = []
    i = 0
    while i < len(source):
        c = source[i]
        if c == "\\" and i + 1 < len(source):
            out.append(source[i:i + 2])
            i += 2
            continue
        if c.isalpha():
            k = match_key(c)
            out.append(k if len(k) == 1 else f"(?:{regex.escape(k)})")
        else:
            out.append(c)
        i += 1
    return "".join(out)
