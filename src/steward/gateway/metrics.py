"""The gateway's Prometheus metrics, one registry per app."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    guard_hits: Counter
    tokens: Counter
    key_tokens: Counter
    ttft: Histogram
    tokens_per_second: Histogram


def create() -> Metrics:
    r = CollectorRegistry()
    return Metrics(
        registry=r,
        requests=Counter("steward_gateway_requests_total", "Requests by route and status", ["route", "status"],
                         registry=r),
        latency=Histogram("steward_gateway_request_seconds", "Request time by route (a whole streamed answer)",
                          ["route"], registry=r, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)),
        guard_hits=Counter("steward_gateway_guard_hits_total", "Guard findings and blocks by guard",
                           ["guard", "action"], registry=r),
        tokens=Counter("steward_gateway_tokens_total", "Tokens processed", ["kind"], registry=r),
        key_tokens=Counter("steward_gateway_key_tokens_total", "Prompt + completion tokens per API key id",
                           ["key_id"], registry=r),
        ttft=Histogram("steward_gateway_time_to_first_token_seconds", "From request to the model's first token",
                       registry=r, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)),
        tokens_per_second=Histogram("steward_gateway_tokens_per_second", "Completion tokens per second of a turn",
                                    registry=r, buckets=(1, 2, 5, 10, 20, 50, 100, 200)),
    )
