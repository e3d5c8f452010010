"""What the gateway's lifespan loads and every route reads, and what one chat turn accumulates."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from steward.service.core import ServiceCore
from steward.service.guards import Guard


@dataclass(kw_only=True)
class GatewayState:
    core: ServiceCore  # audit log and writer, keys and limits, the input-hash key, read-only or not
    backend: Any  # a steward.gateway.backends.Backend
    settings: dict[str, Any]  # per key role: its guard settings (the role's policy applied)
    chains: dict[str, tuple[list[Guard], list[Guard]]]  # per key role: (input guards, output guards)
    system: str  # the system prompt the model gets (canary included)
    canary: str | None
    budget: Any  # steward.service.ratelimit.RateLimiter of tokens per key
    model_name: str  # the id clients see

    @property
    def metrics(self) -> Any:
        """The gateway's metrics (steward.gateway.metrics.Metrics): the core's record, which carries its own too."""
        return self.core.metrics


@dataclass
class Turn:
    """What one chat turn accumulates on its way through the guards and the model."""

    decision_id: str
    key_id: str
    role: str  # the key's role: which guard chains and policy apply
    started: float = field(default_factory=time.perf_counter)
    findings: list[dict[str, Any]] = field(default_factory=list)
    answer: str = ""  # what passed the output guards, pseudonyms not restored (this is what is audited)
    finish_reason: str = "stop"
    refusal: str | None = None
    blocked: dict[str, Any] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_s: float | None = None
    raw_json: str = ""  # the caller's messages as sent (only their keyed hash is stored)
    redacted: list[dict[str, str]] | None = None  # the messages as the guards left them (stored)
    cost: int = 0  # tokens taken from the key's budget for this turn
    settling: Any = None  # the task that ends a generation cut short and settles its tokens (asyncio.Task)
    receipt: dict[str, Any] | None = None  # where its record sits in the signed audit log, once committed
    user: str | None = None  # the request's subject id (only its keyed hash is stored)

    def usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}
