"""Run an ASGI app with uvicorn in a background thread on a free loopback port (the demo, the red team)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 90.0, alive: Any = None) -> bool:
    """Poll ``url``/readyz until it answers 200 (True), ``timeout`` seconds pass or ``alive()`` turns False."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (alive is None or alive()):
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


@contextmanager
def on_loopback(app: Any, ready_timeout: float = 120.0) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 until the block ends; yields its base URL once ``/readyz`` answers 200."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_ready(url, ready_timeout, thread.is_alive):
            raise RuntimeError(f"the service on {url} did not become ready within {ready_timeout:.0f} s")
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
