"""One chat turn, start to end: the request's limits, the input guards, the token budget, the model's
answer released piece by piece through the output guards, and the audit record. The routes call these;
nothing here knows HTTP but the :class:`ServiceError` it raises."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from steward.gateway.backends import Generation, GenerationParams
from steward.gateway.guards import Release, restore_pseudonyms
from steward.gateway.state import GatewayState, Turn
from steward.service.errors import ServiceError
from steward.service.guards import ChainResult, GuardContext, run_chain
from steward.service.schemas import receipt_of


def check_request(st: GatewayState, gcfg: Any, body: Any, role: str) -> int:
    """Refuse what the gateway does not take (parameters, model, sizes, caller system messages by policy);
    return the turn's ``max_tokens``."""
    bad = body.unsupported()
    if bad:
        raise ServiceError(400, "unsupported_parameter", f"{bad[0]}: the gateway does not support {bad[1]}; "
                                                         f"remove the field", bad[0])
    if body.model not in (st.model_name, st.backend.model_id):
        raise ServiceError(404, "model_not_found", f"model {body.model!r} is not served here; use "
                                                   f"{st.model_name!r} (GET /v1/models)", "model")
    if len(body.messages) > gcfg.max_messages:
        raise ServiceError(400, "too_many_messages", f"{len(body.messages)} messages; the limit is "
                                                     f"{gcfg.max_messages}", "messages")
    max_tokens = body.max_completion_tokens or body.max_tokens or gcfg.default_max_tokens
    if max_tokens > gcfg.max_tokens_limit:
        raise ServiceError(400, "max_tokens_too_large", f"max_tokens: {max_tokens} is above this gateway's "
                                                        f"limit of {gcfg.max_tokens_limit}", "max_tokens")
    if st.settings[role].caller_system == "refuse":
        i = next((i for i, msg in enumerate(body.messages) if msg.role in ("system", "developer")), None)
        if i is not None:
            raise ServiceError(400, "system_message_not_allowed", f"messages[{i}].role: {body.messages[i].role!r} "
                               f"messages are not taken from role {role!r} (the gateway's own system prompt "
                               f"applies). Fix: send it as a user message, or an operator sets "
                               f"policies.{role}.caller_system: append", f"messages.{i}.role")
    return max_tokens


async def audit(st: GatewayState, turn: Turn, kind: str) -> None:
    """Write the turn's record (``chat`` or ``chat_blocked``); returns once it is committed (receipt set)."""
    stored = await st.core.writer.write([{
        "decision_id": turn.decision_id, "kind": kind, "key_id": turn.key_id, "model_version": st.model_name,
        "model_hash": st.backend.model_hash, "input_hash": st.core.input_hash(turn.raw_json),
        "redacted_input": json.dumps(turn.redacted, ensure_ascii=False) if turn.redacted is not None else None,
        "findings": turn.findings,
        "output": {"answer": turn.answer if kind == "chat" else None, "finish_reason": turn.finish_reason,
                   "blocked": turn.blocked, "tokens_in": turn.prompt_tokens, "tokens_out": turn.completion_tokens},
        "latency_ms": (time.perf_counter() - turn.started) * 1000, "subject": st.core.subject(turn.user)}])
    if stored:
        turn.receipt = receipt_of(stored[0]).model_dump()


def _scan_messages(st: GatewayState, messages: list[dict[str, str]], ctx: GuardContext,
                   role: str) -> tuple[list[dict[str, str]], list[ChainResult]]:
    """Run the role's input chain on every caller message; return the redacted messages and the results."""
    out, chains = [], []
    for m in messages:
        if m["role"] == "assistant" and not m["content"].strip():
            out.append(m)
            continue
        ch = run_chain(st.chains[role][0], m["content"], ctx)
        chains.append(ch)
        out.append({"role": m["role"], "content": ch.text})
        if ch.blocked is not None:
            break
    return out, chains


async def guard_input(st: GatewayState, turn: Turn, raw: list[dict[str, str]], ctx: GuardContext) -> None:
    """The input guards on every message: findings on the turn, redacted messages kept; a block is audited
    (without the messages) and raised."""
    loop = asyncio.get_running_loop()
    redacted, chains = await loop.run_in_executor(None, _scan_messages, st, raw, ctx, turn.role)
    for i, ch in enumerate(chains):
        ch.count_hits(st.metrics.guard_hits)
        turn.findings += [{"stage": "input", "message": i, **f} for f in ch.findings()]
    blocked = next((ch.blocked for ch in chains if ch.blocked is not None), None)
    if blocked is not None:
        turn.blocked = {"stage": "input", "guard": blocked.guard, "code": blocked.code, "message": blocked.message}
        turn.finish_reason = "blocked"
        await audit(st, turn, "chat_blocked")
        raise ServiceError(400, blocked.code, f"{blocked.message} (guard: {blocked.guard})", "messages",
                           decision_id=turn.decision_id, guard=blocked.guard)
    turn.redacted = redacted


def model_messages(system: str, redacted: list[dict[str, str]]) -> list[dict[str, str]]:
    """The gateway's system prompt first; a caller's own system/developer messages (only where the role's
    ``caller_system`` policy is ``append``) follow it as application instructions (they cannot replace it)."""
    extra = [m["content"] for m in redacted if m["role"] in ("system", "developer") and m["content"].strip()]
    if extra:
        system = (system + "\n\nApplication instructions:\n" if system else "") + "\n".join(extra)
    turns = [{"role": m["role"], "content": m["content"]} for m in redacted if m["role"] in ("user", "assistant")]
    return ([{"role": "system", "content": system}] if system else []) + turns


async def reserve_tokens(st: GatewayState, gcfg: Any, turn: Turn, messages: list[dict[str, str]],
                         max_tokens: int) -> None:
    """Count the prompt and take prompt + ``max_tokens`` from the key's budget (unused tokens come back)."""
    turn.prompt_tokens = await asyncio.get_running_loop().run_in_executor(None, st.backend.prompt_tokens, messages)
    if turn.prompt_tokens > gcfg.max_input_tokens:
        raise ServiceError(400, "context_length_exceeded", f"the conversation is {turn.prompt_tokens} tokens with "
                                                           f"the system prompt; the limit is {gcfg.max_input_tokens}",
                           "messages")
    cost = turn.prompt_tokens + max_tokens
    if cost > gcfg.tokens_per_minute:
        raise ServiceError(400, "token_budget_too_small", f"this turn may use {cost} tokens (prompt + max_tokens), "
                                                          f"more than the key's budget of {gcfg.tokens_per_minute} "
                                                          f"per minute; lower max_tokens", "max_tokens")
    wait = st.budget.take(turn.key_id, cost)
    if wait > 0:
        raise ServiceError(429, "token_budget_exceeded", f"this key has used its {gcfg.tokens_per_minute} tokens "
                                                         f"per minute", retry_after=max(1, round(wait)))
    turn.cost = cost


def params_of(body: Any, max_tokens: int, seed: int) -> GenerationParams:
    return GenerationParams(max_tokens=max_tokens, temperature=body.temperature, top_p=body.top_p,
                            stop=tuple(body.stop or ()), seed=body.seed if body.seed is not None else seed)


def _output_step(st: GatewayState, text: str, turn: Turn, ctx: GuardContext) -> str | None:
    """Guard one released piece of the answer; None when a guard stopped the answer."""
    ctx.history = turn.answer
    ch = run_chain(st.chains[turn.role][1], text, ctx)
    ch.count_hits(st.metrics.guard_hits)
    turn.findings += [{"stage": "output", **f} for f in ch.findings() if f["findings"] or not f["valid"]]
    if ch.blocked is not None:
        b = ch.blocked
        turn.blocked = {"stage": "output", "guard": b.guard, "code": b.code, "message": b.message}
        turn.finish_reason, turn.refusal = "content_filter", f"{b.message} ({b.code})"
        return None
    turn.answer += ch.text
    return ch.text


def _drain(it: Any, patience_s: float = 60.0) -> None:
    """Run a cancelled generation to its end (a few tokens at most) so its token count is known."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            for _ in it:
                pass
            return
        except ValueError:  # still advanced by the thread of a request that was cancelled: wait for that step
            if time.monotonic() > deadline:
                return
            time.sleep(0.005)


async def answer(st: GatewayState, gen: Generation, turn: Turn, ctx: GuardContext,
                 stop: tuple[str, ...]) -> AsyncIterator[str]:
    """The guarded answer, piece by piece as released (pseudonyms restored where the policy says); fills
    ``turn`` and settles the token budget and metrics when it ends, however it ends."""
    loop = asyncio.get_running_loop()
    restore = st.settings[turn.role].pii_restore
    release = Release(stop, sentences=bool(st.chains[turn.role][1]))
    it = iter(gen)
    done = object()
    finished = False  # the generation ran to its end (its token count is known)
    try:
        while True:
            piece = await loop.run_in_executor(None, next, it, done)
            if piece is done:
                finished = True
                break
            if turn.first_token_s is None:
                turn.first_token_s = time.perf_counter() - turn.started
            ready = release.feed(piece)
            if ready:
                passed = await loop.run_in_executor(None, _output_step, st, ready, turn, ctx)
                if passed is None:
                    break
                yield restore_pseudonyms(passed, ctx.pseudonyms) if restore else passed
            if release.stopped:
                break
        rest = release.flush() if turn.blocked is None else ""
        if rest:
            passed = await loop.run_in_executor(None, _output_step, st, rest, turn, ctx)
            if passed is not None:
                yield restore_pseudonyms(passed, ctx.pseudonyms) if restore else passed
    finally:
        if finished:
            _settle(st, turn, gen, release.stopped)
        else:  # stopped by a guard or a stop sequence, or the client went away: end it, then count what it used
            gen.cancel.set()
            # In a task of its own: a request cancelled by its client's departure is cancelled again at
            # every await (anyio's scopes), and the budget must still be settled.
            turn.settling = loop.create_task(_drain_and_settle(st, turn, gen, it, release.stopped))
            if turn.blocked is not None or release.stopped:
                await turn.settling  # the answer's end is known before it is audited


async def _drain_and_settle(st: GatewayState, turn: Turn, gen: Generation, it: Any, stopped: bool) -> None:
    await asyncio.get_running_loop().run_in_executor(None, _drain, it)
    _settle(st, turn, gen, stopped)


def _settle(st: GatewayState, turn: Turn, gen: Generation, stopped: bool) -> None:
    """The turn's final token counts and finish reason; unused budget back; the token metrics."""
    m = st.metrics
    turn.completion_tokens = gen.completion_tokens
    turn.prompt_tokens = gen.prompt_tokens
    if turn.blocked is None:
        turn.finish_reason = "stop" if stopped else gen.finish_reason
    st.budget.give_back(turn.key_id, turn.cost - turn.prompt_tokens - turn.completion_tokens)
    m.tokens.labels("prompt").inc(turn.prompt_tokens)
    m.tokens.labels("completion").inc(turn.completion_tokens)
    m.key_tokens.labels(turn.key_id).inc(turn.prompt_tokens + turn.completion_tokens)
    if turn.first_token_s is not None:
        m.ttft.observe(turn.first_token_s)
    took = time.perf_counter() - turn.started
    if turn.completion_tokens and took > 0:
        m.tokens_per_second.observe(turn.completion_tokens / took)
