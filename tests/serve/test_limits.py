"""RequestLimits (both services' body-size and time limits) on a real uvicorn server on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

from steward.service.limits import RequestLimits
from steward.service.loopback import on_loopback


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, list[tuple[str, int]]]]:
    seen: list[tuple[str, int]] = []

    async def ready(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"bytes": len(await request.body())})

    async def slow(request: Request) -> PlainTextResponse:
        await asyncio.sleep(5)
        return PlainTextResponse("too late")

    async def stream(request: Request) -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for i in range(4):  # 4 x 0.2 s: longer than the 0.5 s limit, but the answer starts at once
                yield f"part {i}\n".encode()
                await asyncio.sleep(0.2)

        return StreamingResponse(parts(), media_type="text/plain")

    app = Starlette(routes=[Route("/readyz", ready), Route("/echo", echo, methods=["POST"]), Route("/slow", slow),
                            Route("/stream", stream)])
    app.add_middleware(RequestLimits, max_body_bytes=1000, timeout_s=0.5,
                       error=lambda status, code, msg: JSONResponse({"error": {"code": code, "message": msg}},
                                                                    status_code=status),
                       observe=lambda route, status, seconds: seen.append((route, status)))
    with on_loopback(app, ready_timeout=30) as url:
        yield url, seen


def test_body_limit_with_and_without_content_length(server) -> None:  # type: ignore[no-untyped-def]
    url, _ = server
    assert httpx.post(url + "/echo", content=b"x" * 1000).json() == {"bytes": 1000}
    r = httpx.post(url + "/echo", content=b"x" * 1001)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

    def chunks(n: int) -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        for _ in range(n):
            yield b"x" * 300

    assert httpx.post(url + "/echo", content=chunks(3)).json() == {"bytes": 900}
    r = httpx.post(url + "/echo", content=chunks(4))
    assert r.status_code == 413 and "1000 bytes" in r.json()["error"]["message"]


def test_time_limit_applies_until_the_answer_starts(server) -> None:  # type: ignore[no-untyped-def]
    url, seen = server
    r = httpx.get(url + "/slow", timeout=10)
    assert r.status_code == 503 and r.json()["error"]["code"] == "timeout"
    r = httpx.get(url + "/stream", timeout=10)  # lasts 0.8 s, started at once: not cut off
    assert r.status_code == 200 and r.text.count("part") == 4
    deadline = time.monotonic() + 5  # the server records a request after its last byte has gone out
    while ("/stream", 200) not in seen and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ("/slow", 503) in seen and ("/stream", 200) in seen
