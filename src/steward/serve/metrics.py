"""The classifier service's Prometheus metrics: the service core's set plus labels, feedback, drift, batching."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from steward.service.metrics import CoreMetrics, core_metrics


@dataclass(kw_only=True)
class Metrics(CoreMetrics):
    abstentions: Counter
    labels: Counter
    feedback: Counter
    feedback_accuracy: Gauge
    drift: Gauge
    drift_embedding_p: Gauge
    drift_alerts: Gauge
    batch_size: Histogram
    scoring_failures: Counter


def create() -> Metrics:
    r = CollectorRegistry()
    return Metrics(
        **core_metrics(r, "steward", latency="request_latency_seconds", latency_help="Request latency by route",
                       buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0), unit="Requests"),
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
