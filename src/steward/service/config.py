"""What both services are configured by alike: where they listen and what limits them
(:class:`ServiceSettings`), and the input guards both run on what a caller sends (:class:`InputGuardSettings`).
``steward.serve.config`` and ``steward.gateway.config`` extend these; the service core reads only them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from steward.config_base import StageConfig
from steward.errors import RegistryError
from steward.registry import Registry

INPUT_GUARD_ORDER = ["size", "unicode", "pii", "injection", "toxicity", "blocked_topics"]


def registered(registry: Registry[Any], names: list[str]) -> list[str]:
    """``names`` if each is in ``registry``; otherwise a ValueError (what a config validator raises) that
    names the unknown one and lists the valid ones. The registry is the one list of names."""
    for name in names:
        try:
            registry.get(name)
        except RegistryError as exc:
            raise ValueError(exc.args[0]) from None
    return names


def _input_guards(names: list[str]) -> list[str]:
    # Imported when a config is validated, not when this module loads: the guards import this module.
    from steward.service.guards import INPUT_GUARDS

    return registered(INPUT_GUARDS, names)


def _injection_model(value: Any) -> Any:
    if value is None:
        raise ValueError("null is no longer accepted; use 'patterns' for patterns only, or 'builtin' (the default)")
    return value


InjectionModel = Annotated[Literal["builtin", "patterns"] | Path, BeforeValidator(_injection_model)]
InputGuardNames = Annotated[list[str], AfterValidator(_input_guards)]


class TransparencySettings(StageConfig):
    """The audit log as a signed transparency log (docs/serve.md, "Receipts and witnesses")."""

    enabled: bool = True
    # Ed25519 private key (PEM) outside the run folder. None: $STEWARD_SIGNING_KEY, else
    # $STEWARD_HOME/signing-key.pem (default home ~/.config/steward), created on first start, mode 0600.
    signing_key: Path | None = None
    checkpoint_interval_s: float = Field(1.0, gt=0.0)  # sign the head this often (if it grew), and at shutdown
    # Where signed checkpoints are kept as they are signed (never inside the run folder). None:
    # $STEWARD_HOME/witness. Give auditors a folder (or an endpoint below) that the operator cannot rewrite.
    witness_dir: Path | None = None
    witness_urls: list[str] = Field(default_factory=list)  # also POST each checkpoint (JSON) to these
    # The log's name in every checkpoint. None: steward/audit/<hash of the run folder and database URL>.
    origin: str | None = None
    # The key the run's ledger must be signed by: the served model, its manifest, the compress stage's choice
    # and the scorecard are trusted only as signed ledger events recorded them (text from `steward audit
    # public-key`, or a file holding it). None: this machine's signing key, the one its stages signed with.
    ledger_public_key: str | None = None
    # A run ledger with no signed checkpoints (written before Steward signed ledgers, or stripped of them):
    # refuse to serve it, or serve it on the hash chain alone with a warning at start-up.
    unsigned_ledger: Literal["refuse", "allow"] = "refuse"


class AuditEncryptionSettings(StageConfig):
    """Each audit record's text sealed under its own data key, so one record can be erased and every receipt
    still verifies (docs/audit.md, "Erasure")."""

    enabled: bool = True
    # The key-encryption key (32 random bytes, base64) outside the run folder and the database. None:
    # $STEWARD_AUDIT_DATA_KEY (the text or a path), else $STEWARD_HOME/audit-data.key, made on first start
    # (0600). Replicas share one, like the signing key; without it no record's text can be read.
    key: Path | None = None


class ServiceSettings(StageConfig):
    """What both services (``serve``, ``gateway``) are configured by alike: where they listen, the audit
    database, request limits, keys' rate limits and failed-authentication limits. Each service's config
    extends it (and sets its own defaults where the two differ); the service core reads only these."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # null: SQLite in WAL mode at RUN_DIR/serve/audit.db (the gateway shares it); several replicas:
    # postgresql+psycopg://user@host/db
    database_url: str | None = None
    max_body_bytes: int = Field(65_536, ge=1024)
    request_timeout_s: float = Field(10.0, gt=0.0)  # from the request's first byte to the response's first
    body_timeout_s: float = Field(10.0, gt=0.0)  # the whole body must arrive within this (408 otherwise)
    # The audit log fails verification at start-up: refuse to start, or start read-only (no decisions; health,
    # models and metrics answer; /readyz says why) with a critical log line and steward_audit_chain_ok 0.
    audit_broken: Literal["refuse", "read_only"] = "refuse"
    docs: bool = False  # /docs (Swagger UI, served from local files); the schema is always at /openapi.json
    rate_limit_per_minute: int = Field(600, ge=1)  # requests per API key, token bucket
    rate_limit_burst: int = Field(60, ge=1)
    # Failed authentications (missing, unknown or revoked key) per client address; over it, the address gets 429.
    auth_failures_per_minute: int = Field(10, ge=1)
    auth_failures_burst: int = Field(20, ge=1)
    transparency: TransparencySettings = Field(default_factory=TransparencySettings)
    audit_encryption: AuditEncryptionSettings = Field(default_factory=AuditEncryptionSettings)


class InputGuardSettings(StageConfig):
    """The input guards both services run, in the listed order, on what a caller sends; a client cannot
    switch one off. Each service's guard settings extend these with its own output guards."""

    input: InputGuardNames = Field(default_factory=lambda: list(INPUT_GUARD_ORDER))
    pii_action: Literal["redact", "pseudonymise"] = "redact"  # what the model sees instead of the caller's PII
    pii_ner: bool = False  # names via spaCy NER too (slower); off: the fast pattern recognisers only
    injection_threshold: float = Field(0.5, gt=0.0, le=1.0)  # block at or above this risk
    # builtin: Steward's own classifier (built once by its stages from the shipped set, cached under
    # $STEWARD_CACHE); patterns: the patterns alone (weak: they miss most polite injections); or a Steward run
    # folder whose classifier has the label "injection".
    injection_model: InjectionModel = "builtin"
    toxicity_threshold: float = Field(0.8, gt=0.0, le=1.0)
    blocked_topics: list[str] = Field(default_factory=list)  # words or phrases; a match blocks the request
