"""What the classifier service's lifespan loads and every route reads: one typed record."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from steward.service.core import ServiceCore
from steward.service.guards import Guard


@dataclass(kw_only=True)
class ServeState:
    core: ServiceCore  # audit log and writer, keys and limits, the input-hash key, read-only or not
    model: Any  # steward.compress.release.ServedModel
    inputs: list[Guard]  # the input guard chain
    outputs: list[Guard]  # the output guard chain
    stored_text_guards: list[Guard]  # the PII step for stored free text (feedback)
    batcher: Any  # steward.serve.batcher.Batcher
    monitor: Any  # steward.serve.monitor.DriftMonitor
    checker: Any  # steward.serve.monitor.DriftChecker
    feedback: dict[str, int] = field(default_factory=lambda: {"right": 0, "total": 0})
    feedback_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def metrics(self) -> Any:
        """The service's metrics (steward.serve.metrics.Metrics): the core's record, which carries this service's own too."""
        return self.core.metrics

    def record(self, key_id: str, kind: str, decision_id: str, *, raw: str | None, redacted: str | None,
               findings: list[dict[str, Any]], output: dict[str, Any], latency_ms: float = 0.0,
               user: str | None = None, **extra: Any) -> dict[str, Any]:
        """One audit record of this model: the input as a keyed hash, the redacted text, what was decided, and
        the subject (``user``) it is about as a keyed hash."""
        return {"decision_id": decision_id, "kind": kind, "key_id": key_id, "model_version": self.model.version,
                "model_hash": self.model.hash, "input_hash": self.core.input_hash(raw) if raw is not None else None,
                "redacted_input": redacted, "findings": findings, "output": output, "latency_ms": latency_ms,
                "subject": self.core.subject(user), **extra}
