"""The classifier service's routes: each checks the key, calls the library, and shapes the answer."""

# No `from __future__ import annotations`: FastAPI resolves the request models from the signatures.
import asyncio
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import PlainTextResponse

from steward.serve import decide
from steward.serve.config import ServeRun
from steward.serve.facts import evidence_section, model_entry
from steward.serve.feedback import record_feedback
from steward.serve.metrics import publish_drift
from steward.serve.schemas import (
    ExplainRequest,
    ExplainResponse,
    FeedbackRequest,
    FeedbackResponse,
    PredictRequest,
    PredictResponse,
)
from steward.serve.state import ServeState
from steward.service.errors import Live, ServiceError
from steward.service.guards.detector import card_section as guards_card
from steward.service.keys import ApiKey


def register_routes(app: FastAPI, live: Live[ServeState], cfg: ServeRun) -> None:
    st = live.get  # the loaded state; 503 before the lifespan has set it
    run_dir = Path(cfg.run_dir)
    max_batch = cfg.serve.max_batch_texts

    def authorise(action: str) -> Any:
        async def dep(request: Request) -> ApiKey:
            return await st().core.authorise(request, action)

        return Depends(dep)

    @app.post("/v1/predict", response_model=PredictResponse, tags=["v1"])
    async def predict(body: PredictRequest, key: Annotated[ApiKey, authorise("predict")]) -> Any:
        """Classify one text or a batch. Low confidence sets ``abstained: true`` (route to human review)."""
        texts = body.items()
        if len(texts) > max_batch:
            raise ServiceError(422, "batch_too_large", f"{len(texts)} texts; the limit is {max_batch}")
        return PredictResponse(decisions=await decide.classify(st(), texts, key, body.user))

    @app.post("/v1/explain", response_model=ExplainResponse, tags=["v1"])
    async def explain(body: ExplainRequest, key: Annotated[ApiKey, authorise("explain")]) -> Any:
        """Token attributions for a text, by the evaluate stage's explainers (occlusion or Integrated Gradients)."""
        return ExplainResponse(**await decide.explain(st(), body.text, body.method, key, body.user))

    @app.post("/v1/feedback", response_model=FeedbackResponse, tags=["v1"])
    async def feedback(body: FeedbackRequest, key: Annotated[ApiKey, authorise("feedback")]) -> Any:
        """The true label for a decision, stored in the audit log for re-audit and retraining.

        A predict key may label the decisions it asked for, a reviewer key any decision; one accepted label
        per decision and key (a second answers 409; a reviewer may add theirs). Refused attempts are audited
        too. The comment and the group attributes pass the same canonical form and PII engine as a text to
        classify before they are stored."""
        fid, correct = await record_feedback(st(), body, key)
        return FeedbackResponse(feedback_id=fid, decision_id=body.decision_id, correct=correct)

    def guard_facts() -> list[dict[str, Any]]:
        """Guards that rest on a model of their own (the injection detector): which one, hashes, scorecard."""
        return [g.describe() for g in st().inputs if hasattr(g, "describe")]

    @app.get("/v1/models", tags=["v1"])
    async def models(key: Annotated[ApiKey, authorise("models")]) -> dict[str, Any]:
        """The served model: version, hashes, abstention threshold and its scorecard summary."""
        t = st().core.transparency
        return {"data": [model_entry(st().model, run_dir, guard_facts())],
                "transparency": t.describe() if t is not None else None}

    @app.get("/v1/models/card", tags=["v1"], response_class=PlainTextResponse)
    async def model_card(key: Annotated[ApiKey, authorise("models")]) -> Any:
        """The model card (Markdown) written by the evaluate stage."""
        card = run_dir / "evaluate" / "MODEL_CARD.md"
        if not card.is_file():
            raise ServiceError(404, "no_model_card", "no model card: run `steward evaluate` for this run")
        t = st().core.transparency
        return PlainTextResponse(card.read_text(encoding="utf-8") + guards_card(guard_facts())
                                 + evidence_section(t.describe() if t is not None else None, st().model),
                                 media_type="text/markdown")

    @app.get("/v1/monitor", tags=["v1"])
    async def monitor(key: Annotated[ApiKey, authorise("monitor")]) -> dict[str, Any]:
        """Drift of live traffic against the evaluation set, audit-log size, batching figures."""
        state = st()
        status = await asyncio.get_running_loop().run_in_executor(None, state.monitor.status)
        publish_drift(state.metrics, status)
        b, fb = state.batcher, state.feedback
        return {"drift": status, "batches": b.batches, "batched_texts": b.items, "batch_workers": b.workers,
                "batches_alone": b.alone_batches, "audit_transactions": state.core.writer.transactions,
                "feedback": {**fb, "accuracy": fb["right"] / fb["total"] if fb["total"] else None}}
