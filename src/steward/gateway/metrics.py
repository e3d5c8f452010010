"""The gateway's Prometheus metrics: the service core's set plus tokens and generation speed."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

from steward.service.metrics import CoreMetrics, core_metrics


@dataclass(kw_only=True)
class Metrics(CoreMetrics):
    tokens: Counter
    key_tokens: Counter
    ttft: Histogram
    tokens_per_second: Histogram


def create() -> Metrics:
    r = CollectorRegistry()
    return Metrics(
        **core_metrics(r, "steward_gateway", latency="request_seconds",
                       latency_help="Request time by route (a whole streamed answer)",
                       buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120), unit="Turns"),
        tokens=Counter("steward_gateway_tokens_total", "Tokens processed", ["kind"], registry=r),
        key_tokens=Counter("steward_gateway_key_tokens_total", "Prompt + completion tokens per API key id",
                           ["key_id"], registry=r),
        ttft=Histogram("steward_gateway_time_to_first_token_seconds", "From request to the model's first token",
                       registry=r, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)),
        tokens_per_second=Histogram("steward_gateway_tokens_per_second", "Completion tokens per second of a turn",
                                    registry=r, buckets=(1, 2, 5, 10, 20, 50, 100, 200)),
    )
