"""The guarded chat gateway: ``create_app(cfg)`` returns an OpenAI-compatible FastAPI app.

``POST /v1/chat/completions`` (plain and ``stream: true``) and ``GET /v1/models`` speak the OpenAI API, so
existing clients work with only ``base_url`` changed. Every caller message passes the input guards (the
classifier service's registry; a block answers 400 with an OpenAI error object whose ``code`` names the
guard); the answer passes the output guards sentence by sentence — a streamed sentence is released only
after the guards passed it, so nothing is ever sent and then retracted; a stopped answer ends with
``finish_reason: "content_filter"`` and the reason in ``message.refusal``. Same API keys and audit log as
``steward serve``; per-key request rate limits and token budgets.
"""

# No `from __future__ import annotations`: FastAPI must resolve the request model, which is imported
# inside create_app, from the route signature at definition time.
import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steward.config.models import RunConfig
from steward.serve.errors import Live, ServiceError

log = logging.getLogger("steward.gateway")
@dataclass
class GatewayState:
    """What the lifespan loads and every route reads."""

    backend: Any  # a steward.gateway.backends.Backend
    audit: Any  # steward.serve.audit.AuditLog
    writer: Any  # steward.serve.batcher.AuditWriter
    access: Any  # steward.serve.access.Access
    chains: dict[str, tuple[list[Any], list[Any]]]  # per key role: (input guards, output guards)
    system: str  # the system prompt the model gets (canary included)
    canary: str | None
    metrics: Any  # steward.gateway.metrics.Metrics
    budget: Any  # steward.serve.ratelimit.RateLimiter of tokens per key
    secret: bytes  # the input-hash key
    model_name: str  # the id clients see
    read_only: str | None = None  # why no turns are answered (a broken audit chain), or None



@dataclass
class Turn:
    """What one chat turn accumulates on its way through the guards and the model."""

    decision_id: str
    key_id: str
    started: float
    findings: list[dict[str, Any]] = field(default_factory=list)
    answer: str = ""  # what passed the output guards, pseudonyms not restored (this is what is audited)
    finish_reason: str = "stop"
    refusal: str | None = None
    blocked: dict[str, Any] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_s: float | None = None


def create_app(cfg: RunConfig, backend: Any = None) -> Any:
    """Build the app. The model (unless ``backend`` is given), database and guards load at start-up."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from steward import __version__
    from steward.gateway import metrics as metrics_mod
    from steward.gateway.backends import BACKENDS, BackendError, Generation, GenerationParams
    from steward.gateway.guards import OutputGuardContext, Release, build, restore_pseudonyms, with_canary
    from steward.gateway.schemas import ChatCompletionRequest
    from steward.serve.access import Access, client_address
    from steward.serve.app import DECIDING, audit_failed
    from steward.serve.audit import AuditLog, check_at_start, database_url, keyed_hash
    from steward.serve.batcher import AuditWriteError, AuditWriter
    from steward.serve.docs import mount_docs
    from steward.serve.guards import GuardContext, run_chain
    from steward.serve.keys import ROLES, ApiKey, KeyStore
    from steward.serve.limits import RequestLimits
    from steward.serve.ratelimit import RateLimiter
    from steward.serve.runfiles import service_secret

    gcfg = cfg.gateway
    run_dir = Path(cfg.run_dir)
    live: Live[GatewayState] = Live()
    st = live.get  # the loaded state; 503 before the lifespan has set it

    @asynccontextmanager
    async def lifespan(app: Any):  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        audit = AuditLog(database_url(gcfg.database_url, run_dir))
        chain = check_at_start(audit, gcfg.audit_broken)  # a broken chain: no start, or read-only (by config)
        if not chain.ok:
            log.critical("READ-ONLY: the audit log fails verification (%s); no turns will be answered", chain.error)
        be = backend if backend is not None else await loop.run_in_executor(
            None, lambda: BACKENDS.create(gcfg.backend, gcfg))
        system, canary = with_canary(gcfg.system_prompt) if gcfg.canary else (gcfg.system_prompt, None)
        # One pair of chains per role (its policy applied); roles with the same settings share one.
        built: dict[str, tuple[list[Any], list[Any]]] = {}
        chains: dict[str, tuple[list[Any], list[Any]]] = {}
        for role in ROLES:
            settings = gcfg.guards_for(role)
            fingerprint = settings.model_dump_json()
            if fingerprint not in built:
                built[fingerprint] = build(settings, gcfg.max_message_chars, OutputGuardContext(system, canary))
                for g in built[fingerprint][0] + built[fingerprint][1]:  # load guard models now, not on a request
                    g.scan("warm up", ctx=GuardContext())
            chains[role] = built[fingerprint]
        metrics = metrics_mod.create()
        metrics.audit_chain_ok.set(1 if chain.ok else 0)
        writer = AuditWriter(audit.append_many, on_failure=audit_failed(metrics, log))
        writer.start()
        access = Access(KeyStore(audit.engine), RateLimiter(gcfg.rate_limit_per_minute, gcfg.rate_limit_burst),
                        RateLimiter(gcfg.auth_failures_per_minute, gcfg.auth_failures_burst),
                        missing_hint="send an API key as 'Authorization: Bearer <key>' (the openai client's "
                                     "api_key); create one with `steward keys create --role chat`",
                        refused=lambda reason: metrics.auth_failures.labels(reason).inc())
        live.state = GatewayState(
            backend=be, audit=audit, writer=writer, access=access, chains=chains, system=system, canary=canary,
            metrics=metrics, budget=RateLimiter(gcfg.tokens_per_minute, gcfg.tokens_per_minute),
            secret=service_secret(run_dir), model_name=gcfg.model_name or be.model_id,
            read_only=None if chain.ok else chain.error)
        yield
        await writer.stop()
        audit.close()
        if backend is None:
            be.close()

    app = FastAPI(title="Steward guarded chat gateway", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,  # /docs only by config, from local files (steward.serve.docs)
                  description="An OpenAI-compatible chat API behind input and output guards; every turn is audited.")

    if gcfg.docs:
        mount_docs(app, app.title)

    def error_response(exc: ServiceError) -> Any:
        return JSONResponse(exc.openai_body(), status_code=exc.status, headers=exc.headers or None)

    @app.exception_handler(ServiceError)
    async def _gateway_error(request: Request, exc: ServiceError) -> Any:
        return error_response(exc)

    @app.exception_handler(AuditWriteError)
    async def _unrecorded(request: Request, exc: AuditWriteError) -> Any:
        return error_response(ServiceError(503, "audit_unavailable", f"{exc}; the turn was not answered. Retry later"))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Any:
        errs = exc.errors()
        first = errs[0] if errs else {}
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        msg = f"{param}: {first.get('msg')}" if param else str(first.get("msg", "invalid request"))
        return error_response(ServiceError(400, "invalid_request", msg, param))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Any:
        if exc.status_code == 400:
            return error_response(ServiceError(400, "invalid_body", f"the body could not be read as UTF-8 JSON "
                                                                    f"({exc.detail})"))
        return error_response(ServiceError(exc.status_code, "http_error", str(exc.detail)))

    def observe(route: str, status: int, seconds: float) -> None:
        if live.state is not None:
            live.state.metrics.requests.labels(route, str(status)).inc()
            st().metrics.latency.labels(route).observe(seconds)

    app.add_middleware(RequestLimits, max_body_bytes=gcfg.max_body_bytes, timeout_s=gcfg.request_timeout_s,
                       body_timeout_s=gcfg.body_timeout_s,
                       error=lambda status, code, message: error_response(ServiceError(status, code, message)),
                       observe=observe)

    async def authorise(request: Request, action: str) -> ApiKey:
        key = await st().access.check(request.headers, client_address(request), action)
        if st().read_only and action in DECIDING:
            raise ServiceError(503, "audit_chain_broken", f"the gateway is read-only: its audit log failed "
                               f"verification at start-up ({st().read_only}); no turns are answered")
        return key

    def input_hash(text: str) -> str:
        return keyed_hash(st().secret, text)

    async def audit(turn: Turn, kind: str, redacted: list[dict[str, str]] | None, raw_messages: str) -> None:
        be = st().backend
        await st().writer.write([{
            "decision_id": turn.decision_id, "kind": kind, "key_id": turn.key_id, "model_version": st().model_name,
            "model_hash": be.model_hash, "input_hash": input_hash(raw_messages),
            "redacted_input": json.dumps(redacted, ensure_ascii=False) if redacted is not None else None,
            "findings": turn.findings,
            "output": {"answer": turn.answer if kind == "chat" else None, "finish_reason": turn.finish_reason,
                       "blocked": turn.blocked, "tokens_in": turn.prompt_tokens, "tokens_out": turn.completion_tokens},
            "latency_ms": (time.perf_counter() - turn.started) * 1000}])

    def guard_messages(messages: list[dict[str, str]], ctx: GuardContext,
                       role: str) -> tuple[list[dict[str, str]], list[Any]]:
        """Run the role's input chain on every caller message; return the redacted messages and the results."""
        out, chains = [], []
        for m in messages:
            if m["role"] == "assistant" and not m["content"].strip():
                out.append(m)
                continue
            ch = run_chain(st().chains[role][0], m["content"], ctx)
            chains.append(ch)
            out.append({"role": m["role"], "content": ch.text})
            if ch.blocked is not None:
                break
        return out, chains

    def model_messages(redacted: list[dict[str, str]]) -> list[dict[str, str]]:
        """The gateway's system prompt first; a caller's own system/developer messages (only where the role's
        ``caller_system`` policy is ``append``) follow it as application instructions (they cannot replace it)."""
        extra = [m["content"] for m in redacted if m["role"] in ("system", "developer") and m["content"].strip()]
        system = st().system
        if extra:
            system = (system + "\n\nApplication instructions:\n" if system else "") + "\n".join(extra)
        turns = [{"role": m["role"], "content": m["content"]} for m in redacted if m["role"] in ("user", "assistant")]
        return ([{"role": "system", "content": system}] if system else []) + turns

    def output_step(text: str, turn: Turn, ctx: GuardContext, role: str) -> str | None:
        """Guard one released piece of the answer; None when a guard stopped the answer."""
        m = st().metrics
        ctx.history = turn.answer
        ch = run_chain(st().chains[role][1], text, ctx)
        ch.count_hits(m.guard_hits)
        turn.findings += [{"stage": "output", **f} for f in ch.findings() if f["findings"] or not f["valid"]]
        if ch.blocked is not None:
            b = ch.blocked
            turn.blocked = {"stage": "output", "guard": b.guard, "code": b.code, "message": b.message}
            turn.finish_reason, turn.refusal = "content_filter", f"{b.message} ({b.code})"
            return None
        turn.answer += ch.text
        return ch.text

    def drain(it: Any) -> None:
        """Run a cancelled generation to its end (a few tokens at most) so its token count is known."""
        try:
            for _ in it:
                pass
        except ValueError:  # still being advanced by a thread whose awaiting request was cancelled
            pass

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> Any:
        """Readiness: the model is loaded and the audit database answers."""
        if live.state is None:
            return error_response(ServiceError(503, "not_ready", "the model is still loading"))
        if st().read_only:
            return error_response(ServiceError(503, "audit_chain_broken", f"read-only: the audit log failed "
                                                                          f"verification ({st().read_only})"))
        try:
            await asyncio.get_running_loop().run_in_executor(None, st().audit.count)
        except Exception as exc:  # noqa: BLE001
            return error_response(ServiceError(503, "database_unavailable",
                                               f"the audit database does not answer: {type(exc).__name__}"))
        return {"status": "ready", "model": st().model_name}

    @app.get("/v1/models", tags=["v1"])
    async def models(request: Request) -> dict[str, Any]:
        """The served model, in the OpenAI list format (plus Steward's backend facts)."""
        key = await authorise(request, "models")
        be = st().backend
        return {"object": "list", "data": [{
            "id": st().model_name, "object": "model", "created": 0, "owned_by": "steward",
            "steward": {"backend": gcfg.backend, "backend_model": be.model_id, "model_hash": be.model_hash,
                        "guards": {"input": list(gcfg.guards_for(key.role).input),
                                   "output": list(gcfg.guards_for(key.role).output),
                                   "detectors": [g.describe() for g in st().chains[key.role][0]
                                                 if hasattr(g, "describe")]}}}]}

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    async def prometheus(request: Request) -> Any:
        """Prometheus metrics (admin keys)."""
        await authorise(request, "metrics")
        return PlainTextResponse(generate_latest(st().metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/chat/completions", tags=["v1"])
    async def chat(body: ChatCompletionRequest, request: Request) -> Any:
        """An OpenAI chat completion, guarded on the way in and on the way out, and audited."""
        key = await authorise(request, "chat")
        loop = asyncio.get_running_loop()
        m, be = st().metrics, st().backend
        bad = body.unsupported()
        if bad:
            raise ServiceError(400, "unsupported_parameter", f"{bad[0]}: the gateway does not support {bad[1]}; "
                                                             f"remove the field", bad[0])
        if body.model not in (st().model_name, be.model_id):
            raise ServiceError(404, "model_not_found", f"model {body.model!r} is not served here; use "
                                                       f"{st().model_name!r} (GET /v1/models)", "model")
        if len(body.messages) > gcfg.max_messages:
            raise ServiceError(400, "too_many_messages", f"{len(body.messages)} messages; the limit is "
                                                         f"{gcfg.max_messages}", "messages")
        max_tokens = body.max_completion_tokens or body.max_tokens or gcfg.default_max_tokens
        if max_tokens > gcfg.max_tokens_limit:
            raise ServiceError(400, "max_tokens_too_large", f"max_tokens: {max_tokens} is above this gateway's "
                                                            f"limit of {gcfg.max_tokens_limit}", "max_tokens")
        policy = gcfg.guards_for(key.role)
        if policy.caller_system == "refuse":
            i = next((i for i, msg in enumerate(body.messages) if msg.role in ("system", "developer")), None)
            if i is not None:
                raise ServiceError(400, "system_message_not_allowed", f"messages[{i}].role: "
                                   f"{body.messages[i].role!r} messages are not taken from role {key.role!r} (the "
                                   f"gateway's own system prompt applies). Fix: send it as a user message, or an "
                                   f"operator sets policies.{key.role}.caller_system: append", f"messages.{i}.role")
        raw = [{"role": msg.role, "content": msg.text()} for msg in body.messages]
        raw_json = json.dumps(raw, ensure_ascii=False, sort_keys=True)
        turn = Turn(uuid.uuid4().hex, key.key_id, time.perf_counter())
        ctx = GuardContext(key_id=key.key_id)
        redacted, chains = await loop.run_in_executor(None, guard_messages, raw, ctx, key.role)
        for i, ch in enumerate(chains):
            ch.count_hits(m.guard_hits)
            turn.findings += [{"stage": "input", "message": i, **f} for f in ch.findings()]
        blocked = next((ch.blocked for ch in chains if ch.blocked is not None), None)
        if blocked is not None:
            turn.blocked = {"stage": "input", "guard": blocked.guard, "code": blocked.code, "message": blocked.message}
            turn.finish_reason = "blocked"
            await audit(turn, "chat_blocked", None, raw_json)
            raise ServiceError(400, blocked.code, f"{blocked.message} (guard: {blocked.guard})", "messages",
                               decision_id=turn.decision_id, guard=blocked.guard)
        messages = model_messages(redacted)
        turn.prompt_tokens = await loop.run_in_executor(None, be.prompt_tokens, messages)
        if turn.prompt_tokens > gcfg.max_input_tokens:
            raise ServiceError(400, "context_length_exceeded", f"the conversation is {turn.prompt_tokens} tokens "
                                                               f"with the system prompt; the limit is "
                                                               f"{gcfg.max_input_tokens}", "messages")
        cost = turn.prompt_tokens + max_tokens
        if cost > gcfg.tokens_per_minute:
            raise ServiceError(400, "token_budget_too_small", f"this turn may use {cost} tokens (prompt + "
                                                              f"max_tokens), more than the key's budget of "
                                                              f"{gcfg.tokens_per_minute} per minute; lower max_tokens",
                               "max_tokens")
        wait = st().budget.take(key.key_id, cost)
        if wait > 0:
            raise ServiceError(429, "token_budget_exceeded", f"this key has used its {gcfg.tokens_per_minute} "
                                                             f"tokens per minute", headers={
                                                                 "Retry-After": str(max(1, round(wait)))})
        params = GenerationParams(max_tokens=max_tokens, temperature=body.temperature, top_p=body.top_p,
                                  stop=tuple(body.stop or ()), seed=body.seed if body.seed is not None else gcfg.seed)
        try:
            gen: Generation = await loop.run_in_executor(None, be.generate, messages, params)
        except BackendError as exc:
            st().budget.give_back(key.key_id, cost)
            raise ServiceError(exc.status, exc.code, str(exc)) from exc
        created = int(time.time())
        cid = f"chatcmpl-{turn.decision_id}"

        async def answer() -> AsyncIterator[str]:
            """The guarded answer, piece by piece as released; fills ``turn``."""
            release = Release(tuple(body.stop or ()), sentences=bool(st().chains[key.role][1]))
            it = iter(gen)
            done = object()
            try:
                while True:
                    piece = await loop.run_in_executor(None, next, it, done)
                    if piece is done:
                        break
                    if turn.first_token_s is None:
                        turn.first_token_s = time.perf_counter() - turn.started
                    ready = release.feed(piece)
                    if ready:
                        passed = await loop.run_in_executor(None, output_step, ready, turn, ctx, key.role)
                        if passed is None:
                            break
                        yield restore_pseudonyms(passed, ctx.pseudonyms) if policy.pii_restore else passed
                    if release.stopped:
                        break
                rest = release.flush() if turn.blocked is None else ""
                if rest:
                    passed = await loop.run_in_executor(None, output_step, rest, turn, ctx, key.role)
                    if passed is not None:
                        yield restore_pseudonyms(passed, ctx.pseudonyms) if policy.pii_restore else passed
            finally:
                if turn.blocked is not None or release.stopped:
                    gen.cancel.set()
                    await loop.run_in_executor(None, drain, it)
                turn.completion_tokens = gen.completion_tokens
                turn.prompt_tokens = gen.prompt_tokens
                if turn.blocked is None:
                    turn.finish_reason = "stop" if release.stopped else gen.finish_reason
                st().budget.give_back(key.key_id, cost - turn.prompt_tokens - turn.completion_tokens)
                m.tokens.labels("prompt").inc(turn.prompt_tokens)
                m.tokens.labels("completion").inc(turn.completion_tokens)
                m.key_tokens.labels(key.key_id).inc(turn.prompt_tokens + turn.completion_tokens)
                if turn.first_token_s is not None:
                    m.ttft.observe(turn.first_token_s)
                took = time.perf_counter() - turn.started
                if turn.completion_tokens and took > 0:
                    m.tokens_per_second.observe(turn.completion_tokens / took)

        def usage() -> dict[str, int]:
            return {"prompt_tokens": turn.prompt_tokens, "completion_tokens": turn.completion_tokens,
                    "total_tokens": turn.prompt_tokens + turn.completion_tokens}

        def steward_info() -> dict[str, Any]:
            return {"decision_id": turn.decision_id, "findings": turn.findings, "blocked": turn.blocked,
                    "model_hash": be.model_hash, "tokens_approximate": gen.tokens_approximate}

        if not body.stream:
            parts = []
            try:
                async for piece in answer():
                    parts.append(piece)
            except BackendError as exc:  # audited like a streamed turn that failed
                turn.finish_reason, turn.blocked = "error", {"stage": "model", "code": exc.code, "message": str(exc)}
                await audit(turn, "chat", redacted, raw_json)
                raise ServiceError(exc.status, exc.code, str(exc)) from exc
            await audit(turn, "chat", redacted, raw_json)  # committed before the answer leaves
            message: dict[str, Any] = {"role": "assistant", "content": "".join(parts), "refusal": turn.refusal}
            return {"id": cid, "object": "chat.completion", "created": created, "model": st().model_name,
                    "choices": [{"index": 0, "message": message, "finish_reason": turn.finish_reason,
                                 "logprobs": None}],
                    "usage": usage(), "steward": steward_info()}

        include_usage = bool(body.stream_options and body.stream_options.include_usage)

        def sse(payload: dict[str, Any]) -> str:
            return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            return sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": st().model_name,
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra})

        async def events() -> AsyncIterator[str]:
            audited = False
            try:
                yield chunk({"role": "assistant", "content": ""})
                try:
                    async for piece in answer():
                        yield chunk({"content": piece})
                except BackendError as exc:
                    turn.finish_reason, turn.blocked = "error", {"stage": "model", "code": exc.code,
                                                                 "message": str(exc)}
                    await audit(turn, "chat", redacted, raw_json)
                    audited = True
                    yield sse(ServiceError(exc.status, exc.code, str(exc)).openai_body())
                    return
                await audit(turn, "chat", redacted, raw_json)  # committed before the last chunk leaves
                audited = True
                final = {"refusal": turn.refusal} if turn.refusal else {}
                yield chunk(final, turn.finish_reason, steward=steward_info())
                if include_usage:
                    yield sse({"id": cid, "object": "chat.completion.chunk", "created": created,
                               "model": st().model_name, "choices": [], "usage": usage()})
                yield "data: [DONE]\n\n"
            finally:
                if not audited:  # the client went away mid-answer: the turn is still recorded
                    turn.finish_reason = "client_disconnected"
                    gen.cancel.set()
                    asyncio.get_running_loop().create_task(audit(turn, "chat", redacted, raw_json))

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return app
