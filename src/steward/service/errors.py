"""One error type for a refused request, rendered in either service's shape.

Both services refuse requests for the same reasons (a key, a limit, a guard, a field) and differ only in
the body: the classifier service answers ``{"error": {"code", "message", …facts}}``, the chat gateway the
OpenAI error object its clients parse (``message``, ``type``, ``param``, ``code``, Steward's facts under
``steward``). A route raises :class:`ServiceError`; the app's handler picks the shape.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from steward.errors import StewardError

# The OpenAI error ``type`` of an HTTP status (the openai client maps statuses to exception classes itself).
OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "invalid_request_error", 429: "rate_limit_error"}


class ServiceError(StewardError):
    """A refused request: HTTP status, reason ``code``, message, optionally the offending field (``param``),
    seconds to wait (``retry_after``, sent as ``Retry-After``), extra headers and facts (``guard``,
    ``decision_id``, ``items``…; None values are left out)."""

    def __init__(self, status: int, code: str, message: str, param: str | None = None, *,
                 headers: dict[str, str] | None = None, retry_after: int | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param
        self.extra = {k: v for k, v in extra.items() if v is not None}
        self.headers = dict(headers or {})
        if retry_after is not None:
            self.headers["Retry-After"] = str(retry_after)

    def steward_body(self) -> dict[str, Any]:
        """The classifier service's error body."""
        return {"error": {"code": self.code, "message": self.message, **self.extra}}

    def openai_body(self) -> dict[str, Any]:
        """The chat gateway's error body: the OpenAI error object, Steward's facts under ``steward``."""
        err: dict[str, Any] = {"message": self.message, "type": OPENAI_TYPES.get(self.status, "api_error"),
                               "param": self.param, "code": self.code}
        if self.extra:
            err["steward"] = self.extra
        return {"error": err}


T = TypeVar("T")


class Live(Generic[T]):
    """An app's loaded state: None until its lifespan has started; ``get`` answers 503 before that."""

    def __init__(self) -> None:
        self.state: T | None = None

    def get(self) -> T:
        if self.state is None:
            raise ServiceError(503, "not_ready", "the model is still loading")
        return self.state
