"""Request and response bodies of the service (the OpenAPI schema is generated from these)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from steward.service.schemas import Receipt, Subject, Text

FEEDBACK_LIMITS = (2_000, 200)  # characters of a feedback comment, of a group attribute's name or value


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictRequest(_Body):
    """One ``text`` or a batch of ``texts`` (not both)."""

    text: Text | None = Field(None, description="One text to classify.")
    texts: list[Text] | None = Field(None, description="Several texts, classified together.", min_length=1)
    user: Subject = None

    @model_validator(mode="after")
    def _one_of(self) -> PredictRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' (a string) or 'texts' (a non-empty list of strings)")
        return self

    def items(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


class Decision(BaseModel):
    decision_id: str
    label: str | None
    probabilities: dict[str, float]
    abstained: bool = Field(description="Confidence below the threshold: route to human review.")
    model_version: str
    findings: list[dict[str, Any]] = Field(default_factory=list, description="What the guards found and did.")
    error: dict[str, str] | None = Field(None, description="Set when this text alone could not be scored (the "
                                         "batch's other texts were): no label; route it to review.")
    receipt: Receipt | None = Field(None, description="Where this decision sits in the signed audit log.")


class PredictResponse(BaseModel):
    decisions: list[Decision]


class ExplainRequest(_Body):
    text: Text
    method: str = Field("occlusion", pattern="^(occlusion|integrated_gradients)$")
    user: Subject = None


class ExplainResponse(BaseModel):
    decision_id: str
    label: str
    method: str
    tokens: list[str]
    scores: list[float]
    model_version: str
    findings: list[dict[str, Any]] = Field(default_factory=list)


class FeedbackRequest(_Body):
    decision_id: Text = Field(min_length=1, max_length=64)
    label: Text = Field(min_length=1, max_length=200, description="The true label (or the correction).")
    comment: Text | None = Field(None, max_length=FEEDBACK_LIMITS[0])
    groups: dict[Annotated[Text, Field(max_length=FEEDBACK_LIMITS[1])],
                 Annotated[Text, Field(max_length=FEEDBACK_LIMITS[1])]] | None = Field(None, description="Sensitive attributes of the case, e.g. "
                                          "{\"gender\": \"female\"}, for re-auditing group fairness.",
                                          max_length=20)


class FeedbackResponse(BaseModel):
    feedback_id: str
    decision_id: str
    correct: bool | None


class ErrorBody(BaseModel):
    code: str
    message: str
    guard: str | None = None
    decision_id: str | None = None
    items: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
