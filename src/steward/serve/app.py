"""The guarded inference service: ``create_app(cfg)`` returns a FastAPI app for one run's model.

Every route but the health checks needs an API key (``X-API-Key`` or ``Authorization: Bearer``) whose role
allows it. A request passes the input guards (in the configured order; the first block answers 422 with a
reason code), is scored by the model through the dynamic batcher, passes the output guards, and is written
to the hash-chained audit log — committed before the response is sent. Texts are never logged: the audit
log holds the redacted text and a keyed hash of the original.

The app is the service core's (``steward.service.app``: errors, limits, health, metrics) with this
service's routes (``steward.serve.routes``) on it; the lifespan loads a :class:`ServeState`.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from steward.serve.config import ServeRun

API_KEY_HEADER = "X-API-Key"
log = logging.getLogger("steward.serve")


def _guards(scfg: Any, served: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """The input and output chains, and the PII step for stored free text; their models loaded now."""
    from steward.serve.output_guards import build
    from steward.service.guards import INPUT_GUARDS, GuardContext

    inputs, outputs = build(scfg.guards, scfg.max_text_chars)
    # Free text that is stored but not classified (feedback comments, group attributes) passes the same
    # PII engine as the texts to classify; even when the input chain has no PII guard, it is never stored raw.
    pii = [g for g in inputs if g.name == "pii"] or [INPUT_GUARDS.create("pii", scfg.guards, scfg.max_text_chars)]
    for g in inputs + outputs:  # load models behind the guards now, not on the first request
        g.scan("warm up", ctx=GuardContext(labels=served.labels, proba=[1.0], threshold=0.0))
    return inputs, outputs, pii


def _batcher(scfg: Any, served: Any, embed: bool) -> Any:
    """The dynamic batcher; with embedding drift on, one forward pass yields probabilities and embeddings."""
    from steward.serve.batcher import Batcher

    threads = served.clf.threads_per_call()
    return Batcher(served.clf.predict_with_embeddings if embed else served.clf.predict_proba,
                   scfg.batching.max_batch_size, scfg.batching.max_wait_ms,
                   workers=scfg.batching.workers if threads is not None else 1,
                   set_threads=served.clf.set_threads if threads is not None else None,
                   threads_alone=threads or 1)


async def load_state(cfg: ServeRun) -> Any:
    """Load the model, open the service core and start the background tasks. A start-up that fails half-way
    stops what it started (no writer task or open database is left behind)."""
    from steward.compress.release import load
    from steward.serve import metrics as metrics_mod
    from steward.serve.monitor import DriftChecker, DriftMonitor, reference_embeddings, reference_texts
    from steward.serve.state import ServeState
    from steward.service.core import Identity, open_core
    from steward.service.signing import ledger_trust

    scfg, run_dir = cfg.serve, Path(cfg.run_dir)
    served = load(run_dir, scfg.abstain_threshold, batch_size=scfg.batching.physical_batch_size, mode=scfg.model,
                  **ledger_trust(scfg.transparency, log))
    metrics = metrics_mod.create()
    core = open_core(scfg, run_dir, metrics, Identity(
        "service", "no decisions are taken", "no decisions will be taken",
        f"send an API key in the {API_KEY_HEADER} header (create one with `steward keys create`)"), log,
        key_cache_seconds=scfg.key_cache_seconds)
    started: list[Any] = []
    try:
        inputs, outputs, pii = _guards(scfg, served)
        ref_texts = reference_texts(run_dir)
        embed = scfg.drift.embedding and ref_texts is not None
        ref_emb = reference_embeddings(run_dir, served, ref_texts, scfg.drift) if embed else None
        batcher = _batcher(scfg, served, embed)
        batcher.start()
        started.append(batcher)
        monitor = DriftMonitor(scfg.drift, served.labels, served.scorecard,
                               [len(t.split()) for t in ref_texts] if ref_texts else None, ref_emb)
        checker = DriftChecker(monitor, metrics, scfg.drift.check_seconds)
        checker.start()
    except BaseException:
        for task in started:
            await task.stop()
        await core.close()
        raise
    return ServeState(core=core, model=served, inputs=inputs, outputs=outputs, stored_text_guards=pii,
                      batcher=batcher, monitor=monitor, checker=checker)


def create_app(cfg: ServeRun) -> Any:
    """Build the app. The model, database and guards load at start-up (FastAPI lifespan)."""
    from steward import __version__
    from steward.serve.routes import register_routes
    from steward.serve.schemas import ErrorResponse
    from steward.service.app import STEWARD_SHAPE, AppSpec, service_app
    from steward.service.errors import Live

    live: Live[Any] = Live()

    @asynccontextmanager
    async def lifespan(app: Any):  # type: ignore[no-untyped-def]
        live.state = state = await load_state(cfg)
        yield
        await state.checker.stop()
        await state.batcher.stop()
        await state.core.close()

    spec = AppSpec(title="Steward guarded inference service", version=__version__, lifespan=lifespan,
                   description="Classifies text behind input and output guards; every decision is audited.",
                   shape=STEWARD_SHAPE, core=lambda: live.get().core, docs=cfg.serve.docs,
                   ready=lambda: {"status": "ready", "model_version": live.get().model.version},
                   responses={s: {"model": ErrorResponse} for s in (401, 403, 413, 422, 429)})
    app = service_app(spec, cfg.serve, live)
    register_routes(app, live, cfg)
    return app
