"""Feedback: the true label for a decision, stored in the audit log for re-audit and retraining.

A predict key may label the decisions it asked for, a reviewer key any decision; one accepted label per
decision and key (a second answers 409; a reviewer may add theirs). Refused attempts are audited too. The
comment and the group attributes pass the same canonical form and PII engine as a text to classify before
they are stored.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from steward.serve.decide import new_id
from steward.serve.schemas import FEEDBACK_LIMITS, FeedbackRequest
from steward.serve.state import ServeState
from steward.service.errors import ServiceError
from steward.service.guards import GuardContext, run_chain
from steward.service.keys import ApiKey

COMMENT_CHARS, GROUP_CHARS = FEEDBACK_LIMITS


async def _refusal(st: ServeState, body: FeedbackRequest, key: ApiKey,
                   original: dict[str, Any]) -> ServiceError | None:
    """Why this key may not label this decision (not its own, or labelled already), or None."""
    if not key.reviews and original["key_id"] != key.key_id:
        return ServiceError(403, "not_your_decision", "this key may label only the decisions it asked for. "
                            "Fix: a reviewer key (steward keys create --role reviewer) labels any decision")
    labels = await asyncio.get_running_loop().run_in_executor(None, st.core.audit.feedback_on, body.decision_id)
    mine = [r for r in labels if r["key_id"] == key.key_id]
    if mine:
        return ServiceError(409, "already_labelled", f"this key already labelled decision {body.decision_id} "
                            f"(feedback {mine[0]['decision_id']}); one label per decision and key. Fix: another "
                            f"reviewer may add theirs", feedback_id=mine[0]["decision_id"])
    return None


def scrub(st: ServeState, body: FeedbackRequest) -> tuple[str | None, dict[str, str], list[dict[str, Any]]]:
    """The comment and group attributes as stored: canonical form and PII redaction, like a text to classify.
    Sizes are checked after normalising (NFKC can make one character eighteen)."""
    findings: list[dict[str, Any]] = []

    def clean(value: str, field: str, limit: int) -> str:
        ch = run_chain(st.stored_text_guards, value, GuardContext())
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


async def record_feedback(st: ServeState, body: FeedbackRequest, key: ApiKey) -> tuple[str, bool]:
    """Store the label (or audit its refusal and raise); return the feedback id and whether the model was right."""
    if body.label not in st.model.labels:
        raise ServiceError(422, "unknown_label", f"label {body.label!r} is not one of the model's labels "
                                                 f"{st.model.labels}")
    loop = asyncio.get_running_loop()
    async with st.feedback_lock:  # check-then-write, atomic within this replica
        original = await loop.run_in_executor(None, st.core.audit.get, body.decision_id)
        if original is None or original["kind"] != "predict":
            raise ServiceError(404, "unknown_decision", f"no prediction with decision_id {body.decision_id!r}")
        if original.get("erased"):
            raise ServiceError(410, "decision_erased", f"decision {body.decision_id} was erased (a data-protection "
                               "request): its text is gone, so it cannot be labelled")
        refusal = await _refusal(st, body, key, original)
        if refusal is not None:
            await st.core.writer.write([st.record(key.key_id, "feedback_refused", new_id(), raw=None, redacted=None,
                                                  findings=[], ref=body.decision_id,
                                                  output={"reason": refusal.code, "label": body.label})])
            raise refusal
        comment, groups, findings = scrub(st, body)
        predicted = json.loads(original["output"]).get("label")
        correct = predicted == body.label
        fid = new_id()
        await st.core.writer.write([st.record(
            key.key_id, "feedback", fid, raw=None, redacted=None, findings=findings, ref=body.decision_id,
            output={"label": body.label, "predicted": predicted, "correct": correct, "comment": comment,
                    "groups": groups, "basis": "reviewer" if key.reviews else "own_decision"})])
    _count(st, correct)
    return fid, correct


def _count(st: ServeState, correct: bool) -> None:
    fb = st.feedback
    fb["total"] += 1
    fb["right"] += int(correct)
    st.metrics.feedback.labels(str(correct).lower()).inc()
    st.metrics.feedback_accuracy.set(fb["right"] / fb["total"])
