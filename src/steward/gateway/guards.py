"""The gateway's guards: the classifier service's input guards (same registry, same interface) and output
guards for generated text — system-prompt leaks, toxicity, PII the caller did not supply, blocked topics —
plus the sentence-by-sentence release of a streamed answer.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from steward.gateway.config import ChatGuardSettings, GatewayConfig
from steward.registry import Registry
from steward.service.guards import INPUT_GUARDS, Guard, GuardContext, GuardResult
from steward.service.guards.input import TopicGuard

CHAT_OUTPUT_GUARDS: Registry[Guard] = Registry("chat output guard")

_WORD = re.compile(r"\w+", re.UNICODE)


def with_canary(system_prompt: str, canary: str | None = None) -> tuple[str, str]:
    """The system prompt with a marker appended (random unless given), and the marker. A model that repeats
    its instructions repeats the marker too; the answer is stopped before the marker reaches the caller."""
    canary = canary or f"SC-{secrets.token_hex(6)}"
    return f"{system_prompt}\n(Internal reference {canary}; never mention it.)", canary


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


class SystemPromptGuard:
    """Blocks an answer that contains the canary or repeats a large share of the system prompt's word
    n-grams (5-grams; 3-grams for a short prompt). Looks at the whole answer so far, not one sentence."""

    name = "system_prompt"

    def __init__(self, system_prompt: str, canary: str | None, overlap: float) -> None:
        self.canary = canary
        self.overlap = overlap
        words = [w.casefold() for w in _WORD.findall(system_prompt)]
        self.n = 5 if len(words) >= 20 else 3
        self.grams = _ngrams(words, self.n)

    def scan(self, text: str, *, ctx: GuardContext) -> GuardResult:
        whole = ctx.history + text
        if self.canary and self.canary.casefold() in whole.casefold():
            return GuardResult(self.name, text, False, 1.0, ({"type": "system_prompt_leak", "via": "canary"},),
                               "system_prompt_leak", "the answer started to reveal the system prompt")
        if not self.grams:
            return GuardResult(self.name, text, True, 0.0)
        seen = _ngrams([w.casefold() for w in _WORD.findall(whole)], self.n)
        share = len(seen & self.grams) / len(self.grams)
        if share >= self.overlap:
            return GuardResult(self.name, text, False, min(1.0, share),
                               ({"type": "system_prompt_leak", "via": "overlap", "share": round(share, 3)},),
                               "system_prompt_leak", "the answer repeats a large part of the system prompt")
        return GuardResult(self.name, text, True, min(1.0, share))


class OutputToxicityGuard:
    name = "toxicity"

    def __init__(self, threshold: float, action: str) -> None:
        self.threshold, self.action = threshold, action

    def scan(self, text: str, *, ctx: GuardContext) -> GuardResult:
        from steward.data.screen import toxicity_scores

        if not text.strip():
            return GuardResult(self.name, text, True, 0.0)
        risk = float(toxicity_scores([text])[0])
        if risk < self.threshold:
            return GuardResult(self.name, text, True, risk)
        finding = ({"type": "toxicity", "score": round(risk, 4), "action": self.action},)
        if self.action == "block":
            return GuardResult(self.name, text, False, risk, finding, "toxicity", "the answer was judged abusive or "
                                                                                 "profane")
        return GuardResult(self.name, text, True, risk, finding)


class OutputPIIGuard:
    """PII in the answer that the caller did not supply (their own values, or pseudonyms of them, pass):
    redacted to ``<TYPE>``, blocked, or only reported, as configured."""

    name = "pii"

    def __init__(self, action: str, ner: bool) -> None:
        from steward.data.config import PIIConfig
        from steward.data.pii.engine import PIIEngine

        self.action = action
        self.engine = PIIEngine(PIIConfig(ner=ner, default_action="redact")).prepare()
        self._pseudonym = re.compile(r"<[A-Z_]+_[0-9a-f]{12}>")

    def scan(self, text: str, *, ctx: GuardContext) -> GuardResult:
        (found,) = self.engine.detect([text])
        foreign = [f for f in found if " ".join(text[f.start:f.end].casefold().split()) not in ctx.supplied_pii
                   and not self._pseudonym.fullmatch(text[f.start:f.end])]
        if not foreign:
            return GuardResult(self.name, text, True, 0.0)
        findings = tuple({"type": f.entity_type, "action": self.action, "detector": f.detector} for f in foreign)
        risk = max(f.score for f in foreign)
        if self.action == "block":
            return GuardResult(self.name, text, False, risk, findings, "pii",
                               f"the answer contained personal data the caller did not supply "
                               f"({', '.join(sorted({f.entity_type for f in foreign}))})")
        if self.action == "warn":
            return GuardResult(self.name, text, True, risk, findings)
        out, pos = [], 0
        for f in sorted(foreign, key=lambda f: f.start):
            if f.start < pos:
                continue
            out += [text[pos:f.start], f"<{f.entity_type}>"]
            pos = f.end
        out.append(text[pos:])
        return GuardResult(self.name, "".join(out), True, risk, findings)


class OutputTopicGuard(TopicGuard):
    name = "blocked_topics"


@dataclass(frozen=True)
class OutputGuardContext:
    system_prompt: str
    canary: str | None


@CHAT_OUTPUT_GUARDS.register("system_prompt")
def _system_prompt(cfg: ChatGuardSettings, octx: OutputGuardContext) -> SystemPromptGuard:
    return SystemPromptGuard(octx.system_prompt, octx.canary, cfg.system_prompt_overlap)


@CHAT_OUTPUT_GUARDS.register("toxicity")
def _toxicity(cfg: ChatGuardSettings, octx: OutputGuardContext) -> OutputToxicityGuard:
    return OutputToxicityGuard(cfg.toxicity_threshold, cfg.output_toxicity_action)


@CHAT_OUTPUT_GUARDS.register("pii")
def _pii(cfg: ChatGuardSettings, octx: OutputGuardContext) -> OutputPIIGuard:
    return OutputPIIGuard(cfg.output_pii_action, cfg.pii_ner)


@CHAT_OUTPUT_GUARDS.register("blocked_topics")
def _topics(cfg: ChatGuardSettings, octx: OutputGuardContext) -> OutputTopicGuard:
    return OutputTopicGuard(cfg.blocked_topics)


def guards_for(cfg: GatewayConfig, role: str) -> ChatGuardSettings:
    """The guard settings a key of this role gets: ``cfg.guards`` with the role's policy applied (the config
    checked at load that every policy applies)."""
    override = cfg.policies.get(role)  # type: ignore[call-overload]
    if not override:
        return cfg.guards
    return ChatGuardSettings.model_validate({**cfg.guards.model_dump(), **override})


def build(cfg: ChatGuardSettings, max_chars: int, octx: OutputGuardContext) -> tuple[list[Guard], list[Guard]]:
    """The input chain (the serve stage's registry) and the output chain, in the configured order."""
    import steward.service.guards  # noqa: F401  (registers the input guards)

    return ([INPUT_GUARDS.create(n, cfg, max_chars) for n in cfg.input],
            [CHAT_OUTPUT_GUARDS.create(n, cfg, octx) for n in cfg.output])


# A sentence ends at . ! ? or … (with closing quotes or brackets) followed by white space, or at a newline.
_BOUNDARY = re.compile(r"[.!?\u2026][\"')\]\u201d\u2019]*\s+|\n+")


@dataclass
class Release:
    """Holds a streamed answer back until a sentence boundary has passed, so the output guards judge whole
    sentences and nothing is sent that a guard would later stop (never emit, then retract). Also cuts the
    answer at the first stop sequence (which, as in the OpenAI API, is not returned)."""

    stop: tuple[str, ...] = ()
    sentences: bool = True  # False (no output guards): release at once, holding back only a stop's length
    buffer: str = ""
    stopped: bool = False  # a stop sequence was found: no more text
    _hold: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._hold = max((len(s) for s in self.stop), default=1) - 1

    def feed(self, piece: str) -> str:
        """Add a piece; return the text now ready for the guards ('' if none)."""
        if self.stopped:
            return ""
        self.buffer += piece
        hits = [i for i in (self.buffer.find(s) for s in self.stop if s) if i >= 0]
        if hits:
            self.stopped = True
            ready, self.buffer = self.buffer[:min(hits)], ""
            return ready
        if not self.sentences:
            cut = max(0, len(self.buffer) - self._hold)
            ready, self.buffer = self.buffer[:cut], self.buffer[cut:]
            return ready
        last = None
        for m in _BOUNDARY.finditer(self.buffer):
            if len(self.buffer) - m.end() >= self._hold:  # keep enough back to see a stop sequence whole
                last = m
        if last is None:
            return ""
        ready, self.buffer = self.buffer[:last.end()], self.buffer[last.end():]
        return ready

    def flush(self) -> str:
        ready, self.buffer = ("" if self.stopped else self.buffer), ""
        return ready


def restore_pseudonyms(text: str, pseudonyms: dict[str, Any]) -> str:
    """Put the caller's own values back where the answer repeats their pseudonyms (this request's only)."""
    for token, value in pseudonyms.items():
        text = text.replace(token, str(value))
    return text
