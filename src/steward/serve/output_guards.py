"""Output guards: abstain below the confidence threshold, allow only listed labels, no PII echoed back."""

from __future__ import annotations

from steward.registry import Registry
from steward.serve.config import GuardSettings
from steward.service.guards import Guard, GuardContext, GuardResult, build_inputs
from steward.service.guards.input import PIIGuard

OUTPUT_GUARDS: Registry[Guard] = Registry("output guard")


class ConfidenceGuard:
    """Marks the decision as abstained (routed to a person) when the top probability is under the threshold."""

    name = "confidence"

    def scan(self, text: str, *, ctx: GuardContext) -> GuardResult:
        top = max(ctx.proba or [1.0])
        threshold = ctx.threshold or 0.0
        if top < threshold:
            return GuardResult(self.name, text, True, 1.0 - top,
                               ({"type": "low_confidence", "confidence": round(top, 4), "threshold": threshold},))
        return GuardResult(self.name, text, True, 1.0 - top)


class LabelAllowlistGuard:
    name = "label_allowlist"

    def __init__(self, allowed: list[str] | None) -> None:
        self.allowed = set(allowed) if allowed is not None else None

    def scan(self, text: str, *, ctx: GuardContext) -> GuardResult:
        allowed = self.allowed if self.allowed is not None else set(ctx.labels)
        if text not in allowed:
            return GuardResult(self.name, text, False, 1.0, ({"type": "label_not_allowed", "label": text},),
                               "label_not_allowed", "the model produced a label this service may not return")
        return GuardResult(self.name, text, True, 0.0)


class PIIEchoGuard:
    """Anything returned to the caller is redacted if it carries PII (reusing the input PII recognisers)."""

    name = "pii_echo"

    def __init__(self, ner: bool) -> None:
        self.pii = PIIGuard("redact", ner)

    def scan(self, text: str, *, ctx: GuardContext) -> GuardResult:
        res = self.pii.scan(text, ctx=ctx)
        return GuardResult(self.name, res.text, True, res.risk, res.findings)


@OUTPUT_GUARDS.register("confidence")
def _confidence(cfg: GuardSettings) -> ConfidenceGuard:
    return ConfidenceGuard()


@OUTPUT_GUARDS.register("label_allowlist")
def _allowlist(cfg: GuardSettings) -> LabelAllowlistGuard:
    return LabelAllowlistGuard(cfg.label_allowlist)


@OUTPUT_GUARDS.register("pii_echo")
def _pii_echo(cfg: GuardSettings) -> PIIEchoGuard:
    return PIIEchoGuard(cfg.pii_ner)


def build(cfg: GuardSettings, max_chars: int) -> tuple[list[Guard], list[Guard]]:
    """The classifier service's configured input and output guard chains, in order."""
    return (build_inputs(cfg, max_chars),
            [OUTPUT_GUARDS.create(n, cfg) for n in cfg.output])
