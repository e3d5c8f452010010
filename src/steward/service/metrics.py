"""The Prometheus metrics both services keep (requests, latency, guards, keys, the audit log), one registry
per app so tests and several apps in one process do not collide. Each service adds its own to the set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(kw_only=True)
class CoreMetrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    guard_hits: Counter
    audit_failures: Counter
    auth_failures: Counter
    audit_chain_ok: Gauge


def core_metrics(r: CollectorRegistry, prefix: str, *, latency: str, latency_help: str,
                 buckets: tuple[float, ...], unit: str) -> dict[str, Any]:
    """The shared metrics as keyword arguments of a service's metrics record. ``prefix`` names them
    (``steward`` or ``steward_gateway``), ``unit`` is what one audited call is ("Requests", "Turns")."""
    return {
        "registry": r,
        "requests": Counter(f"{prefix}_requests_total", "Requests by route and status", ["route", "status"],
                            registry=r),
        "latency": Histogram(f"{prefix}_{latency}", latency_help, ["route"], registry=r, buckets=buckets),
        "guard_hits": Counter(f"{prefix}_guard_hits_total", "Guard findings and blocks", ["guard", "action"],
                              registry=r),
        "audit_failures": Counter(f"{prefix}_audit_write_failures_total", f"{unit} whose audit records could not be "
                                  "committed (each failed alone; the rest of its group commit was retried and "
                                  "stored)", registry=r),
        "auth_failures": Counter(f"{prefix}_auth_failures_total", "Requests refused for a missing, unknown or "
                                 "revoked API key, or refused while their client address was over the failure "
                                 "limit", ["reason"], registry=r),
        "audit_chain_ok": Gauge(f"{prefix}_audit_chain_ok", "1 when the audit log verified at start-up; 0: "
                                "read-only, no decisions are taken", registry=r),
    }
