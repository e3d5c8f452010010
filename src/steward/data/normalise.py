"""Text normalisation: NFKC, mojibake repair, markup stripping, invisible characters, digits, whitespace.

Each step is switchable. The Unicode steps are the ones the services apply before their guards and the model
(``steward.canonical``), so a model is trained on the text it will be served. Pure-ASCII text skips them: it
is already NFKC, cannot be mojibake and has no invisible characters, which is what makes the stage run at
thousands of rows per second.
"""

from __future__ import annotations

import html
import re

import unicodedata2

from steward.canonical import fold_digits, remove_ignorables, repair_lookalikes, resolve_bidi
from steward.data.config import NormaliseConfig

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


def _unicode_steps(text: str, cfg: NormaliseConfig) -> str:
    if cfg.fix_mojibake:
        import ftfy

        # ftfy's own NFC/HTML handling is off: NFKC and markup are separate switches here.
        text = ftfy.fix_text(text, normalization=None, unescape_html=False, fix_character_width=False)
    if cfg.strip_invisible:
        text = remove_ignorables(resolve_bidi(text)[0])[0]
    if cfg.repair_lookalikes:  # before NFKC, as the services do
        text = repair_lookalikes(text)[0]
    if cfg.unicode_nfkc:
        text = unicodedata2.normalize("NFKC", text)
        if cfg.strip_invisible:
            text = remove_ignorables(text)[0]
    if cfg.fold_digits:
        text = fold_digits(text)[0]
    return text


def normalise_text(text: str, cfg: NormaliseConfig) -> str:
    if not text.isascii():
        text = _unicode_steps(text, cfg)
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
        token = _unicode_steps(token, cfg)
    if cfg.whitespace:
        token = _SPACE.sub("", token)
    return token.lower() if cfg.lowercase else token
