"""Signing the audit log's tree head on a schedule and at shutdown, and handing each checkpoint to witnesses.

Batched, never on a request's path: a request's record is a Merkle leaf the moment it commits; this task
signs whatever has committed every ``checkpoint_interval_s`` (when the log grew), and once more at shutdown.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steward.errors import ConfigError, LedgerIntegrityError
from steward.ledger import witness
from steward.ledger.checkpoint import (
    Checkpoint,
    Signer,
    default_signer,
    key_id,
    load_signer,
    public_key_text,
    steward_home,
)
from steward.service.audit import AuditLog, safe_url
from steward.service.config import TransparencySettings
from steward.service.worker import BackgroundTask


def ledger_trust(cfg: TransparencySettings, logger: logging.Logger | None = None) -> dict[str, Any]:
    """How a service checks the run's ledger before trusting the model it serves (``steward.ledger.trust``):
    the key it must be signed by, and whether an unsigned ledger may be served (then with a warning)."""
    from steward.ledger.checkpoint import read_public_key

    allow = cfg.unsigned_ledger == "allow"
    if allow and logger is not None:
        logger.warning("transparency.unsigned_ledger: allow — a run ledger without signed checkpoints is served on "
                       "its hash chain alone, which whoever can write the run folder can recompute")
    key = read_public_key(cfg.ledger_public_key) if cfg.ledger_public_key else None
    return {"public_key": key, "allow_unsigned": allow}


@dataclass(frozen=True)
class Transparency:
    """A service's signing set-up: who signs, under which log name, and where checkpoints go."""

    signer: Signer
    origin: str
    witness_dir: Path
    witness_urls: tuple[str, ...] = ()

    @property
    def public_key(self) -> str:
        return public_key_text(self.signer.public_key)

    def describe(self) -> dict[str, Any]:
        """What ``/v1/models`` and the model card publish."""
        return {"origin": self.origin, "public_key": self.public_key, "key_id": key_id(self.signer.public_key),
                "algorithm": "Ed25519", "checkpoint_format": "C2SP tlog-checkpoint body, RFC 9162 tree"}


def resolve(cfg: TransparencySettings, run_dir: Path, database_url: str, log_id: str) -> Transparency | None:
    """The signing set-up. The log's name: ``transparency.origin``, else where it lives (run folder and
    database) and its own id — a database started over is another log, which the witness still links."""
    if not cfg.enabled:
        return None
    signer = load_signer(cfg.signing_key, run_dir=run_dir) if cfg.signing_key else default_signer(run_dir)
    where = f"{Path(run_dir).resolve()}|{safe_url(database_url)}"
    origin = cfg.origin or f"steward/audit/{hashlib.sha256(where.encode()).hexdigest()[:16]}/{log_id}"
    folder = (cfg.witness_dir or steward_home() / "witness").expanduser().resolve()
    if folder.is_relative_to(Path(run_dir).resolve()):
        raise ConfigError(f"transparency.witness_dir: {folder} is inside the run folder {run_dir}; a witness the "
                          "operator can rewrite with the log proves nothing. Fix: a folder outside it")
    return Transparency(signer, origin, folder, tuple(cfg.witness_urls))


def check_witness(audit: AuditLog, t: Transparency, public_key: bytes | None = None, *,
                  replaced_is_error: bool = False) -> str | None:
    """Why this log is no extension of what the witness folder holds (rewritten, truncated, forked — and,
    with ``replaced_is_error``, replaced: the witness saw another log at the same place), or None. At
    start-up a service must not extend such a log; a log started over there is only logged."""
    key = public_key or t.signer.public_key
    try:
        history = audit.key_history(key)
    except LedgerIntegrityError as exc:
        return f"the log's key rotations do not lead to this key: {exc}"
    if public_key is None and history(2**62) != key:
        return (f"the log's key was rotated to {history.describe()[-1]['key_id']}: this service signs with "
                f"{key_id(key)}, which may no longer sign it. Fix: set transparency.signing_key to the new key")
    try:
        held = witness.load(t.witness_dir, t.origin) if t.witness_dir.is_dir() else []
        witness.check_forks(held, history)
        others = witness.other_logs(t.witness_dir, t.origin)
    except (LedgerIntegrityError, OSError, UnicodeDecodeError) as exc:
        return f"the witness in {t.witness_dir} cannot be read: {exc}"
    if others:
        name, size = max(others.items(), key=lambda kv: kv[1])
        what = (f"the witness in {t.witness_dir} holds another log for this service ({name}, {size} records): "
                "this database replaced it, or it was deleted and started over")
        if replaced_is_error:
            return what
        logging.getLogger("steward.audit").warning("%s", what)
    if not held:
        return (f"the witness {t.witness_dir} holds no checkpoint of this log ({t.origin}): it cannot vouch for "
                "it (wrong folder, or the log was never shown to it)") if replaced_is_error else None
    report = audit.verify_against(held, key)
    return None if report.ok else f"against the witness in {t.witness_dir}: {report.error}"


WITNESS_TIMEOUT_S = 5.0


class CheckpointTask(BackgroundTask):
    """Signs the head every interval when it grew, and at shutdown; hands each checkpoint to the witnesses."""

    def __init__(self, audit: AuditLog, t: Transparency, interval_s: float, logger: logging.Logger) -> None:
        self.audit, self.t, self.interval_s, self.logger = audit, t, interval_s, logger
        self.signed = 0

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.sign_now()

    async def sign_now(self) -> Checkpoint | None:
        loop = asyncio.get_running_loop()
        try:
            cp = await loop.run_in_executor(None, self.audit.sign_checkpoint, self.t.signer, self.t.origin)
            if cp is not None:
                self.signed += 1
                await loop.run_in_executor(None, self.publish, cp)
        except Exception as exc:  # noqa: BLE001 — the next round tries again; requests are not affected
            self.logger.error("signing the audit checkpoint failed (%s); retrying next interval", type(exc).__name__)
            return None
        return cp

    def publish(self, cp: Checkpoint) -> None:
        try:
            witness.record(cp, self.t.witness_dir)
        except LedgerIntegrityError as exc:
            self.logger.critical("WITNESS REFUSED the checkpoint of size %d: %s", cp.size, exc)
        except (OSError, ValueError) as exc:  # unwritable folder, a damaged file in it
            self.logger.error("the witness folder %s could not take the checkpoint (%s)", self.t.witness_dir,
                              type(exc).__name__)
        if self.t.witness_urls:
            self._post(cp)

    def _post(self, cp: Checkpoint) -> None:
        """POST the checkpoint to every witness URL at once: a slow or dead witness costs at most
        ``WITNESS_TIMEOUT_S`` in all (at shutdown too), however many there are."""
        from concurrent.futures import ThreadPoolExecutor

        import httpx

        def one(client: httpx.Client, url: str) -> None:
            try:
                client.post(url, json=cp.to_dict()).raise_for_status()
            except Exception as exc:  # noqa: BLE001 — an unreachable witness must not stop the service
                self.logger.error("witness %s did not take the checkpoint of size %d (%s)", url, cp.size,
                                  type(exc).__name__)

        urls = self.t.witness_urls
        with httpx.Client(timeout=WITNESS_TIMEOUT_S) as client, ThreadPoolExecutor(min(len(urls), 8)) as pool:
            list(pool.map(lambda u: one(client, u), urls))

    async def stop(self) -> None:
        await super().stop()
        await self.sign_now()  # the last records get a checkpoint before the service goes
