"""What both services hold while they run: the audit log and its writer, keys and limits, metrics, the
input-hash key, and whether the log verified. Opened by a service's lifespan, read by its routes."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steward.service.access import Access, client_address
from steward.service.audit import AuditLog, check_at_start, database_url, keyed_hash, safe_url, subject_hash
from steward.service.config import ServiceSettings
from steward.service.errors import ServiceError
from steward.service.keys import ApiKey, KeyStore
from steward.service.metrics import CoreMetrics
from steward.service.ratelimit import RateLimiter
from steward.service.runfiles import service_secret
from steward.service.signing import CheckpointTask, Transparency, check_witness, resolve
from steward.service.writer import AuditWriter, audit_failed

DECIDING = frozenset({"predict", "explain", "feedback", "chat"})  # actions refused while read-only


@dataclass(frozen=True)
class Identity:
    """How a service names itself and what it decides, in log lines and refusals."""

    name: str  # "service", "gateway"
    decisions: str  # "no decisions are taken", "no turns are answered"
    decisions_log: str  # the same, in the start-up log line: "no decisions will be taken"
    missing_key_hint: str  # how a caller sends a key (the 401 message)


@dataclass(kw_only=True)
class ServiceCore:
    identity: Identity
    audit: AuditLog
    writer: AuditWriter
    access: Access
    metrics: Any  # a CoreMetrics record (the service's own, which extends it)
    secret: bytes  # the input-hash key
    read_only: str | None = None  # why no decisions are taken (a broken audit chain), or None
    transparency: Transparency | None = None  # who signs the log's checkpoints, and where they go
    checkpoints: CheckpointTask | None = None

    async def authorise(self, request: Any, action: str) -> ApiKey:
        """The caller's key, allowed to do ``action`` and within its rate; 503 for deciding while read-only."""
        key = await self.access.check(request.headers, client_address(request), action)
        if self.read_only and action in DECIDING:
            raise ServiceError(503, "audit_chain_broken", f"the {self.identity.name} is read-only: its audit log "
                               f"failed verification at start-up ({self.read_only}); {self.identity.decisions}")
        return key

    def input_hash(self, text: str) -> str:
        return keyed_hash(self.secret, text)

    def subject(self, user: str | None) -> str | None:
        """How the log names the subject a request is about (its ``user`` field): an HMAC, never the id."""
        return subject_hash(self.secret, user) if user else None

    async def ready(self) -> None:
        """Raise the reason the service cannot take requests now (read-only, the database silent)."""
        if self.read_only:
            raise ServiceError(503, "audit_chain_broken", f"read-only: the audit log failed verification at "
                                                          f"start-up ({self.read_only})")
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.audit.count)
        except Exception as exc:
            raise ServiceError(503, "database_unavailable", f"the audit database does not answer: "
                                                            f"{type(exc).__name__}") from exc

    async def close(self) -> None:
        await self.writer.stop()
        if self.checkpoints is not None:
            await self.checkpoints.stop()  # signs the last records first
        self.audit.close()


def record_cipher(cfg: ServiceSettings, run_dir: Path, *, create: bool = True) -> Any:
    """The audit log's ``RecordCipher`` (None when ``audit_encryption.enabled`` is false). A reader passes
    ``create=False``: it uses the service's key, never makes one (None when there is none)."""
    from steward.service.erasure import load_cipher

    ae = cfg.audit_encryption
    return load_cipher(ae.key, run_dir=run_dir, create=create) if ae.enabled else None


def open_core(cfg: ServiceSettings, run_dir: Path, metrics: CoreMetrics, identity: Identity, logger: logging.Logger, *,
              key_cache_seconds: float = 0.0) -> ServiceCore:
    """Open the audit log (checked per ``cfg.audit_broken``), start its writer, and set up keys and limits
    from either service's config (the fields they share). Call on the event loop."""
    url = database_url(cfg.database_url, run_dir)
    audit = AuditLog(url, record_cipher(cfg, run_dir))
    transparency = resolve(cfg.transparency, run_dir, url, audit.log_id)
    # a broken chain, or a log its witness says was rewritten: no start, or read-only (by config)
    problem = check_at_start(audit, cfg.audit_broken).error or (
        check_witness(audit, transparency) if transparency is not None else None)
    if problem and cfg.audit_broken == "refuse":
        from steward.errors import AuditChainError

        audit.close()
        raise AuditChainError(f"{safe_url(url)}: the audit log fails verification ({problem}); a service "
                              "appending to it could not prove its decisions. Fix: investigate with `steward audit "
                              "verify`; to answer health and model queries meanwhile, set audit_broken: read_only")
    if problem:
        logger.critical("READ-ONLY: the audit log fails verification (%s); %s", problem, identity.decisions_log)
    metrics.audit_chain_ok.set(0 if problem else 1)
    writer = AuditWriter(audit.append_many, on_failure=audit_failed(metrics, logger))
    writer.start()
    access = Access(KeyStore(audit.engine, key_cache_seconds),
                    RateLimiter(cfg.rate_limit_per_minute, cfg.rate_limit_burst),
                    RateLimiter(cfg.auth_failures_per_minute, cfg.auth_failures_burst),
                    missing_hint=identity.missing_key_hint,
                    refused=lambda reason: metrics.auth_failures.labels(reason).inc())
    checkpoints = None
    if transparency is not None and not problem:
        checkpoints = CheckpointTask(audit, transparency, cfg.transparency.checkpoint_interval_s, logger)
        checkpoints.start()
    return ServiceCore(identity=identity, audit=audit, writer=writer, access=access, metrics=metrics,
                       secret=service_secret(run_dir), read_only=problem, transparency=transparency,
                       checkpoints=checkpoints)
