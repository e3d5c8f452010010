"""Request limits for both services: body size, time to receive the body, time to the first response byte,
per-route metrics.

Plain ASGI rather than ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware`` runs every request
through an extra task group and memory stream, which cost the prediction service ~11 % of its GIL time at
concurrency 32 (py-spy, 2026-11-27) for three checks that need neither.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# (status, code, message) -> an ASGI response (the service's own error body)
ErrorFactory = Callable[[int, str, str], Any]
# (route, status, seconds) -> None
Observer = Callable[[str, int, float], None]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class RequestLimits:
    """Refuses bodies over ``max_body_bytes`` (413, also for chunked bodies without a Content-Length), bodies
    that have not fully arrived ``body_timeout_s`` after the request began (408, like nginx's
    ``client_body_timeout``: a client trickling its body holds a connection and a worker), and answers 503
    when no response has started within ``timeout_s`` of the request's first byte, body included; a
    response that has started (e.g. a token stream) is not cut off. ``observe`` sees every request's route
    template, status and duration.

    The body is read here, whole, before the app sees it (it is at most ``max_body_bytes``): the app's own
    body reading turns any error into a 400, so a deadline must hold before it."""

    def __init__(self, app: Any, *, max_body_bytes: int, timeout_s: float, error: ErrorFactory,
                 observe: Observer | None = None, body_timeout_s: float | None = None) -> None:
        self.app, self.max_body, self.timeout, self.error, self.observe = app, max_body_bytes, timeout_s, error, observe
        self.body_timeout = min(timeout_s, body_timeout_s if body_timeout_s is not None else timeout_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status, started = 500, False
        too_big = (413, "body_too_large", f"the body is larger than {self.max_body} bytes")

        async def refuse(args: tuple[int, str, str]) -> None:
            nonlocal status
            status = args[0]
            await self.error(*args)(scope, receive, send)

        try:
            length = _header(scope, b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                await refuse(too_big)
                return
            if scope["method"] in _BODY_METHODS:
                try:
                    async with asyncio.timeout(self.body_timeout):
                        body = await _read_body(receive, self.max_body)
                except TimeoutError:
                    await refuse((408, "body_timeout", f"the request body did not arrive within "
                                                       f"{self.body_timeout:g} s"))
                    return
                if body is None:
                    await refuse(too_big)
                    return
                receive = _replay(body, receive)

            async with asyncio.timeout(max(0.0, self.timeout - (time.perf_counter() - t0))) as deadline:
                async def send_tracked(message: Message) -> None:
                    nonlocal status, started
                    if message["type"] == "http.response.start":
                        status, started = message["status"], True
                        deadline.reschedule(None)  # the answer has begun: no time limit on the rest of it
                    await send(message)

                await self.app(scope, receive, send_tracked)
        except TimeoutError:
            if started:
                raise
            await refuse((503, "timeout", f"no response within {self.timeout:g} s"))
        finally:
            if self.observe is not None:
                self.observe(route_label(scope), status, time.perf_counter() - t0)


UNMATCHED = "unmatched"


def route_label(scope: Scope) -> str:
    """The metric label of a request: the template of the route it matched (``/v1/models/card``, never the
    path a client typed), or ``unmatched`` for every path no route serves. Labelling by raw path let anyone
    without a key add a Prometheus series per request (one random 404 path each)."""
    route = scope.get("route")  # set by Starlette's router on the scope it matched
    if route is None and scope.get("app") is not None:  # refused before routing (413, 408): match it here
        from starlette.routing import Match

        route = next((r for r in scope["app"].router.routes if r.matches(scope)[0] == Match.FULL), None)
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k == name:
            return v.decode("latin-1")
    return None


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes ``limit`` bytes."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return bytes(body)  # the client went away: the app sees an empty or partial body, then a disconnect
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            return bytes(body)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect as the app would

    return replay
