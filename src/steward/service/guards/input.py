"""Input guards: size, unicode (invisible characters, homoglyphs), PII, prompt injection, toxicity, topics."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from steward.canonical import key_pattern, match_key
from steward.errors import ConfigError
from steward.service.config import InputGuardSettings
from steward.service.guards.base import INPUT_GUARDS, UNICODE, GuardContext, GuardResult, UnicodeGuard

# Instruction-smuggling patterns with the risk each adds. Data, not code: extend the list to extend the guard.
# Written for plain lower-case text; each is matched on the canonical text and on its confusable skeleton
# (``match_key``: "1gn0re", "ΙGΝΟRΕ", "ɪgnore" and "ignore" share a key), accents removed ("precedentes").
INJECTION_PATTERNS: list[tuple[str, float, str]] = [
    (r"\b(ignore|disregard|forget|skip|override|bypass)\b.{0,80}\b(previous|prior|above|earlier|all|any|your|"
     r"the|these|those|preceding)\b.{0,60}\b(instructions?|prompts?|rules|directions|guidelines|context|commands)\b",
     0.85, "override instructions"),
    (r"\b(reveal|show|print|repeat|output|display|leak|tell me)\b.{0,30}\b(system|hidden|initial|original|secret)"
     r"\s+(prompt|instructions?|message)", 0.8, "system prompt extraction"),
    (r"\byou are (now|no longer)\b", 0.45, "role reassignment"),
    (r"\b(developer|god|jailbreak|dan)\s+mode\b|\bdan\b|\bjailbr(eak|oken)\b", 0.7, "jailbreak persona"),
    (r"\b(pretend|act|behave|roleplay)\b.{0,30}\b(without|no)\b.{0,20}\b(restrictions|rules|filters|limits|"
     r"guidelines|censorship)\b", 0.75, "remove restrictions"),
    (r"(^|\n)\s*(#+\s*)?(system|assistant)\s*:|<\|?(im_start|system|endoftext)\|?>|\[/?(inst|sys)\]", 0.7,
     "role marker"),
    (r"\bnew (instructions|task|rules)\s*:", 0.6, "new instructions"),
    (r"\b(do not|don't|never)\b.{0,20}\b(follow|obey)\b.{0,20}\b(rules|instructions|guidelines)\b", 0.6,
     "refuse rules"),
    (r"\b(ignorier|missacht|vergiss|vergesst|vergessen)\w*\b.{0,80}\b(anweisungen|instruktionen|regeln|vorgaben|"
     r"befehle)\b|\bvergiss\b.{0,20}\balles\b", 0.8, "override instructions (de)"),
    # German puts the infinitive last: "Die obigen Anweisungen ignorieren und …".
    (r"\b(obigen|vorherigen|vorigen|bisherigen|vorangegangenen|vorstehenden)\b.{0,40}\b(ausfuhrungen|anweisungen|"
     r"instruktionen|befehle|regeln|vorgaben)\b.{0,20}\b(ignorieren|vergessen|missachten|ubergehen)\b", 0.8,
     "override instructions (de, verb last)"),
    # The persona opener of the shared jailbreak prompt collections, in English and German.
    (r"\bi want you to act as\b|\bich mochte,? dass (du|sie) (als|die rolle)\b.{0,60}\b(fungierst|fungieren|"
     r"agierst|agieren|handelst|handeln|ubernimmst|ubernehmen)\b", 0.8, "persona takeover"),
    (r"\b(ignorez|ignorer|oubliez|oublie|oublier|ne tenez pas compte)\b.{0,80}\b(instructions?|consignes|regles|directives)\b",
     0.8, "override instructions (fr)"),
    (r"\b(ignora[r]?|ignore|olvida[r]?|olvide)\b.{0,80}\b(instrucciones|reglas|indicaciones)\b", 0.8,
     "override instructions (es)"),
    (r"\b(ignora|dimentica)\b.{0,80}\b(istruzioni|regole)\b", 0.8, "override instructions (it)"),
    (r"\b(ignore|ignora|esqueca)\b.{0,80}\b(instrucoes|regras)\b", 0.8, "override instructions (pt)"),
    (r"\b(negeer|vergeet)\b.{0,80}\b(instructies|regels|opdrachten)\b", 0.8, "override instructions (nl)"),
]
_FLAGS = re.IGNORECASE | re.DOTALL
_INJECTION = [(re.compile(p, _FLAGS), re.compile(key_pattern(p), _FLAGS), w, why) for p, w, why in INJECTION_PATTERNS]


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


class PIIGuard:
    """The data stage's PII recognisers; the model sees ``<EMAIL_ADDRESS>`` (or a keyed pseudonym) instead."""

    name = "pii"

    def __init__(self, action: str, ner: bool) -> None:
        from steward.data.config import PIIConfig
        from steward.data.pii.engine import PIIEngine
        from steward.data.pii.operators import OperatorContext, PIIKey

        cfg = PIIConfig(ner=ner, default_action=action)  # type: ignore[arg-type]
        self.cfg = cfg
        self.engine = PIIEngine(cfg).prepare()  # NER loaded at start-up, not on the first request
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
    like any served model: the built-in one (``steward.service.guards.detector``) or a run of the user's own."""

    def __init__(self, run_dir: Path, label: str = "injection", operating_threshold: float = 0.5,
                 public_key: bytes | None = None) -> None:
        from steward.compress.release import load

        self.operating_threshold = operating_threshold
        # checked against its run's signed ledger like a served model (public_key: its signer; None: this
        # machine's key)
        self.served = load(Path(run_dir), None, mode="auto", public_key=public_key)
        if label not in self.served.labels:
            raise ConfigError(f"injection_model: the model in {run_dir} has labels {self.served.labels}, none of "
                              f"them {label!r}. Fix: point it at a run trained on injection/benign data")
        self.index = self.served.labels.index(label)

    def proba(self, text: str) -> float:
        return float(self.served.clf.predict_proba([text])[0][self.index])

    def risk(self, text: str) -> tuple[float, float]:
        """(risk, probability): the probability rescaled so the detector's operating point is risk 0.5."""
        from steward.service.guards.detector import risk

        p = self.proba(text)
        return risk(p, self.operating_threshold), p


# The PII guard's placeholders (<EMAIL_ADDRESS>, <CREDIT_CARD_3f2a…>): removed from what the classifier reads. It
# learnt from raw prompts, where personal data looks like values, and reads a sentence full of angle-bracket
# capitals as markup smuggling ("card <CREDIT_CARD>, mail <EMAIL_ADDRESS>" scored 0.97). They are Steward's
# words, not the caller's; the patterns still see them.
PII_PLACEHOLDER = re.compile(r"<[A-Z][A-Z_]*[A-Z](?:_[0-9a-f]{6,})?>")

# With a classifier, pattern evidence below this is left to the classifier ("developer mode", "you are now"
# alone): it was trained on benign messages that use those words (bench/bench_injection.py).
STRONG_PATTERN = 0.8


class InjectionGuard:
    """Instruction-smuggling patterns and, when configured, a trained classifier: the risk is the larger of the
    classifier's probability and strong pattern evidence."""

    name = "injection"

    def __init__(self, threshold: float, model: str | Path | None = None, *, progress: bool = False) -> None:
        from steward.service.guards.detector import resolve

        self.threshold = threshold
        self.setting = "patterns" if model is None else str(model)
        run_dir, self.info = resolve(model, progress=progress)
        self.detector = InjectionDetector(
            run_dir, operating_threshold=self.info.operating_threshold if self.info is not None else 0.5,
            public_key=self._built_with(self.info)) if run_dir is not None else None

    @staticmethod
    def _built_with(info: Any) -> bytes | None:
        """The built-in detector's ledger signer, as recorded when it was built (None: a user's run)."""
        from steward.ledger.checkpoint import parse_public_key

        return parse_public_key(info.ledger_public_key) if info is not None and info.ledger_public_key else None

    def describe(self) -> dict[str, Any]:
        """What /v1/models and the model card say about this guard: which detector, its hashes and scorecard."""
        out: dict[str, Any] = {"guard": self.name, "threshold": self.threshold, "strong_pattern": STRONG_PATTERN,
                               "patterns": len(INJECTION_PATTERNS)}
        if self.info is not None:
            out.update(detector="builtin", name=self.info.name, key=self.info.key, base_model=self.info.base_model,
                       operating_threshold=self.info.operating_threshold,
                       data_sha256=self.info.data_sha256, weights_sha256=self.info.weights_sha256,
                       training_rows=self.info.rows, scorecard=self.info.scorecard)
        elif self.detector is not None:
            sc = self.detector.served.scorecard
            out.update(detector="run", name=self.detector.served.version, weights_sha256=self.detector.served
                       .weights_sha256, scorecard={"gates_passed": sc.passed if sc is not None else None})
        else:
            out.update(detector="patterns only", name="patterns")
        return out

    def pattern_risk(self, text: str) -> tuple[float, list[tuple[float, str]]]:
        key = match_key(text)
        hits = [(w, why) for rx, krx, w, why in _INJECTION if rx.search(text) or krx.search(key)]
        risk = 1.0
        for w, _ in hits:
            risk *= 1.0 - w
        return (1.0 - risk if hits else 0.0), hits

    def scan(self, text: str, *, ctx: GuardContext) -> GuardResult:
        risk, hits = self.pattern_risk(text)
        findings = [{"type": "prompt_injection", "pattern": why, "weight": w} for w, why in hits]
        source = ", ".join(why for _, why in hits)
        if self.detector is not None:
            r, p = self.detector.risk(PII_PLACEHOLDER.sub("", text))
            strong = risk if risk >= STRONG_PATTERN else 0.0
            if r >= strong:
                risk, source = r, f"classifier, p = {p:.2f}"
            findings.append({"type": "prompt_injection", "classifier": round(p, 4), "classifier_risk": round(r, 4)})
        if risk >= self.threshold:
            return GuardResult(self.name, text, False, risk, tuple(findings), "prompt_injection",
                               f"the text looks like an attempt to override instructions ({source})")
        return GuardResult(self.name, text, True, risk,
                           tuple(f for f in findings if f.get("classifier_risk", 1) >= 0.1))


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
        self.topics = [t.strip() for t in topics if t.strip()]
        # Compared on confusable skeletons: "crypt0", "сrypto" (Cyrillic с) and "CRYPTO" are the same topic.
        self.keys = {match_key(t): t for t in self.topics}
        self.rx = re.compile(r"\b(" + "|".join(re.escape(k) for k in self.keys) + r")\b") if self.topics else None

    def scan(self, text: str, *, ctx: GuardContext) -> GuardResult:
        m = self.rx.search(match_key(text)) if self.rx else None
        if m:
            topic = self.keys.get(m.group(0), m.group(0)).lower()
            return GuardResult(self.name, text, False, 1.0, ({"type": "blocked_topic", "topic": topic},),
                               "blocked_topic", f"the text touches a blocked topic ({topic!r})")
        return GuardResult(self.name, text, True, 0.0)


@INPUT_GUARDS.register("size")
def _size(cfg: InputGuardSettings, max_chars: int) -> SizeGuard:
    return SizeGuard(max_chars)


@INPUT_GUARDS.register("unicode")
def _unicode(cfg: InputGuardSettings, max_chars: int) -> UnicodeGuard:
    return UNICODE


@INPUT_GUARDS.register("pii")
def _pii(cfg: InputGuardSettings, max_chars: int) -> PIIGuard:
    return PIIGuard(cfg.pii_action, cfg.pii_ner)


@INPUT_GUARDS.register("injection")
def _injection(cfg: InputGuardSettings, max_chars: int) -> InjectionGuard:
    return InjectionGuard(cfg.injection_threshold, cfg.injection_model)


@INPUT_GUARDS.register("toxicity")
def _toxicity(cfg: InputGuardSettings, max_chars: int) -> ToxicityGuard:
    return ToxicityGuard(cfg.toxicity_threshold)


@INPUT_GUARDS.register("blocked_topics")
def _topics(cfg: InputGuardSettings, max_chars: int) -> TopicGuard:
    return TopicGuard(cfg.blocked_topics)
