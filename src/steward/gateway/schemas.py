"""The OpenAI chat-completions request, as much of it as the gateway honours; the rest is refused by name.

Unknown fields are accepted (clients send many optional ones) except those whose silent omission would
change what the caller gets back — tools, structured output, several choices, log-probabilities: those are
refused with a 400 naming the field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from steward.service.schemas import Subject, Text

# Fields a caller may send that the gateway cannot honour; ignoring them would silently change the answer.
UNSUPPORTED = {
    "tools": "tool calling", "tool_choice": "tool calling", "functions": "function calling",
    "function_call": "function calling", "audio": "audio output", "prediction": "predicted outputs",
}


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text"]
    text: Text


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: Text | list[ContentPart]
    name: Text | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: Text = Field(..., min_length=1)
    messages: list[ChatMessage] = Field(..., min_length=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: Text | list[Text] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1)
    seed: int | None = None
    user: Subject = None
    logprobs: bool | None = None
    response_format: dict[str, Any] | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> list[str] | None:
        if v is None:
            return None
        stops = [v] if isinstance(v, str) else v
        if len(stops) > 4 or any(not s for s in stops):
            raise ValueError("stop: at most 4 non-empty sequences")
        return stops

    def unsupported(self) -> tuple[str, str] | None:
        """(field, what it asks for) for the first request field the gateway cannot honour."""
        extra = self.model_extra or {}
        for name, what in UNSUPPORTED.items():
            if extra.get(name) not in (None, [], {}):
                return name, what
        if self.n != 1:
            return "n", "several choices per request"
        if self.logprobs:
            return "logprobs", "log-probabilities"
        if self.response_format and self.response_format.get("type") not in (None, "text"):
            return "response_format", f"response_format {self.response_format.get('type')!r}"
        return None
