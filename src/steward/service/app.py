"""The app both services are built on: error handlers in the service's error shape, request limits and
per-route metrics, ``/healthz``, ``/readyz``, ``/metrics`` and the optional ``/docs``. A service adds its
own routes (``register_routes``) to the app this returns.

The split follows protectai/llm-guard's API (``create_app`` apart from ``register_routes``) and httpx's
``BaseClient``: what the two services share is written once, here.
"""

# No `from __future__ import annotations`: FastAPI resolves the route signatures at definition time.
import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from steward.service.config import ServiceSettings
from steward.service.core import ServiceCore
from steward.service.docs import mount_docs
from steward.service.errors import Live, ServiceError
from steward.service.limits import RequestLimits
from steward.service.writer import AuditWriteError


def _field(loc: Any) -> str:
    return ".".join(str(p) for p in tuple(loc or ())[1:])


def steward_invalid(exc: RequestValidationError) -> ServiceError:
    """The classifier service's answer to an invalid body: 422, every problem listed under ``items``."""
    problems = [{"field": _field(e.get("loc")) or "body", "message": e.get("msg")} for e in exc.errors()]
    first = problems[0] if problems else {"field": "body", "message": "invalid request"}
    return ServiceError(422, "invalid_request", f"{first['field']}: {first['message']}", items=problems)


def openai_invalid(exc: RequestValidationError) -> ServiceError:
    """The gateway's answer to an invalid body: 400 with the first problem's field as ``param`` (OpenAI's)."""
    errs = exc.errors()
    first = errs[0] if errs else {}
    param = _field(first.get("loc")) or None
    msg = f"{param}: {first.get('msg')}" if param else str(first.get("msg", "invalid request"))
    return ServiceError(400, "invalid_request", msg, param)


@dataclass(frozen=True)
class ErrorShape:
    """How a service writes a refusal: the body of a :class:`ServiceError`, and an invalid request's error."""

    body: Callable[[ServiceError], dict[str, Any]]
    invalid: Callable[[RequestValidationError], ServiceError]
    unrecorded: str  # what was not done when the audit log could not store it ("request was not decided")

    def response(self, exc: ServiceError) -> JSONResponse:
        return JSONResponse(self.body(exc), status_code=exc.status, headers=exc.headers or None)


STEWARD_SHAPE = ErrorShape(ServiceError.steward_body, steward_invalid, "the request was not decided")
OPENAI_SHAPE = ErrorShape(ServiceError.openai_body, openai_invalid, "the turn was not answered")


@dataclass(frozen=True)
class AppSpec:
    """What differs between the two services' apps."""

    title: str
    version: str
    description: str
    shape: ErrorShape
    lifespan: Any
    core: Callable[[], ServiceCore]  # the running service's core (raises 503 not_ready before start-up)
    ready: Callable[[], dict[str, Any]]  # the body of a ready /readyz
    docs: bool = False
    responses: dict[int | str, dict[str, Any]] | None = None


def service_app(spec: AppSpec, limits: ServiceSettings, live: Live[Any]) -> FastAPI:
    """A FastAPI app with the shared handlers, middleware and routes; body size and timeouts from ``limits``."""
    app = FastAPI(title=spec.title, version=spec.version, lifespan=spec.lifespan, description=spec.description,
                  docs_url=None, redoc_url=None,  # /docs only by config, from local files (steward.service.docs)
                  responses=spec.responses)
    if spec.docs:
        mount_docs(app, app.title)
    _handlers(app, spec.shape)

    def observe(route: str, status: int, seconds: float) -> None:
        if live.state is not None:
            m = spec.core().metrics
            m.requests.labels(route, str(status)).inc()
            m.latency.labels(route).observe(seconds)

    app.add_middleware(RequestLimits, max_body_bytes=limits.max_body_bytes, timeout_s=limits.request_timeout_s,
                       body_timeout_s=limits.body_timeout_s, observe=observe,
                       error=lambda status, code, message: spec.shape.response(ServiceError(status, code, message)))
    _health_routes(app, spec, live)
    _transparency_routes(app, spec)
    return app


def _transparency_routes(app: FastAPI, spec: AppSpec) -> None:
    @app.get("/v1/receipts/{decision_id}", tags=["v1"])
    async def receipt(decision_id: str, request: Request) -> Any:
        """A decision's receipt: its leaf, the signed checkpoint that covers it and the inclusion proof —
        checkable offline with the published public key (``steward audit verify-receipt``). The key that made
        the decision may fetch it, and reviewers and admins."""
        core = spec.core()
        key = await core.authorise(request, "models")
        if core.transparency is None:
            raise ServiceError(404, "transparency_off", "this service does not sign its audit log "
                               "(transparency.enabled: false): there are no receipts")
        doc = await asyncio.get_running_loop().run_in_executor(None, core.audit.receipt, decision_id)
        if doc is None or (doc["key_id"] != key.key_id and key.role not in ("admin", "reviewer")):
            raise ServiceError(404, "unknown_decision", f"no decision {decision_id!r} made with this key")
        doc.pop("key_id")
        if doc["checkpoint"] is None:  # committed, not signed yet: say when to come back
            doc["retry_after_s"] = core.checkpoints.interval_s if core.checkpoints else None
        doc["public_key"] = core.transparency.public_key
        return doc

    @app.get("/v1/transparency", tags=["v1"])
    async def transparency(request: Request) -> Any:
        """The log's name, public key and newest signed checkpoint (what a witness or an auditor fetches)."""
        core = spec.core()
        await core.authorise(request, "models")
        if core.transparency is None:
            raise ServiceError(404, "transparency_off", "this service does not sign its audit log")
        loop = asyncio.get_running_loop()
        latest = await loop.run_in_executor(None, core.audit.latest_checkpoint)
        history = await loop.run_in_executor(None, core.audit.key_history, core.transparency.signer.public_key)
        return {**core.transparency.describe(), "checkpoint": latest.to_dict() if latest else None,
                "key_history": history.describe()}  # every key that signed this log, and for which sizes


def _handlers(app: FastAPI, shape: ErrorShape) -> None:
    @app.exception_handler(ServiceError)
    async def _refused(request: Request, exc: ServiceError) -> Any:
        return shape.response(exc)

    @app.exception_handler(AuditWriteError)
    async def _unrecorded(request: Request, exc: AuditWriteError) -> Any:
        return shape.response(ServiceError(503, "audit_unavailable", f"{exc}; {shape.unrecorded}. Retry later"))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Any:
        return shape.response(shape.invalid(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Any:
        if exc.status_code == 400:
            return shape.response(ServiceError(400, "invalid_body", f"the body could not be read as UTF-8 JSON "
                                                                    f"({exc.detail})"))
        return shape.response(ServiceError(exc.status_code, "http_error", str(exc.detail)))


def _health_routes(app: FastAPI, spec: AppSpec, live: Live[Any]) -> None:
    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> Any:
        """Readiness: the model is loaded and the audit database answers."""
        try:
            await spec.core().ready()
        except ServiceError as exc:
            return spec.shape.response(exc)
        return spec.ready()

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    async def prometheus(request: Request) -> Any:
        """Prometheus metrics (admin keys)."""
        core = spec.core()
        await core.authorise(request, "metrics")
        return PlainTextResponse(generate_latest(core.metrics.registry), media_type=CONTENT_TYPE_LATEST)
