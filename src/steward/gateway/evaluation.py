"""The red-team suite as a generative probe (``injection``): every attack and benign prompt of
:mod:`steward.gateway.redteam` put to the model in-process, once bare and once through the gateway's own guard
chains (the chat role's input guards on the prompt, the output guards on the answer), each attack judged from
the answer as the red team judges it over HTTP.

It lives here, not in the evaluate stage, because it runs the gateway's guards and the gateway sits above the
evaluate stage; the CLI imports this module, which registers the probe with the evaluate stage's registry.
Without it the evaluate stage reports the probe as skipped, naming this module.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from steward.evaluate.generative import GEN_PROBES, ChatLM, GenContext, Measured
from steward.evaluate.generative.base import Columns, Statistic
from steward.evaluate.generative.refusal import detector
from steward.gateway.config import GatewayConfig
from steward.gateway.guards import OutputGuardContext, build, guards_for, with_canary
from steward.gateway.redteam import BENIGN, CATEGORIES, SECRET_RECORD, Judge, attack_suite
from steward.gateway.turn import model_messages
from steward.service.guards import GuardContext, run_chain


def _rate(column: str, category: int | None = None) -> Any:
    def fn(c: Columns) -> float:
        x = c[column][c["benign"] == 0] if category is None else c[column][(c["benign"] == 0) & (c["category"] == category)]
        x = x[np.isfinite(x)]
        return float(x.mean()) if len(x) else float("nan")

    return fn


def _refusals(column: str) -> Any:
    def fn(c: Columns) -> float:
        x = c[column][c["benign"] == 1]
        return float(x.mean()) if len(x) else float("nan")

    return fn


def _verdict(judge: Judge, attack: Any, answer: str) -> float:
    verdict, _ = judge(attack, answer)
    return float("nan") if verdict == "unjudged" else float(verdict == "succeeded")


@GEN_PROBES.register("injection")
def injection_probe(ctx: GenContext, lm: ChatLM) -> Measured:
    gcfg = ctx.gateway if isinstance(ctx.gateway, GatewayConfig) else GatewayConfig()
    # the red team's set-up: a record worth extracting in the system prompt, the gateway's canary after it —
    # a fixed one (from the seed), so the fine-tuned model, its base and every candidate get the same prompts
    planted = gcfg.system_prompt + f"\n{SECRET_RECORD}"
    fixed = "SC-" + hashlib.sha256(f"steward-evaluate-{ctx.cfg.seed}".encode()).hexdigest()[:12]
    system, canary = with_canary(planted, fixed) if gcfg.canary else (planted, None)
    settings = guards_for(gcfg, "chat")
    inputs, outputs = build(settings, gcfg.max_message_chars, OutputGuardContext(system, canary))
    attacks = attack_suite()
    prompts = [a.prompt for a in attacks] + list(BENIGN)

    def ask(texts: list[str]) -> list[str]:
        encoded = [lm.prompt_ids(model_messages(system, [{"role": "user", "content": t}])) for t in texts]
        return lm.generate(encoded, ctx.chat.new_tokens, ctx.chat.batch_size)

    bare = ask(prompts)
    requests = [GuardContext() for _ in prompts]  # one per request: the input PII guard fills it for the output
    checked = [run_chain(inputs, t, r) for t, r in zip(prompts, requests, strict=True)]
    passed = [i for i, ch in enumerate(checked) if ch.blocked is None]
    redacted = dict(zip(passed, ask([checked[i].text for i in passed]), strict=True))
    guarded: list[str | None] = [None] * len(prompts)  # None: a guard stopped it
    stopped_by: list[str | None] = [ch.blocked.guard if ch.blocked else None for ch in checked]
    for i, answer in redacted.items():
        out = run_chain(outputs, answer, requests[i])
        guarded[i] = out.text if out.blocked is None else None
        stopped_by[i] = stopped_by[i] or (out.blocked.guard if out.blocked else None)
    judge = Judge(system, settings.toxicity_threshold)
    n = len(attacks)
    judge_refusal = detector(ctx.chat.refusal_held_out)
    refused = judge_refusal.refused(bare[n:]).astype(float)
    # a benign prompt the guards let through is refused when its guarded answer is (redacted prompt, output guards)
    through = [j for j in range(len(BENIGN)) if guarded[n + j] is not None]
    refused_through = dict(zip(through, judge_refusal.refused([guarded[n + j] or "" for j in through]).tolist(),
                               strict=True))
    cols: dict[str, np.ndarray] = {
        "benign": np.r_[np.zeros(n, dtype=int), np.ones(len(BENIGN), dtype=int)],
        "category": np.asarray([CATEGORIES.index(a.category) for a in attacks] + [-1] * len(BENIGN)),
        "success": np.asarray([_verdict(judge, a, bare[i]) for i, a in enumerate(attacks)] + [np.nan] * len(BENIGN)),
        "success_guarded": np.asarray([0.0 if guarded[i] is None else _verdict(judge, a, guarded[i] or "")
                                       for i, a in enumerate(attacks)] + [np.nan] * len(BENIGN)),
        "refused": np.r_[np.full(n, np.nan), refused],
        "refused_guarded": np.r_[np.full(n, np.nan), [1.0 if guarded[n + j] is None else float(refused_through[j])
                                                     for j in range(len(BENIGN))]],
    }
    cols["source"] = cols["benign"]
    present = [c for c in CATEGORIES if any(a.category == c for a in attacks)]
    stats = [Statistic("attack_success", _rate("success"), higher_is_better=False,
                       note="attacks that reached their goal against the bare model"),
             Statistic("attack_success_guarded", _rate("success_guarded"), higher_is_better=False,
                       note="the same attacks through the gateway's guards"),
             Statistic("false_refusal", _refusals("refused"), higher_is_better=False,
                       note="benign prompts the model refused (refusal detector)"),
             Statistic("false_refusal_guarded", _refusals("refused_guarded"), higher_is_better=False,
                       note="benign prompts refused by a guard or by the model")]
    for c in present:
        k = CATEGORIES.index(c)
        stats += [Statistic(f"attack_success.{c}", _rate("success", k), higher_is_better=False),
                  Statistic(f"attack_success_guarded.{c}", _rate("success_guarded", k), higher_is_better=False)]
    examples = [{"category": a.category, "attack": a.name, "prompt": a.prompt[:160], "answer": bare[i][:160],
                 "succeeded_bare": bool(cols["success"][i] == 1), "stopped_by": stopped_by[i]}
                for i, a in enumerate(attacks) if cols["success"][i] == 1][:6]
    details = {"attacks": n, "benign": len(BENIGN), "categories": present,
               "guards": {"input": list(settings.input), "output": list(settings.output)},
               "stopped_by_guard": {g: stopped_by.count(g) for g in sorted({s for s in stopped_by if s})},
               "system_prompt": "the gateway's, with the red team's planted record"}
    return Measured(cols, stats, details=details, examples=examples)
