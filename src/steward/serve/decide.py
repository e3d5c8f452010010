"""A decision, start to end: the input guards, the model through the batcher, the output guards, the audit
records (committed before the answer leaves). The routes call these; nothing here knows HTTP but the
:class:`ServiceError` it raises."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from steward.serve.schemas import Decision
from steward.serve.state import ServeState
from steward.service.errors import ServiceError
from steward.service.guards import ChainResult, GuardContext, run_chain
from steward.service.keys import ApiKey
from steward.service.schemas import receipt_of

INLINE_GUARD_CHARS = 2_000  # input guards run on the event loop for requests up to this many characters


def new_id() -> str:
    return uuid.uuid4().hex


async def guard_inputs(st: ServeState, texts: list[str], key: ApiKey, user: str | None = None,
                       ) -> list[tuple[str, list[dict[str, Any]]]]:
    """Run the input chain on every text; raise 422 (after auditing the refusal) if any is blocked."""
    ctx = GuardContext(key_id=key.key_id, labels=st.model.labels)

    def scan() -> list[ChainResult]:
        return [run_chain(st.inputs, t, ctx) for t in texts]

    # The chain takes ~0.15 ms for a sentence, less than a hop to a worker thread and back; long texts
    # (up to ~1 ms per 1,000 characters) go to a thread so they do not hold up other requests.
    if sum(len(t) for t in texts) <= INLINE_GUARD_CHARS:
        chains = scan()
    else:
        chains = await asyncio.get_running_loop().run_in_executor(None, scan)
    for ch in chains:
        ch.count_hits(st.metrics.guard_hits)
    blocked = [(i, ch.blocked) for i, ch in enumerate(chains) if ch.blocked is not None]
    if blocked:
        decision_id = new_id()
        await st.core.writer.write([
            st.record(key.key_id, "blocked", decision_id if len(texts) == 1 else f"{decision_id}-{i}", raw=texts[i],
                      redacted=None, findings=chains[i].findings(), output={"blocked": b.code}, user=user)
            for i, b in blocked])
        first = blocked[0][1]
        raise ServiceError(422, first.code, first.message, guard=first.guard, decision_id=decision_id,
                           items=[{"index": i, "guard": b.guard, "code": b.code} for i, b in blocked]
                           if len(texts) > 1 else None)
    return [(ch.text, ch.findings()) for ch in chains]


def _failed(st: ServeState, key: ApiKey, raw: str, text: str, findings: list[dict[str, Any]], exc: BaseException,
            latency: float, user: str | None) -> tuple[Decision, dict[str, Any]]:
    """This text alone failed to score (the others of its batch did): say so, and record it."""
    st.metrics.scoring_failures.inc()
    decision = Decision(decision_id=new_id(), label=None, probabilities={}, abstained=True,
                        model_version=st.model.version, findings=findings,
                        error={"code": "scoring_failed", "message": "the model could not score this text "
                               f"({type(exc).__name__}); route it to review"})
    return decision, st.record(key.key_id, "error", decision.decision_id, raw=raw, redacted=text, findings=findings,
                               output={"error": "scoring_failed"}, latency_ms=latency, user=user)


async def _decided(st: ServeState, key: ApiKey, raw: str, text: str, findings: list[dict[str, Any]], p: Any,
                   emb: Any, latency: float, records: list[dict[str, Any]], user: str | None) -> Decision:
    """One scored text through the output guards; a block is audited (with the batch so far) and raised."""
    served, m = st.model, st.metrics
    idx = int(p.argmax())
    label = served.labels[idx]
    octx = GuardContext(key_id=key.key_id, labels=served.labels, proba=[float(x) for x in p],
                        threshold=served.threshold)
    out = run_chain(st.outputs, label, octx)
    if out.blocked is not None:
        m.guard_hits.labels(out.blocked.guard, "block").inc()
        records.append(st.record(key.key_id, "blocked", new_id(), raw=raw, redacted=text,
                                 findings=findings + out.findings(), output={"blocked": out.blocked.code},
                                 latency_ms=latency, user=user))
        await st.core.writer.write(records)
        raise ServiceError(422, out.blocked.code, out.blocked.message, guard=out.blocked.guard,
                           decision_id=records[-1]["decision_id"])
    abstained = any(f.get("type") == "low_confidence" for r in out.results for f in r.findings)
    all_findings = findings + [f for f in out.findings() if f["findings"]]
    decision = Decision(decision_id=new_id(), label=out.text, probabilities={
        lbl: round(float(v), 6) for lbl, v in zip(served.labels, p, strict=True)}, abstained=abstained,
        model_version=served.version, findings=all_findings)
    records.append(st.record(key.key_id, "predict", decision.decision_id, raw=raw, redacted=text,
                             findings=all_findings, latency_ms=latency, user=user,
                             output={"label": decision.label, "probabilities": decision.probabilities,
                                     "abstained": abstained}))
    m.labels.labels(label).inc()
    if abstained:
        m.abstentions.inc()
    st.monitor.observe(idx, float(p[idx]), len(text.split()), emb)
    return decision


async def classify(st: ServeState, texts: list[str], key: ApiKey, user: str | None = None) -> list[Decision]:
    """Decide every text (about the subject ``user``, when given); all records are committed before this
    returns (failures too)."""
    t0 = time.perf_counter()
    guarded = await guard_inputs(st, texts, key, user)
    scored = await st.batcher.submit([t for t, _ in guarded])
    st.metrics.batch_size.observe(len(texts))
    latency = (time.perf_counter() - t0) * 1000
    decisions, records = [], []
    for (text, findings), raw, r in zip(guarded, texts, scored, strict=True):
        if isinstance(r, BaseException):
            decision, rec = _failed(st, key, raw, text, findings, r, latency, user)
            decisions.append(decision)
            records.append(rec)
            continue
        p, emb = r if isinstance(r, tuple) else (r, None)
        decisions.append(await _decided(st, key, raw, text, findings, p, emb, latency, records, user))
    stored = await st.core.writer.write(records)  # committed before the answer leaves (failures too)
    by_id = {row["decision_id"]: row for row in stored}
    for decision in decisions:
        if decision.decision_id in by_id:
            decision.receipt = receipt_of(by_id[decision.decision_id])
    if all(isinstance(r, BaseException) for r in scored):  # nothing was decided: an error, after its records
        raise ServiceError(500, "scoring_failed", f"the model could not score the text(s); nothing was decided "
                           f"({type(scored[0]).__name__})", decision_id=records[0]["decision_id"])
    return decisions


async def explain(st: ServeState, text_in: str, method: str, key: ApiKey, user: str | None = None) -> dict[str, Any]:
    """Token attributions for a text by the evaluate stage's explainers (occlusion or Integrated Gradients)."""
    from steward.evaluate.explain import integrated_gradients, occlusion

    served = st.model
    t0 = time.perf_counter()
    ((text, findings),) = await guard_inputs(st, [text_in], key, user)
    clf = served.clf
    if method == "integrated_gradients" and not getattr(clf, "differentiable", False):
        raise ServiceError(422, "method_unavailable", "integrated_gradients needs gradients, which the served model "
                           "(int8 or ONNX) does not have; use method: occlusion")

    def run() -> Any:
        target = int(clf.predict_proba([text])[0].argmax())
        return (integrated_gradients(clf, text, target, 32) if method == "integrated_gradients"
                else occlusion(clf, text, target))

    attr = await asyncio.get_running_loop().run_in_executor(None, run)
    decision_id = new_id()
    label = served.labels[attr.target]
    await st.core.writer.write([st.record(key.key_id, "explain", decision_id, raw=text_in, redacted=text,
                                          findings=findings, output={"label": label, "method": method},
                                          latency_ms=(time.perf_counter() - t0) * 1000, user=user)])
    return {"decision_id": decision_id, "label": label, "method": method, "tokens": attr.tokens,
            "scores": [round(s, 6) for s in attr.scores], "model_version": served.version, "findings": findings}
