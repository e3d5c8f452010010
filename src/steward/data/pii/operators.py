"""Operators turn findings into new text plus a record of what changed (never the raw value).

Written here rather than with presidio-anonymizer because each change must be recorded per finding for
the quarantine log, pseudonyms must be keyed HMACs with the entity type visible, and NER rows must be
rewritten token by token so that tags stay aligned.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from steward.data.config import PIIConfig
from steward.registry import Registry
from steward.types import Finding

_KEEP_LAST_TYPES = {"CREDIT_CARD", "PHONE_NUMBER", "IBAN_CODE", "US_SSN"}


@dataclass(frozen=True)
class PIIKey:
    """The secret for pseudonyms. ``ephemeral`` keys are random per run: consistent within it only."""

    secret: bytes
    ephemeral: bool

    @classmethod
    def from_env(cls, env_var: str) -> PIIKey:
        value = os.environ.get(env_var)
        if value:
            return cls(value.encode(), False)
        return cls(secrets.token_bytes(32), True)


@dataclass(frozen=True)
class OperatorContext:
    cfg: PIIConfig
    key: PIIKey


Operator = Callable[[str, str, OperatorContext], str]
OPERATORS: Registry[Operator] = Registry("PII operator")


@OPERATORS.register("redact")
def _redact_factory() -> Operator:
    return lambda value, entity, ctx: f"<{entity}>"


@OPERATORS.register("mask")
def _mask_factory() -> Operator:
    def mask(value: str, entity: str, ctx: OperatorContext) -> str:
        keep = ctx.cfg.mask_keep_last if entity in _KEEP_LAST_TYPES else 0
        keep = min(keep, max(0, len(value) - 4))  # never reveal most of a short value
        head, tail = value[: len(value) - keep], value[len(value) - keep:] if keep else ""
        return "".join(ctx.cfg.mask_char if c.isalnum() else c for c in head) + tail

    return mask


def pseudonym(value: str, entity: str, key: PIIKey) -> str:
    """Same value + same key -> same token; irreversible without the key (HMAC-SHA256)."""
    canonical = " ".join(value.casefold().split())
    mac = hmac.new(key.secret, f"{entity}:{canonical}".encode(), hashlib.sha256).hexdigest()[:12]
    return f"<{entity}_{mac}>"


@OPERATORS.register("pseudonymise")
def _pseudonymise_factory() -> Operator:
    return lambda value, entity, ctx: pseudonym(value, entity, ctx.key)


@OPERATORS.register("flag")
def _flag_factory() -> Operator:
    return lambda value, entity, ctx: value


def apply_operators(text: str, findings: Sequence[Finding], ctx: OperatorContext) -> tuple[str, list[dict[str, object]]]:
    """Rewrite ``text``; ``drop`` findings leave the text alone (the caller drops the row).

    Returns the new text and one change record per finding: type, action, span and detector — no value.
    """
    out: list[str] = []
    changes: list[dict[str, object]] = []
    pos = 0
    for f in sorted(findings, key=lambda f: f.start):
        action = ctx.cfg.action_for(f.entity_type)
        changes.append({"entity": f.entity_type, "action": action, "start": f.start, "end": f.end,
                        "detector": f.detector, "score": f.score})
        if action in ("drop", "flag"):
            continue
        out.append(text[pos:f.start])
        out.append(OPERATORS.create(action)(text[f.start:f.end], f.entity_type, ctx))
        pos = f.end
    out.append(text[pos:])
    return "".join(out), changes


@functools.cache
def _name_lists() -> tuple[tuple[str, ...], tuple[str, ...]]:
    # Faker's US English name lists (MIT): surrogates that read like names, so an NER model still learns
    # what a person looks like in context. Sorted for a stable index whatever the dict order.
    from faker.providers.person.en_US import Provider

    return tuple(sorted(set(Provider.first_names))), tuple(sorted(set(Provider.last_names)))


def surrogate_name(token: str, *, first: bool, key: PIIKey) -> str:
    """The same token (and key) always gets the same surrogate; its case shape is kept (SMITH -> JONES)."""
    firsts, lasts = _name_lists()
    pool = firsts if first else lasts
    mac = hmac.new(key.secret, f"PER:{'first' if first else 'last'}:{token.casefold()}".encode(), hashlib.sha256)
    index = int.from_bytes(mac.digest()[:8], "big") % len(pool)
    if pool[index].casefold() == token.casefold():  # the lists hold real names: never hand one back as is
        index = (index + 1) % len(pool)
    name = pool[index]
    if token.isupper() and len(token) > 1:
        return name.upper()
    return name if token[:1].isupper() else name.lower()


def bio_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """(start, end, entity) of each BIO span; a stray I- starts a span of its own."""
    out: list[tuple[int, int, str]] = []
    for i, tag in enumerate(tags):
        if tag == "O":
            continue
        prefix, ent = tag.split("-", 1)
        if prefix in ("B", "S") or not out or out[-1][1] != i or out[-1][2] != ent:
            out.append((i, i + 1, ent))
        else:
            out[-1] = (out[-1][0], i + 1, ent)
    return out


def apply_to_tagged_tokens(tokens: Sequence[str], tags: Sequence[str], findings: Sequence[Finding],
                           ctx: OperatorContext) -> tuple[list[str], list[dict[str, object]]]:
    """NER rows: labelled tokens follow ``pii.tagged`` by tag; detections rewrite untagged tokens only.

    A finding that overlaps a labelled token never rewrites it (recorded as ``kept_labelled``), so a MISC
    entity the detector mistakes for a person keeps its words. Returns the new tokens and one change
    record per span or finding: entity, tag, action, token count — never the value.
    """
    new = list(tokens)
    changes: list[dict[str, object]] = []
    for start, end, ent in bio_spans(tags):
        action = ctx.cfg.tagged.get(ent, "keep")
        if action == "keep":
            continue
        for i in range(start, end):
            # A single-token person in news text is usually a surname ("Clinton said").
            first = i == start and end - start > 1
            new[i] = surrogate_name(tokens[i], first=first, key=ctx.key) if action == "pseudonymise" else f"<{ent}>"
        changes.append({"entity": ent, "tag": ent, "action": action, "tokens": end - start})
    offsets, pos = [], 0
    for tok in tokens:
        offsets.append((pos, pos + len(tok)))
        pos += len(tok) + 1
    allowed = set(ctx.cfg.untagged_entities)
    for f in findings:
        hit = [i for i, (s, e) in enumerate(offsets) if s < f.end and f.start < e]
        labelled = [i for i in hit if tags[i] != "O"]
        if labelled:
            tag = tags[labelled[0]].split("-", 1)[1]
            if ctx.cfg.tagged.get(tag, "keep") == "keep":  # otherwise the tag's own action has handled it
                changes.append({"entity": f.entity_type, "tag": tag, "action": "kept_labelled",
                                "tokens": len(labelled), "detector": f.detector})
            hit = [i for i in hit if tags[i] == "O"]  # the untagged part of the finding is still rewritten
            if not hit:
                continue
        if f.entity_type not in allowed:
            changes.append({"entity": f.entity_type, "tag": "O", "action": "ignored_in_ner", "tokens": len(hit),
                            "detector": f.detector})
            continue
        action = ctx.cfg.action_for(f.entity_type)
        changes.append({"entity": f.entity_type, "tag": "O", "action": action, "tokens": len(hit),
                        "detector": f.detector})
        if action in ("drop", "flag"):
            continue
        op = OPERATORS.create(action)
        for i in hit:
            new[i] = op(tokens[i], f.entity_type, ctx)
    return new, changes
