"""Operators turn findings into new text plus a record of what changed (never the raw value).

Written here rather than with presidio-anonymizer because each change must be recorded per finding for
the quarantine log, pseudonyms must be keyed HMACs with the entity type visible, and NER rows must be
rewritten token by token so that tags stay aligned.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from steward.config.models import PIIConfig
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


def apply_to_tokens(tokens: Sequence[str], findings: Sequence[Finding], ctx: OperatorContext) -> list[str]:
    """Token-aligned rewrite for NER rows (text = ' '.join(tokens)): each overlapped token is replaced."""
    spans = []
    pos = 0
    for tok in tokens:
        spans.append((pos, pos + len(tok)))
        pos += len(tok) + 1
    new = list(tokens)
    for f in findings:
        action = ctx.cfg.action_for(f.entity_type)
        if action in ("drop", "flag"):
            continue
        op = OPERATORS.create(action)
        for i, (s, e) in enumerate(spans):
            if s < f.end and f.start < e:
                new[i] = op(tokens[i], f.entity_type, ctx)
    return new
