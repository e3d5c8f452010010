"""The gateway's routes (OpenAI's ``/v1/models`` and ``/v1/chat/completions``) and the two answer shapes:
one JSON completion, or server-sent chunks each released only after the output guards passed it."""

# No `from __future__ import annotations`: FastAPI resolves the request model from the signature.
import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from steward.gateway import turn as turns
from steward.gateway.backends import BackendError, Generation
from steward.gateway.config import GatewayRun
from steward.gateway.schemas import ChatCompletionRequest
from steward.gateway.state import GatewayState, Turn
from steward.service.errors import Live, ServiceError
from steward.service.guards import GuardContext


def register_routes(app: FastAPI, live: Live[GatewayState], cfg: GatewayRun) -> None:
    st = live.get  # the loaded state; 503 before the lifespan has set it
    gcfg = cfg.gateway

    @app.get("/v1/models", tags=["v1"])
    async def models(request: Request) -> dict[str, Any]:
        """The served model, in the OpenAI list format (plus Steward's backend facts)."""
        state = st()
        key = await state.core.authorise(request, "models")
        be, settings = state.backend, state.settings[key.role]
        return {"object": "list", "data": [{
            "id": state.model_name, "object": "model", "created": 0, "owned_by": "steward",
            "steward": {"backend": gcfg.backend, "backend_model": be.model_id, "model_hash": be.model_hash,
                        "model": getattr(be, "facts", {}),
                        "guards": {"input": list(settings.input), "output": list(settings.output),
                                   "detectors": [g.describe() for g in state.chains[key.role][0]
                                                 if hasattr(g, "describe")]}}}],
                "transparency": state.core.transparency.describe() if state.core.transparency else None}

    @app.post("/v1/chat/completions", tags=["v1"])
    async def chat(body: ChatCompletionRequest, request: Request) -> Any:
        """An OpenAI chat completion, guarded on the way in and on the way out, and audited."""
        state = st()
        key = await state.core.authorise(request, "chat")
        max_tokens = turns.check_request(state, gcfg, body, key.role)
        raw = [{"role": msg.role, "content": msg.text()} for msg in body.messages]
        turn = Turn(uuid.uuid4().hex, key.key_id, key.role, raw_json=json.dumps(raw, ensure_ascii=False,
                                                                                 sort_keys=True), user=body.user)
        ctx = GuardContext(key_id=key.key_id)
        await turns.guard_input(state, turn, raw, ctx)
        messages = turns.model_messages(state.system, turn.redacted or [])
        await turns.reserve_tokens(state, gcfg, turn, messages, max_tokens)
        try:
            gen: Generation = await asyncio.get_running_loop().run_in_executor(
                None, state.backend.generate, messages, turns.params_of(body, max_tokens, gcfg.seed))
        except BackendError as exc:
            state.budget.give_back(key.key_id, turn.cost)
            raise ServiceError(exc.status, exc.code, str(exc)) from exc
        answer = Answer(state, gen, turn, turns.answer(state, gen, turn, ctx, tuple(body.stop or ())))
        if not body.stream:
            return await answer.whole()
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(answer.events(include_usage), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


class Answer:
    """A turn's guarded answer in the OpenAI shapes; audited before its last byte leaves, however it ends."""

    def __init__(self, st: GatewayState, gen: Generation, turn: Turn, pieces: AsyncIterator[str]) -> None:
        self.st, self.gen, self.turn, self.pieces = st, gen, turn, pieces
        self.id, self.created = f"chatcmpl-{turn.decision_id}", int(time.time())

    def steward_info(self) -> dict[str, Any]:
        t = self.turn
        return {"decision_id": t.decision_id, "findings": t.findings, "blocked": t.blocked,
                "model_hash": self.st.backend.model_hash, "tokens_approximate": self.gen.tokens_approximate,
                "receipt": t.receipt}

    async def _failed(self, exc: BackendError) -> ServiceError:
        """The model failed mid-answer: audited like any turn, then reported."""
        self.turn.finish_reason = "error"
        self.turn.blocked = {"stage": "model", "code": exc.code, "message": str(exc)}
        await turns.audit(self.st, self.turn, "chat")
        return ServiceError(exc.status, exc.code, str(exc))

    async def whole(self) -> dict[str, Any]:
        """One ``chat.completion`` object."""
        try:
            parts = [piece async for piece in self.pieces]
        except BackendError as exc:
            raise await self._failed(exc) from exc
        await turns.audit(self.st, self.turn, "chat")  # committed before the answer leaves
        t = self.turn
        message: dict[str, Any] = {"role": "assistant", "content": "".join(parts), "refusal": t.refusal}
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.st.model_name,
                "choices": [{"index": 0, "message": message, "finish_reason": t.finish_reason, "logprobs": None}],
                "usage": t.usage(), "steward": self.steward_info()}

    @staticmethod
    def _sse(payload: dict[str, Any]) -> str:
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return self._sse({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                          "model": self.st.model_name,
                          "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
                          **extra})

    async def events(self, include_usage: bool) -> AsyncIterator[str]:
        """``chat.completion.chunk`` events, the final one with the finish reason, then ``[DONE]``."""
        audited = False
        try:
            yield self._chunk({"role": "assistant", "content": ""})
            try:
                async for piece in self.pieces:
                    yield self._chunk({"content": piece})
            except BackendError as exc:
                err = await self._failed(exc)
                audited = True
                yield self._sse(err.openai_body())
                return
            await turns.audit(self.st, self.turn, "chat")  # committed before the last chunk leaves
            audited = True
            t = self.turn
            yield self._chunk({"refusal": t.refusal} if t.refusal else {}, t.finish_reason,
                              steward=self.steward_info())
            if include_usage:
                yield self._sse({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                                 "model": self.st.model_name, "choices": [], "usage": t.usage()})
            yield "data: [DONE]\n\n"
        finally:
            if not audited:  # the client went away mid-answer: the turn is still recorded
                self.gen.cancel.set()
                asyncio.get_running_loop().create_task(self._record_disconnect())

    async def _record_disconnect(self) -> None:
        """Close the answer first (its end settles the token counts and the budget), then audit the turn."""
        with contextlib.suppress(RuntimeError):  # already closed by the cancellation that ended the stream
            await self.pieces.aclose()  # type: ignore[attr-defined]
        if self.turn.settling is not None:
            await self.turn.settling
        self.turn.finish_reason = "client_disconnected"
        await turns.audit(self.st, self.turn, "chat")
