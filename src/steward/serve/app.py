"""The guarded inference service: ``create_app(cfg)`` returns a FastAPI app for one run's model.

Every route but the health checks needs an API key (``X-API-Key`` or ``Authorization: Bearer``) whose role
allows it. A request passes the input guards (in the configured order; the first block answers 422 with a
reason code), is scored by the model through the dynamic batcher, passes the output guards, and is written
to the hash-chained audit log — committed before the response is sent. Texts are never logged: the audit
log holds the redacted text and a keyed hash of the original.
"""


import asyncio
import json
import logging
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from steward.config.models import RunConfig
from steward.serve.schemas import FEEDBACK_LIMITS

API_KEY_HEADER = "X-API-Key"
INLINE_GUARD_CHARS = 2_000  # input guards run on the event loop for requests up to this many characters
COMMENT_CHARS, GROUP_CHARS = FEEDBACK_LIMITS
log = logging.getLogger("steward.serve")
DECIDING = frozenset({"predict", "explain", "feedback", "chat"})  # actions refused while read-only


@dataclass
class ServeState:
    """What the lifespan loads and every route reads: one typed record instead of a dict of names."""

    model: Any  # steward.serve.model.ServedModel
    audit: Any  # steward.serve.audit.AuditLog
    writer: Any  # steward.serve.batcher.AuditWriter
    inputs: list[Any]  # the input guard chain
    outputs: list[Any]  # the output guard chain
    batcher: Any  # steward.serve.batcher.Batcher
    metrics: Any  # steward.serve.metrics.Metrics
    monitor: Any  # steward.serve.monitor.DriftMonitor
    access: Any  # steward.serve.access.Access
    secret: bytes  # the input-hash key
    stored_text_guards: list[Any]  # the PII step for stored free text (feedback)
    read_only: str | None = None  # why the service takes no decisions (a broken audit chain), or None
    feedback: dict[str, int] = field(default_factory=lambda: {"right": 0, "total": 0})
    feedback_lock: asyncio.Lock = field(default_factory=asyncio.Lock)



def public_base_model(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The train manifest's base model as a caller may see it: a name and the weights' hash, never a path on
    the server (a local model folder is named by its last part; hub ids and the embedded default as they are)."""
    base = manifest.get("base_model")
    if not isinstance(base, dict):
        return None
    model_id = str(base.get("id") or "")
    if Path(model_id).is_absolute() or model_id.startswith(("./", "../", "~")):
        model_id = Path(model_id).name
    return {"id": model_id, "weights_sha256": base.get("weights_sha256")}


def public_inputs(inputs: dict[str, Any] | None) -> dict[str, Any] | None:
    """The train manifest's data inputs with paths outside the run folder named by their file name only."""
    if not inputs:
        return inputs
    return {k: {**v, "path": Path(str(v.get("path", ""))).name if Path(str(v.get("path", ""))).is_absolute()
                else v.get("path")} for k, v in inputs.items()}


def audit_failed(metrics: Any, logger: logging.Logger = log) -> Any:
    """``AuditWriter``'s failure report: a metric and a log line naming the error, never the record."""

    def report(exc: BaseException) -> None:
        metrics.audit_failures.inc()
        # The type only: a database error's text quotes the statement's parameters, i.e. the record.
        cause = type(getattr(exc, "orig", None) or exc).__name__
        logger.error("an audit record could not be committed (%s); the request was refused", cause)

    return report


def create_app(cfg: RunConfig) -> Any:
    """Build the app. The model, database and guards load at start-up (FastAPI lifespan)."""
    from fastapi import Depends, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, PlainTextResponse
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from steward import __version__
    from steward.serve import metrics as metrics_mod
    from steward.serve import model as model_mod
    from steward.serve.access import Access, client_address
    from steward.serve.audit import AuditLog, check_at_start, database_url, keyed_hash
    from steward.serve.batcher import AuditWriteError, AuditWriter, Batcher
    from steward.serve.docs import mount_docs
    from steward.serve.errors import Live, ServiceError
    from steward.serve.guards import INPUT_GUARDS, GuardContext, build, run_chain
    from steward.serve.guards.detector import card_section as guards_card
    from steward.serve.keys import ApiKey, KeyStore
    from steward.serve.limits import RequestLimits
    from steward.serve.metrics import publish_drift
    from steward.serve.monitor import DriftChecker, DriftMonitor, reference_embeddings, reference_texts
    from steward.serve.ratelimit import RateLimiter
    from steward.serve.runfiles import service_secret
    from steward.serve.schemas import (
        Decision,
        ErrorResponse,
        ExplainRequest,
        ExplainResponse,
        FeedbackRequest,
        FeedbackResponse,
        PredictRequest,
        PredictResponse,
    )

    scfg = cfg.serve
    run_dir = Path(cfg.run_dir)
    live: Live[ServeState] = Live()
    st = live.get  # the loaded state; 503 before the lifespan has set it

    @asynccontextmanager
    async def lifespan(app: Any):  # type: ignore[no-untyped-def]
        served = model_mod.load(run_dir, scfg.abstain_threshold, batch_size=scfg.batching.physical_batch_size,
                                mode=scfg.model)
        audit = AuditLog(database_url(scfg.database_url, run_dir))
        chain = check_at_start(audit, scfg.audit_broken)  # a broken chain: no start, or read-only (by config)
        if not chain.ok:
            log.critical("READ-ONLY: the audit log fails verification (%s); no decisions will be taken", chain.error)
        inputs, outputs = build(scfg.guards, scfg.max_text_chars)
        # Free text that is stored but not classified (feedback comments, group attributes) passes the same
        # PII engine as the texts to classify; even when the input chain has no PII guard, it is never stored raw.
        pii = [g for g in inputs if g.name == "pii"] or [INPUT_GUARDS.create("pii", scfg.guards, scfg.max_text_chars)]
        for g in inputs + outputs:  # load models behind the guards now, not on the first request
            g.scan("warm up", ctx=GuardContext(labels=served.labels, proba=[1.0], threshold=0.0))
        ref_texts = reference_texts(run_dir)
        embed = scfg.drift.embedding and ref_texts is not None
        ref_emb = reference_embeddings(run_dir, served, ref_texts, scfg.drift) if embed else None
        # With embedding drift on, one forward pass yields both the probabilities and the embeddings.
        threads = served.clf.threads_per_call()
        batcher = Batcher(served.clf.predict_with_embeddings if embed else served.clf.predict_proba,
                          scfg.batching.max_batch_size, scfg.batching.max_wait_ms,
                          workers=scfg.batching.workers if threads is not None else 1,
                          set_threads=served.clf.set_threads if threads is not None else None,
                          threads_alone=threads or 1)
        batcher.start()
        metrics = metrics_mod.create()
        metrics.audit_chain_ok.set(1 if chain.ok else 0)
        writer = AuditWriter(audit.append_many, on_failure=audit_failed(metrics))
        writer.start()
        monitor = DriftMonitor(scfg.drift, served.labels, served.scorecard,
                               [len(t.split()) for t in ref_texts] if ref_texts else None, ref_emb)
        checker = DriftChecker(monitor, metrics, scfg.drift.check_seconds)
        checker.start()
        live.state = ServeState(
            model=served, audit=audit, writer=writer, inputs=inputs, outputs=outputs, batcher=batcher,
            metrics=metrics, monitor=monitor,
            access=Access(KeyStore(audit.engine, scfg.key_cache_seconds),
                          RateLimiter(scfg.rate_limit_per_minute, scfg.rate_limit_burst),
                          RateLimiter(scfg.auth_failures_per_minute, scfg.auth_failures_burst),
                          missing_hint=f"send an API key in the {API_KEY_HEADER} header (create one with "
                                       f"`steward keys create`)",
                          refused=lambda reason: metrics.auth_failures.labels(reason).inc()),
            secret=service_secret(run_dir), stored_text_guards=pii, read_only=None if chain.ok else chain.error)
        yield
        await checker.stop()
        await batcher.stop()
        await writer.stop()
        audit.close()

    app = FastAPI(title="Steward guarded inference service", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,  # /docs only by config, from local files (steward.serve.docs)
                  description="Classifies text behind input and output guards; every decision is audited.",
                  responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse},
                             413: {"model": ErrorResponse}, 422: {"model": ErrorResponse},
                             429: {"model": ErrorResponse}})

    if scfg.docs:
        mount_docs(app, app.title)

    def error(status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any) -> Any:
        body = {"error": {"code": code, "message": message, **{k: v for k, v in extra.items() if v is not None}}}
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(ServiceError)
    async def _api_error(request: Request, exc: ServiceError) -> Any:
        return JSONResponse(exc.steward_body(), status_code=exc.status, headers=exc.headers or None)

    @app.exception_handler(AuditWriteError)
    async def _unrecorded(request: Request, exc: AuditWriteError) -> Any:
        return error(503, "audit_unavailable", f"{exc}; the request was not decided. Retry later")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Any:
        problems = [{"field": ".".join(str(p) for p in e.get("loc", ())[1:]) or "body", "message": e.get("msg")}
                    for e in exc.errors()]
        first = problems[0] if problems else {"field": "body", "message": "invalid request"}
        return error(422, "invalid_request", f"{first['field']}: {first['message']}", items=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Any:
        if exc.status_code == 400:
            return error(400, "invalid_body", f"the body could not be read as UTF-8 JSON ({exc.detail})")
        return error(exc.status_code, "http_error", str(exc.detail))

    def observe(route: str, status: int, seconds: float) -> None:
        if live.state is not None:
            live.state.metrics.requests.labels(route, str(status)).inc()
            live.state.metrics.latency.labels(route).observe(seconds)

    app.add_middleware(RequestLimits, max_body_bytes=scfg.max_body_bytes, timeout_s=scfg.request_timeout_s,
                       body_timeout_s=scfg.body_timeout_s,
                       error=error, observe=observe)

    def authorise(action: str):  # type: ignore[no-untyped-def]
        async def dep(request: Request) -> ApiKey:
            key = await st().access.check(request.headers, client_address(request), action)
            if st().read_only and action in DECIDING:
                raise ServiceError(503, "audit_chain_broken", f"the service is read-only: its audit log failed "
                               f"verification at start-up ({st().read_only}); no decisions are taken")
            return key

        return Depends(dep)

    def input_hash(text: str) -> str:
        return keyed_hash(st().secret, text)

    async def guard_inputs(texts: list[str], key: ApiKey) -> list[tuple[str, list[dict[str, Any]]]]:
        """Run the input chain on every text; raise 422 (after auditing the refusal) if any is blocked."""
        served, m = st().model, st().metrics
        ctx = GuardContext(key_id=key.key_id, labels=served.labels)

        def scan() -> list[Any]:
            return [run_chain(st().inputs, t, ctx) for t in texts]

        # The chain takes ~0.15 ms for a sentence, less than a hop to a worker thread and back; long texts
        # (up to ~1 ms per 1,000 characters) go to a thread so they do not hold up other requests.
        if sum(len(t) for t in texts) <= INLINE_GUARD_CHARS:
            chains = scan()
        else:
            chains = await asyncio.get_running_loop().run_in_executor(None, scan)
        for ch in chains:
            ch.count_hits(m.guard_hits)
        blocked = [(i, ch.blocked) for i, ch in enumerate(chains) if ch.blocked is not None]
        if blocked:
            decision_id = new_id()
            await st().writer.write([{
                "decision_id": decision_id if len(texts) == 1 else f"{decision_id}-{i}", "kind": "blocked",
                "key_id": key.key_id, "model_version": served.version, "model_hash": served.hash,
                "input_hash": input_hash(texts[i]), "redacted_input": None, "findings": ch.findings(),
                "output": {"blocked": ch.blocked.code if ch.blocked else None}, "latency_ms": 0.0}
                for i, ch in enumerate(chains) if ch.blocked is not None])
            first = blocked[0][1]
            raise ServiceError(422, first.code, first.message, guard=first.guard, decision_id=decision_id,
                           items=[{"index": i, "guard": b.guard, "code": b.code} for i, b in blocked]
                           if len(texts) > 1 else None)
        return [(ch.text, ch.findings()) for ch in chains]

    def new_id() -> str:
        return uuid.uuid4().hex

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> Any:
        """Readiness: the model is loaded and the audit database answers."""
        if live.state is None:
            return error(503, "not_ready", "the model is still loading")
        if st().read_only:
            return error(503, "audit_chain_broken", f"read-only: the audit log failed verification at start-up "
                                                    f"({st().read_only})")
        try:
            await asyncio.get_running_loop().run_in_executor(None, st().audit.count)
        except Exception as exc:  # noqa: BLE001
            return error(503, "database_unavailable", f"the audit database does not answer: {type(exc).__name__}")
        return {"status": "ready", "model_version": st().model.version}

    @app.post("/v1/predict", response_model=PredictResponse, tags=["v1"])
    async def predict(body: PredictRequest, key: Annotated[ApiKey, authorise("predict")]) -> Any:
        """Classify one text or a batch. Low confidence sets ``abstained: true`` (route to human review)."""
        texts = body.items()
        if len(texts) > scfg.max_batch_texts:
            raise ServiceError(422, "batch_too_large", f"{len(texts)} texts; the limit is {scfg.max_batch_texts}")
        t0 = time.perf_counter()
        served, m = st().model, st().metrics
        guarded = await guard_inputs(texts, key)
        scored = await st().batcher.submit([t for t, _ in guarded])
        failed = [isinstance(r, BaseException) for r in scored]
        proba = [None if bad else r[0] if isinstance(r, tuple) else r for r, bad in zip(scored, failed, strict=True)]
        embeddings = [r[1] if isinstance(r, tuple) else None for r in scored]
        m.batch_size.observe(len(texts))
        decisions, records = [], []
        latency = (time.perf_counter() - t0) * 1000
        for (text, findings), p, emb, raw, exc in zip(guarded, proba, embeddings, texts, scored, strict=True):
            if p is None:  # this text alone failed to score (the others of the batch did): say so, record it
                m.scoring_failures.inc()
                decisions.append(Decision(decision_id=new_id(), label=None, probabilities={}, abstained=True,
                                          model_version=served.version, findings=findings,
                                          error={"code": "scoring_failed", "message": "the model could not score "
                                                 f"this text ({type(exc).__name__}); route it to review"}))
                records.append({"decision_id": decisions[-1].decision_id, "kind": "error", "key_id": key.key_id,
                                "model_version": served.version, "model_hash": served.hash,
                                "input_hash": input_hash(raw), "redacted_input": text, "findings": findings,
                                "output": {"error": "scoring_failed"}, "latency_ms": latency})
                continue
            idx = int(p.argmax())
            label = served.labels[idx]
            octx = GuardContext(key_id=key.key_id, labels=served.labels, proba=[float(x) for x in p],
                                threshold=served.threshold)
            out = run_chain(st().outputs, label, octx)
            if out.blocked is not None:
                m.guard_hits.labels(out.blocked.guard, "block").inc()
                records.append({"decision_id": new_id(), "kind": "blocked", "key_id": key.key_id,
                                "model_version": served.version, "model_hash": served.hash,
                                "input_hash": input_hash(raw), "redacted_input": text,
                                "findings": findings + out.findings(), "output": {"blocked": out.blocked.code},
                                "latency_ms": latency})
                await st().writer.write(records)
                raise ServiceError(422, out.blocked.code, out.blocked.message, guard=out.blocked.guard,
                               decision_id=records[-1]["decision_id"])
            abstained = any(f.get("type") == "low_confidence" for r in out.results for f in r.findings)
            all_findings = findings + [f for f in out.findings() if f["findings"]]
            decision = Decision(decision_id=new_id(), label=out.text, probabilities={
                lbl: round(float(v), 6) for lbl, v in zip(served.labels, p, strict=True)}, abstained=abstained,
                model_version=served.version, findings=all_findings)
            decisions.append(decision)
            records.append({"decision_id": decision.decision_id, "kind": "predict", "key_id": key.key_id,
                            "model_version": served.version, "model_hash": served.hash,
                            "input_hash": input_hash(raw), "redacted_input": text, "findings": all_findings,
                            "output": {"label": decision.label, "probabilities": decision.probabilities,
                                       "abstained": abstained}, "latency_ms": latency})
            m.labels.labels(label).inc()
            if abstained:
                m.abstentions.inc()
            st().monitor.observe(idx, float(p[idx]), len(text.split()), emb)
        await st().writer.write(records)  # committed before the answer leaves (failures too)
        if all(failed):  # nothing was decided: an error, after its records were kept
            raise ServiceError(500, "scoring_failed", f"the model could not score the text(s); nothing was decided "
                               f"({type(scored[0]).__name__})", decision_id=records[0]["decision_id"])
        return PredictResponse(decisions=decisions)

    @app.post("/v1/explain", response_model=ExplainResponse, tags=["v1"])
    async def explain(body: ExplainRequest, key: Annotated[ApiKey, authorise("explain")]) -> Any:
        """Token attributions for a text, by the evaluate stage's explainers (occlusion or Integrated Gradients)."""
        from steward.evaluate.explain import integrated_gradients, occlusion

        served = st().model
        t0 = time.perf_counter()
        ((text, findings),) = await guard_inputs([body.text], key)
        clf = served.clf

        if body.method == "integrated_gradients" and not getattr(clf, "differentiable", False):
            raise ServiceError(422, "method_unavailable", "integrated_gradients needs gradients, which the served model "
                           "(int8 or ONNX) does not have; use method: occlusion")

        def run() -> Any:
            target = int(clf.predict_proba([text])[0].argmax())
            return (integrated_gradients(clf, text, target, 32) if body.method == "integrated_gradients"
                    else occlusion(clf, text, target))

        attr = await asyncio.get_running_loop().run_in_executor(None, run)
        decision_id = new_id()
        label = served.labels[attr.target]
        await st().writer.write([{
            "decision_id": decision_id, "kind": "explain", "key_id": key.key_id, "model_version": served.version,
            "model_hash": served.hash, "input_hash": input_hash(body.text), "redacted_input": text, "findings": findings,
            "output": {"label": label, "method": body.method}, "latency_ms": (time.perf_counter() - t0) * 1000}])
        return ExplainResponse(decision_id=decision_id, label=label, method=body.method, tokens=attr.tokens,
                               scores=[round(s, 6) for s in attr.scores], model_version=served.version,
                               findings=findings)

    @app.post("/v1/feedback", response_model=FeedbackResponse, tags=["v1"])
    async def feedback(body: FeedbackRequest, key: Annotated[ApiKey, authorise("feedback")]) -> Any:
        """The true label for a decision, stored in the audit log for re-audit and retraining.

        A predict key may label the decisions it asked for, a reviewer key any decision; one accepted label
        per decision and key (a second answers 409; a reviewer may add theirs). Refused attempts are audited
        too. The comment and the group attributes pass the same canonical form and PII engine as a text to
        classify before they are stored."""
        served, m = st().model, st().metrics
        if body.label not in served.labels:
            raise ServiceError(422, "unknown_label", f"label {body.label!r} is not one of the model's labels "
                                                 f"{served.labels}")
        loop = asyncio.get_running_loop()
        audit = st().audit
        async with st().feedback_lock:  # check-then-write, atomic within this replica
            original = await loop.run_in_executor(None, audit.get, body.decision_id)
            if original is None or original["kind"] != "predict":
                raise ServiceError(404, "unknown_decision", f"no prediction with decision_id {body.decision_id!r}")
            refusal = None
            if not key.reviews and original["key_id"] != key.key_id:
                refusal = ServiceError(403, "not_your_decision", "this key may label only the decisions it asked for. "
                                   "Fix: a reviewer key (steward keys create --role reviewer) labels any decision")
            else:
                mine = [r for r in await loop.run_in_executor(None, audit.feedback_on, body.decision_id)
                        if r["key_id"] == key.key_id]
                if mine:
                    refusal = ServiceError(409, "already_labelled", f"this key already labelled decision "
                                       f"{body.decision_id} (feedback {mine[0]['decision_id']}); one label per "
                                       f"decision and key. Fix: another reviewer may add theirs",
                                       feedback_id=mine[0]["decision_id"])
            if refusal is not None:
                await st().writer.write([{
                    "decision_id": new_id(), "kind": "feedback_refused", "key_id": key.key_id,
                    "model_version": served.version, "model_hash": served.hash, "input_hash": None,
                    "redacted_input": None, "findings": [], "ref": body.decision_id, "latency_ms": 0.0,
                    "output": {"reason": refusal.code, "label": body.label}}])
                raise refusal
            comment, groups, findings = scrub_feedback(body)
            predicted = json.loads(original["output"]).get("label")
            correct = predicted == body.label
            fid = new_id()
            await st().writer.write([{
                "decision_id": fid, "kind": "feedback", "key_id": key.key_id, "model_version": served.version,
                "model_hash": served.hash, "input_hash": None, "redacted_input": None, "findings": findings,
                "output": {"label": body.label, "predicted": predicted, "correct": correct, "comment": comment,
                           "groups": groups, "basis": "reviewer" if key.reviews else "own_decision"},
                "latency_ms": 0.0, "ref": body.decision_id}])
        fb = st().feedback
        fb["total"] += 1
        fb["right"] += int(correct)
        m.feedback.labels(str(correct).lower()).inc()
        m.feedback_accuracy.set(fb["right"] / fb["total"])
        return FeedbackResponse(feedback_id=fid, decision_id=body.decision_id, correct=correct)

    def scrub_feedback(body: FeedbackRequest) -> tuple[str | None, dict[str, str], list[dict[str, Any]]]:
        """The comment and group attributes as stored: canonical form and PII redaction, like a text to classify.
        Sizes are checked after normalising (NFKC can make one character eighteen)."""
        pii, findings = st().stored_text_guards, []

        def clean(value: str, field: str, limit: int) -> str:
            ch = run_chain(pii, value, GuardContext())
            if len(ch.text) > limit:
                raise ServiceError(422, "too_long", f"{field}: {len(ch.text)} characters after normalisation; the "
                                                f"limit is {limit}")
            findings.extend({"field": field, **f} for f in ch.findings() if f["findings"])
            return ch.text

        comment = clean(body.comment, "comment", COMMENT_CHARS) if body.comment is not None else None
        groups: dict[str, str] = {}
        for k, v in (body.groups or {}).items():
            name = clean(k, "groups", GROUP_CHARS)  # findings name the cleaned key, never the raw one
            if name in groups:
                raise ServiceError(422, "invalid_request", f"groups: two attribute names read {name!r} once "
                                                           f"normalised. Fix: send each attribute once")
            groups[name] = clean(v, f"groups.{name}", GROUP_CHARS)
        return comment, groups, findings

    @app.get("/v1/models", tags=["v1"])
    async def models(key: Annotated[ApiKey, authorise("models")]) -> dict[str, Any]:
        """The served model: version, hashes, abstention threshold and its scorecard summary."""
        served = st().model
        sc = served.scorecard or {}
        summary = None
        if sc:
            summary = {"passed": sc.get("passed"), "composite": (sc.get("composite") or {}).get("value"),
                       "gates": [{k: g[k] for k in ("gate", "measured", "threshold", "passed")}
                                 for g in sc.get("gates", [])],
                       "figures": {f"{p}.{k}": v.get("value") for p, d in sc.get("probes", {}).items()
                                   for k, v in (d.get("figures") or {}).items()}}
        card = run_dir / "evaluate" / "MODEL_CARD.md"
        return {"data": [{
            "id": served.version, "labels": served.labels, "base_model": public_base_model(served.manifest),
            "method": served.manifest.get("method"), "weights_sha256": served.weights_sha256,
            "artifact": served.model_dir.relative_to(run_dir).as_posix()
            if served.model_dir.is_relative_to(run_dir) else served.model_dir.name,
            "data_inputs": public_inputs(served.manifest.get("data_inputs")), "abstain_threshold": served.threshold,
            "threshold_source": served.threshold_source, "privacy": served.manifest.get("privacy"),
            "scorecard": summary, "model_card": "/v1/models/card" if card.is_file() else None,
            "guards": guard_facts()}]}

    def guard_facts() -> list[dict[str, Any]]:
        """Guards that rest on a model of their own (the injection detector): which one, hashes, scorecard."""
        return [g.describe() for g in st().inputs if hasattr(g, "describe")]

    @app.get("/v1/models/card", tags=["v1"], response_class=PlainTextResponse)
    async def model_card(key: Annotated[ApiKey, authorise("models")]) -> Any:
        """The model card (Markdown) written by the evaluate stage."""
        card = run_dir / "evaluate" / "MODEL_CARD.md"
        if not card.is_file():
            raise ServiceError(404, "no_model_card", "no model card: run `steward evaluate` for this run")
        return PlainTextResponse(card.read_text(encoding="utf-8") + guards_card(guard_facts()),
                                 media_type="text/markdown")

    @app.get("/v1/monitor", tags=["v1"])
    async def monitor(key: Annotated[ApiKey, authorise("monitor")]) -> dict[str, Any]:
        """Drift of live traffic against the evaluation set, audit-log size, batching figures."""
        status = await asyncio.get_running_loop().run_in_executor(None, st().monitor.status)
        publish_drift(st().metrics, status)
        b = st().batcher
        fb = st().feedback
        return {"drift": status, "batches": b.batches, "batched_texts": b.items, "batch_workers": b.workers,
                "batches_alone": b.alone_batches,
                "audit_transactions": st().writer.transactions,
                "feedback": {**fb, "accuracy": fb["right"] / fb["total"] if fb["total"] else None}}

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    async def prometheus(key: Annotated[ApiKey, authorise("metrics")]) -> Any:
        """Prometheus metrics (admin keys)."""
        return PlainTextResponse(generate_latest(st().metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
