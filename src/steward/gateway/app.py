"""The guarded chat gateway: ``create_app(cfg)`` returns an OpenAI-compatible FastAPI app.

``POST /v1/chat/completions`` (plain and ``stream: true``) and ``GET /v1/models`` speak the OpenAI API, so
existing clients work with only ``base_url`` changed. Every caller message passes the input guards (the
service core's registry; a block answers 400 with an OpenAI error object whose ``code`` names the guard);
the answer passes the output guards sentence by sentence — a streamed sentence is released only after the
guards passed it, so nothing is ever sent and then retracted; a stopped answer ends with
``finish_reason: "content_filter"`` and the reason in ``message.refusal``. Same API keys and audit log as
``steward serve``; per-key request rate limits and token budgets.

The app is the service core's (``steward.service.app``) with the gateway's routes
(``steward.gateway.routes``) on it; the lifespan loads a :class:`~steward.gateway.state.GatewayState`.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from steward.gateway.config import GatewayRun

log = logging.getLogger("steward.gateway")

def _identity() -> Any:
    from steward.service.core import Identity

    return Identity("gateway", "no turns are answered", "no turns will be answered",
                    "send an API key as 'Authorization: Bearer <key>' (the openai client's api_key); create one "
                    "with `steward keys create --role chat`")


def _chains(gcfg: Any, system: str, canary: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per key role, its guard settings and its (input, output) chains; roles with the same settings share
    one pair of chains. Guard models load now, not on a request."""
    from steward.gateway.guards import OutputGuardContext, build, guards_for
    from steward.service.guards import GuardContext
    from steward.service.keys import ROLES

    built: dict[str, tuple[list[Any], list[Any]]] = {}
    settings, chains = {}, {}
    for role in ROLES:
        settings[role] = guards_for(gcfg, role)
        fingerprint = settings[role].model_dump_json()
        if fingerprint not in built:
            built[fingerprint] = build(settings[role], gcfg.max_message_chars, OutputGuardContext(system, canary))
            for g in built[fingerprint][0] + built[fingerprint][1]:
                g.scan("warm up", ctx=GuardContext())
        chains[role] = built[fingerprint]
    return settings, chains


async def load_state(cfg: GatewayRun, backend: Any = None) -> Any:
    """Open the service core, load the model (unless ``backend`` is given) and build the guard chains."""
    from steward.gateway import metrics as metrics_mod
    from steward.gateway.backends import BACKENDS
    from steward.gateway.guards import with_canary
    from steward.gateway.state import GatewayState
    from steward.service.core import open_core
    from steward.service.ratelimit import RateLimiter

    gcfg = cfg.gateway
    metrics = metrics_mod.create()
    core = open_core(gcfg, Path(cfg.run_dir), metrics, _identity(), log)
    be = None
    try:
        be = backend if backend is not None else await asyncio.get_running_loop().run_in_executor(
            None, lambda: BACKENDS.create(gcfg.backend, gcfg, run_dir=Path(cfg.run_dir)))
        system, canary = with_canary(gcfg.system_prompt) if gcfg.canary else (gcfg.system_prompt, None)
        settings, chains = _chains(gcfg, system, canary)
    except BaseException:
        # A start-up that fails half-way leaves no writer task, open database or loaded model behind.
        if be is not None and backend is None:
            be.close()
        await core.close()
        raise
    return GatewayState(core=core, backend=be, settings=settings, chains=chains, system=system, canary=canary,
                        budget=RateLimiter(gcfg.tokens_per_minute, gcfg.tokens_per_minute),
                        model_name=gcfg.model_name or be.model_id)


def create_app(cfg: GatewayRun, backend: Any = None) -> Any:
    """Build the app. The model (unless ``backend`` is given), database and guards load at start-up."""
    from steward import __version__
    from steward.gateway.routes import register_routes
    from steward.service.app import OPENAI_SHAPE, AppSpec, service_app
    from steward.service.errors import Live

    live: Live[Any] = Live()

    @asynccontextmanager
    async def lifespan(app: Any):  # type: ignore[no-untyped-def]
        live.state = state = await load_state(cfg, backend)
        yield
        await state.core.close()
        if backend is None:
            state.backend.close()

    spec = AppSpec(title="Steward guarded chat gateway", version=__version__, lifespan=lifespan,
                   description="An OpenAI-compatible chat API behind input and output guards; every turn is "
                               "audited.", shape=OPENAI_SHAPE, core=lambda: live.get().core, docs=cfg.gateway.docs,
                   ready=lambda: {"status": "ready", "model": live.get().model_name})
    app = service_app(spec, cfg.gateway, live)
    register_routes(app, live, cfg)
    return app
