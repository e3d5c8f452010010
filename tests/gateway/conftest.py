"""Fixtures for the chat gateway: backends over the real embedded SmolLM2 (loaded once per session) and the tiny
random chat model (both folders from tests/conftest.py), and gateways served by uvicorn on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from steward.config.loader import parse_config
from steward.gateway.backends import LocalBackend
from steward.service.audit import AuditLog, database_url
from steward.service.keys import KeyStore


@pytest.fixture(scope="session")
def smollm(smollm_dir: Path) -> LocalBackend:
    return LocalBackend(smollm_dir, name="SmolLM2-135M-Instruct")


@pytest.fixture(scope="session")
def tiny_chat(tiny_chat_dir: Path) -> LocalBackend:
    return LocalBackend(tiny_chat_dir, name="tiny-chat")


class Gateway:
    """A gateway app served by uvicorn in a background thread on a free loopback port."""

    def __init__(self, run_dir: Path, backend: Any, gateway: dict[str, Any] | None = None) -> None:
        from steward.gateway import create_app
        from steward.service.loopback import on_loopback

        self.run_dir = run_dir
        # Patterns-only injection guard unless the test chooses (see tests/serve/conftest.py::live).
        gateway = {**(gateway or {})}
        gateway["guards"] = {"injection_model": "patterns", **gateway.get("guards", {})}
        self.cfg = parse_config({"run_dir": str(run_dir), "gateway": gateway})
        self.app = create_app(self.cfg, backend=backend)
        self._served = on_loopback(self.app)
        self.url = self._served.__enter__()
        self.audit = AuditLog(database_url(None, run_dir))

    def key(self, role: str = "chat") -> str:
        return KeyStore(self.audit.engine).create(role, "test")[1]

    def client(self, key: str | None = None, **kw: Any) -> Any:
        import openai

        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key or self.key(), max_retries=0, **kw)

    def stop(self) -> None:
        self._served.__exit__(None, None, None)
        self.audit.close()


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    started: list[Gateway] = []

    def make(backend: Any, gateway: dict[str, Any] | None = None, run_dir: Path | None = None) -> Gateway:
        gw = Gateway(run_dir or tmp_path / f"run{len(started)}", backend, gateway)
        started.append(gw)
        return gw

    yield make
    for gw in started:
        gw.stop()
