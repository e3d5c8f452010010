"""One guard interface for inputs and outputs: ``scan(text, *, ctx) -> GuardResult``.

Every guard returns a frozen :class:`GuardResult` (never a tuple) whose ``risk`` is checked to lie in
[0, 1] on construction. A guard may rewrite the text (PII redaction, invisible-character removal) and may
block (``valid=False``) with a machine-readable ``code``. Guards run in the configured order; the rewritten
text of one is the input of the next; the first block stops the chain.

Before the first guard the chain puts the text in its canonical form (``steward.canonical``: bidi overrides
resolved, default-ignorable characters removed, NFKC, digits of every script as 0-9), whatever guards are
configured: every guard, the audit log and the model see the same characters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from steward.canonical import canonicalize
from steward.registry import Registry


@dataclass(frozen=True)
class GuardResult:
    guard: str
    text: str  # the (possibly rewritten) text that continues down the chain
    valid: bool  # False: block the request
    risk: float  # in [0, 1]
    findings: tuple[dict[str, Any], ...] = ()
    code: str = ""  # reason code when blocking (e.g. "prompt_injection")
    message: str = ""  # human-readable reason when blocking

    def __post_init__(self) -> None:
        if not 0.0 <= self.risk <= 1.0:
            raise ValueError(f"GuardResult.risk must be in [0, 1]; got {self.risk} from {self.guard}")
        if not self.valid and not self.code:
            raise ValueError(f"guard {self.guard} blocked without a reason code")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"guard": self.guard, "risk": round(self.risk, 4), "valid": self.valid,
                               "findings": list(self.findings)}
        if self.code:
            out["code"], out["message"] = self.code, self.message
        return out


@dataclass
class GuardContext:
    """What a guard may know about the request besides the text."""

    key_id: str | None = None
    labels: list[str] = field(default_factory=list)
    proba: list[float] | None = None  # output guards: the model's probabilities
    threshold: float | None = None  # output guards: the abstention threshold
    # Filled by the PII input guard, kept in memory for this request only (never logged): the PII values the
    # caller supplied (casefolded) and, when pseudonymising, each pseudonym's original value.
    supplied_pii: set[str] = field(default_factory=set)
    pseudonyms: dict[str, str] = field(default_factory=dict)
    history: str = ""  # chat output guards: the part of the answer already let through


class Guard(Protocol):
    name: str

    def scan(self, text: str, *, ctx: GuardContext) -> GuardResult: ...


GuardFactory = Callable[..., Guard]
INPUT_GUARDS: Registry[Guard] = Registry("input guard")


@dataclass(frozen=True)
class ChainResult:
    text: str
    results: tuple[GuardResult, ...]

    @property
    def blocked(self) -> GuardResult | None:
        return next((r for r in self.results if not r.valid), None)

    def findings(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.results if r.findings or not r.valid or r.risk > 0]

    def count_hits(self, counter: Any) -> None:
        """Add this chain's guard actions to a Prometheus counter labelled (guard, action): a block or a flag
        (findings without a block) per guard that acted; both services count the same way."""
        for r in self.results:
            if r.findings or not r.valid:
                counter.labels(r.guard, "block" if not r.valid else "flag").inc()


class UnicodeGuard:
    """The chain's fixed first step: the canonical text (``steward.canonical``), with what changed as findings.

    Registered as ``unicode`` so configurations may name it, but it always runs first whatever the list says:
    every later guard, the audit log and the model must see the same characters."""

    name = "unicode"

    def scan(self, text: str, *, ctx: GuardContext) -> GuardResult:
        c = canonicalize(text)
        findings: list[dict[str, Any]] = []
        for kind, count in (("invisible_characters", c.ignorable), ("bidi_override", c.bidi_overrides),
                            ("homoglyphs", c.homoglyphs), ("non_ascii_digits", c.digits_folded)):
            if count:
                findings.append({"type": kind, "count": count})
        disguise = c.ignorable + c.bidi_overrides + c.homoglyphs
        return GuardResult(self.name, c.text, True, min(1.0, 0.25 * disguise), tuple(findings))


UNICODE = UnicodeGuard()


def run_chain(guards: list[Guard], text: str, ctx: GuardContext) -> ChainResult:
    first = UNICODE.scan(text, ctx=ctx)
    results = [first]
    text = first.text
    for guard in guards:
        if guard.name == UNICODE.name:  # already ran, first
            continue
        res = guard.scan(text, ctx=ctx)
        results.append(res)
        text = res.text
        if not res.valid:
            break
    return ChainResult(text, tuple(results))
