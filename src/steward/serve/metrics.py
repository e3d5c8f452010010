"""Prometheus metrics, one registry per app (so tests and several apps in one process do not collide)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    guard_hits: Counter
    abstentions: Counter
    labels: Counter
    feedback: Counter
    feedback_accuracy: Gauge
    drift: Gauge
    drift_embedding_p: Gauge
    drift_alerts: Gauge
    batch_size: Histogram
    scoring_failures: Counter
    audit_failures: Counter
    auth_failures: Counter
    audit_chain_ok: Gauge


def create() -> Metrics:
    r = CollectorRegistry()
    return Metrics(
        registry=r,
        requests=Counter("steward_requests_total", "Requests by route and status", ["route", "status"], registry=r),
        latency=Histogram("steward_request_latency_seconds", "Request latency by route", ["route"], registry=r,
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)),
        guard_hits=Counter("steward_guard_hits_total", "Guard findings and blocks", ["guard", "action"], registry=r),
        abstentions=Counter("steward_abstentions_total", "Decisions routed to human review", registry=r),
        labels=Counter("steward_predictions_total", "Predicted labels", ["label"], registry=r),
        feedback=Counter("steward_feedback_total", "Feedback received, by whether the model was right",
                         ["correct"], registry=r),
        feedback_accuracy=Gauge("steward_feedback_accuracy", "Share of feedback that confirmed the model",
                                registry=r),
        drift=Gauge("steward_drift_psi", "Population stability index of live traffic vs evaluation", ["signal"],
                    registry=r),
        drift_embedding_p=Gauge("steward_drift_embedding_p_value",
                                "Permutation p-value of the MMD test, live embeddings vs evaluation", registry=r),
        drift_alerts=Gauge("steward_drift_alerts", "Drift signals currently over their threshold", registry=r),
        batch_size=Histogram("steward_batch_size", "Texts per model forward pass", registry=r,
                             buckets=(1, 2, 4, 8, 16, 32, 64, 128)),
        scoring_failures=Counter("steward_scoring_failures_total", "Texts the model failed to score (each failed "
                                 "alone; the rest of its batch was scored)", registry=r),
        audit_failures=Counter("steward_audit_write_failures_total", "Requests whose audit records could not be "
                               "committed (the request failed; the rest of its group commit was retried alone)",
                               registry=r),
        auth_failures=Counter("steward_auth_failures_total", "Requests refused for a missing, unknown or revoked "
                              "API key, or refused while their client address was over the failure limit",
                              ["reason"], registry=r),
        audit_chain_ok=Gauge("steward_audit_chain_ok", "1 when the audit log verified at start-up; 0: read-only, "
                             "no decisions are taken", registry=r),
    )


def publish_drift(m: Metrics, status: dict[str, Any]) -> None:
    """Copy a drift status (``DriftMonitor.status()``) into the gauges."""
    for k in ("label_psi", "confidence_psi", "input_length_psi"):
        if k in status:
            m.drift.labels(k.removesuffix("_psi")).set(status[k])
    emb = status.get("embedding") or {}
    if emb.get("p_value") is not None:
        m.drift_embedding_p.set(emb["p_value"])
    if status.get("ready"):
        m.drift_alerts.set(len(status.get("alerts", [])))
