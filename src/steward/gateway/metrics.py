"""The gateway's Prometheus metrics, one registry per app."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
    audit_failures: Counter
    auth_failures: Counter
    audit_chain_ok: Gauge


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
        audit_failures=Counter("steward_gateway_audit_write_failures_total", "Turns whose audit records could not "
                               "be committed (the rest of their group commit was retried alone)", registry=r),
        auth_failures=Counter("steward_gateway_auth_failures_total", "Requests refused for a missing, unknown or "
                              "revoked API key, or while their client address was over the failure limit",
                              ["reason"], registry=r),
        audit_chain_ok=Gauge("steward_gateway_audit_chain_ok", "1 when the audit log verified at start-up; 0: read-only, "
                             "no decisions are taken", registry=r),
    )
