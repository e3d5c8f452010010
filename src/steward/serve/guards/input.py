"""Input guards: size, unicode (invisible characters, homoglyphs), PII, prompt injection, toxicity, topics."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

from steward.config.models import GuardSettings
from steward.errors import ConfigError
from steward.serve.guards.base import INPUT_GUARDS, GuardContext, GuardResult

# Zero-width, joiners, bidi controls, soft hyphen, BOM: invisible in a browser, visible to a tokenizer.
INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
# Cyrillic and Greek letters that look like Latin ones (the common confusables).
HOMOGLYPHS = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "Х": "X", "У": "Y", "І": "I", "Ј": "J", "Ѕ": "S", "ο": "o", "α": "a", "ε": "e", "ι": "i", "κ": "k",
    "ν": "v", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "Ο": "O", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H",
    "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
})
_LATIN_WORD = re.compile(r"\w+")

# Instruction-smuggling patterns with the risk each adds. Data, not code: extend the list to extend the guard.
INJECTION_PATTERNS: list[tuple[str, float, str]] = [
    (r"\b(ignore|disregard|forget|skip|override)\b.{0,40}\b(previous|prior|above|earlier|all|any|your|the)\b"
     r".{0,30}\b(instructions?|prompts?|rules|directions|guidelines|context)\b", 0.85, "override instructions"),
    (r"\b(reveal|show|print|repeat|output|display|leak|tell me)\b.{0,30}\b(system|hidden|initial|original|secret)"
     r"\s+(prompt|instructions?|message)", 0.8, "system prompt extraction"),
    (r"\byou are (now|no longer)\b", 0.45, "role reassignment"),
    (r"\b(developer|god|jailbreak|dan)\s+mode\b|\bDAN\b|\bjailbr(eak|oken)\b", 0.7, "jailbreak persona"),
    (r"\b(pretend|act|behave|roleplay)\b.{0,30}\b(without|no)\b.{0,20}\b(restrictions|rules|filters|limits|"
     r"guidelines|censorship)\b", 0.75, "remove restrictions"),
    (r"(^|\n)\s*(#+\s*)?(system|assistant)\s*:|<\|?(im_start|system|endoftext)\|?>|\[/?(INST|SYS)\]", 0.7,
     "role marker"),
    (r"\bnew (instructions|task|rules)\s*:", 0.6, "new instructions"),
    (r"\b(do not|don't|never)\b.{0,20}\b(follow|obey)\b.{0,20}\b(rules|instructions|guidelines)\b", 0.6,
     "refuse rules"),
    (r"\bignorier\w*\b.{0,40}\b(anweisungen|instruktionen|regeln|vorgaben)\b|\bvergiss\b.{0,20}\balles\b", 0.8,
     "override instructions (de)"),
]
_INJECTION = [(re.compile(p, re.IGNORECASE | re.DOTALL), w, why) for p, w, why in INJECTION_PATTERNS]


class SizeGuard:
    name = "size"

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars

    def scan(self, text: str, *, ctx: GuardContext) -> GuardResult:
        if not text.strip():
            return GuardResult(self.name, text, False, 1.0, code="empty_input", message="the text is empty")
        if len(text) > self.max_chars:
            return GuardResult(self.name, text, False, 1.0, code="too_long",
                               message=f"the text has {len(text)} characters; the limit is {self.max_chars}")
        return GuardResult(self.name, text, True, 0.0)


class UnicodeGuard:
    """Remove invisible characters, apply NFKC, and map look-alike letters inside Latin words to Latin."""

    name = "unicode"

    def scan(self, text: str, *, ctx: GuardContext) -> GuardResult:
        invisible = len(INVISIBLE.findall(text))
        clean = unicodedata.normalize("NFKC", INVISIBLE.sub("", text))
        swapped = 0

        def fix(m: re.Match[str]) -> str:
            nonlocal swapped
            word = m.group(0)
            mapped = word.translate(HOMOGLYPHS)
            # Only mixed-script words: a whole Cyrillic or Greek word is a real word, not a disguise.
            if mapped != word and any("a" <= c.lower() <= "z" for c in word):
                swapped += sum(a != b for a, b in zip(word, mapped, strict=True))
                return mapped
            return word

        clean = _LATIN_WORD.sub(fix, clean)
        findings: list[dict[str, Any]] = []
        if invisible:
            findings.append({"type": "invisible_characters", "count": invisible})
        if swapped:
            findings.append({"type": "homoglyphs", "count": swapped})
        return GuardResult(self.name, clean, True, min(1.0, 0.25 * (invisible + swapped)), tuple(findings))


class PIIGuard:
    """The data stage's PII recognisers; the model sees ``<EMAIL_ADDRESS>`` (or a keyed pseudonym) instead."""

    name = "pii"

    def __init__(self, action: str, ner: bool) -> None:
        from steward.config.models import PIIConfig
        from steward.data.pii.engine import PIIEngine
        from steward.data.pii.operators import OperatorContext, PIIKey

        cfg = PIIConfig(ner=ner, default_action=action)  # type: ignore[arg-type]
        self.cfg = cfg
        self.engine = PIIEngine(cfg)
        self.ctx = OperatorContext(cfg, PIIKey.from_env(cfg.key_env))

    def scan(self, text: str, *, ctx: GuardContext) -> GuardResult:
        from steward.data.pii.operators import apply_operators, pseudonym

        (findings,) = self.engine.detect([text])
        if not findings:
            return GuardResult(self.name, text, True, 0.0)
        for f in findings:
            value = text[f.start:f.end]
            ctx.supplied_pii.add(" ".join(value.casefold().split()))
            if self.cfg.action_for(f.entity_type) == "pseudonymise":
                ctx.pseudonyms[pseudonym(value, f.entity_type, self.ctx.key)] = value
        new, changes = apply_operators(text, findings, self.ctx)
        out = tuple({"type": c["entity"], "action": c["action"], "detector": c["detector"]} for c in changes)
        return GuardResult(self.name, new, True, max(f.score for f in findings), out)


class InjectionDetector:
    """A Steward-trained classifier (labels include ``injection``) loaded from its run folder, hashes checked
    like any served model. Trained by `bench/bench_injection.py` through the data, train and evaluate stages."""

    def __init__(self, run_dir: Path, label: str = "injection") -> None:
        from steward.serve.model import load

        self.served = load(Path(run_dir), None, mode="auto")
        if label not in self.served.labels:
            raise ConfigError(f"injection_model: the model in {run_dir} has labels {self.served.labels}, none of "
                              f"them {label!r}. Fix: point it at a run trained on injection/benign data")
        self.index = self.served.labels.index(label)

    def proba(self, text: str) -> float:
        return float(self.served.clf.predict_proba([text])[0][self.index])


# With a classifier, pattern evidence below this is left to the classifier ("developer mode", "you are now"
# alone): it was trained on benign messages that use those words (bench/bench_injection.py).
STRONG_PATTERN = 0.8


class InjectionGuard:
    """Instruction-smuggling patterns and, when configured, a trained classifier: the risk is the larger of the
    classifier's probability and strong pattern evidence."""

    name = "injection"

    def __init__(self, threshold: float, model: Path | None = None) -> None:
        self.threshold = threshold
        self.detector = InjectionDetector(model) if model is not None else None

    def pattern_risk(self, text: str) -> tuple[float, list[tuple[float, str]]]:
        hits = [(w, why) for rx, w, why in _INJECTION if rx.search(text)]
        risk = 1.0
        for w, _ in hits:
            risk *= 1.0 - w
        return (1.0 - risk if hits else 0.0), hits

    def scan(self, text: str, *, ctx: GuardContext) -> GuardResult:
        risk, hits = self.pattern_risk(text)
        findings = [{"type": "prompt_injection", "pattern": why, "weight": w} for w, why in hits]
        source = ", ".join(why for _, why in hits)
        if self.detector is not None:
            p = self.detector.proba(text)
            strong = risk if risk >= STRONG_PATTERN else 0.0
            if p >= strong:
                risk, source = p, f"classifier, p = {p:.2f}"
            findings.append({"type": "prompt_injection", "classifier": round(p, 4)})
        if risk >= self.threshold:
            return GuardResult(self.name, text, False, risk, tuple(findings), "prompt_injection",
                               f"the text looks like an attempt to override instructions ({source})")
        return GuardResult(self.name, text, True, risk, tuple(f for f in findings if f.get("classifier", 1) >= 0.1))


class ToxicityGuard:
    name = "toxicity"

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def scan(self, text: str, *, ctx: GuardContext) -> GuardResult:
        from steward.data.screen import toxicity_scores

        risk = float(toxicity_scores([text])[0])
        if risk >= self.threshold:
            return GuardResult(self.name, text, False, risk, ({"type": "toxicity", "score": round(risk, 4)},),
                               "toxicity", "the text was judged abusive or profane")
        return GuardResult(self.name, text, True, risk)


class TopicGuard:
    name = "blocked_topics"

    def __init__(self, topics: list[str]) -> None:
        self.topics = [t for t in topics if t.strip()]
        self.rx = re.compile(r"\b(" + "|".join(re.escape(t.strip()) for t in self.topics) + r")\b",
                             re.IGNORECASE) if self.topics else None

    def scan(self, text: str, *, ctx: GuardContext) -> GuardResult:
        m = self.rx.search(text) if self.rx else None
        if m:
            return GuardResult(self.name, text, False, 1.0, ({"type": "blocked_topic", "topic": m.group(0).lower()},),
                               "blocked_topic", f"the text touches a blocked topic ({m.group(0).lower()!r})")
        return GuardResult(self.name, text, True, 0.0)


@INPUT_GUARDS.register("size")
def _size(cfg: GuardSettings, max_chars: int) -> SizeGuard:
    return SizeGuard(max_chars)


@INPUT_GUARDS.register("unicode")
def _unicode(cfg: GuardSettings, max_chars: int) -> UnicodeGuard:
    return UnicodeGuard()


@INPUT_GUARDS.register("pii")
def _pii(cfg: GuardSettings, max_chars: int) -> PIIGuard:
    return PIIGuard(cfg.pii_action, cfg.pii_ner)


@INPUT_GUARDS.register("injection")
def _injection(cfg: GuardSettings, max_chars: int) -> InjectionGuard:
    return InjectionGuard(cfg.injection_threshold, getattr(cfg, "injection_model", None))


@INPUT_GUARDS.register("toxicity")
def _toxicity(cfg: GuardSettings, max_chars: int) -> ToxicityGuard:
    return ToxicityGuard(cfg.toxicity_threshold)


@INPUT_GUARDS.register("blocked_topics")
def _topics(cfg: GuardSettings, max_chars: int) -> TopicGuard:
    return TopicGuard(cfg.blocked_topics)
