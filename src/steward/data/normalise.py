"""Text normalisation: NFKC, mojibake repair, markup stripping, invisible characters, whitespace.

Each step is switchable. Pure-ASCII text skips the Unicode steps: it is already NFKC and cannot be
mojibake, and skipping them is what makes the stage run at thousands of rows per second.
"""

from __future__ import annotations

import html
import re
import unicodedata

from steward.config.models import NormaliseConfig

# Zero-width and bidi format characters (Unicode category Cf) that hide text from humans and filters.
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]")
_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][^<>]{0,500}>")
_SPACE = re.compile(r"\s+")
_MARKUP_HINT = re.compile(r"<\s*/?\s*[a-zA-Z]|&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")


def strip_markup(text: str) -> str:
    """Remove HTML tags (keeping their text) and decode entities; text without markup is returned as is."""
    if not _MARKUP_HINT.search(text):
        return text
    if _TAG.search(text):
        from selectolax.lexbor import LexborHTMLParser as HTMLParser  # lazy: only tagged texts pay

        tree = HTMLParser(text)
        for node in tree.css("script, style"):
            node.decompose()
        body = tree.body
        text = body.text(separator=" ") if body is not None else text
    return html.unescape(text)


def normalise_text(text: str, cfg: NormaliseConfig) -> str:
    if not text.isascii():
        if cfg.fix_mojibake:
            import ftfy

            # ftfy's own NFC/HTML handling is off: NFKC and markup are separate switches here.
            text = ftfy.fix_text(text, normalization=None, unescape_html=False, fix_character_width=False)
        if cfg.unicode_nfkc:
            text = unicodedata.normalize("NFKC", text)
        if cfg.strip_invisible:
            text = _INVISIBLE.sub("", text)
    if cfg.strip_html:
        text = strip_markup(text)
    if cfg.whitespace:
        text = _SPACE.sub(" ", text).strip()
    if cfg.lowercase:
        text = text.lower()
    return text


def normalise_token(token: str, cfg: NormaliseConfig) -> str:
    """Token-level normalisation for NER rows: markup stripping would break token alignment, so it is skipped."""
    if not token.isascii():
        if cfg.fix_mojibake:
            import ftfy

            token = ftfy.fix_text(token, normalization=None, unescape_html=False, fix_character_width=False)
        if cfg.unicode_nfkc:
            token = unicodedata.normalize("NFKC", token)
        if cfg.strip_invisible:
            token = _INVISIBLE.sub("", token)
    if cfg.whitespace:
        token = _SPACE.sub("", token)
    return token.lower() if cfg.lowercase else token
