"""API keys with roles. Only a SHA-256 of each key's secret is stored; the key is shown once, at creation.

A key reads ``stw_<key_id>_<secret>``: the id finds the row, the secret is checked with a constant-time
comparison of hashes. The secret is 256 random bits, so a fast hash is enough (a slow password hash
protects low-entropy secrets, which these are not). Unknown ids are compared against a dummy hash so that
timing does not tell which ids exist.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from steward.errors import ConfigError

ROLES = ("predict", "reviewer", "chat", "admin")
# What each role may do. A predict key may label (feedback) only the decisions it asked for; a reviewer may
# label any decision (human reviewers, a labelling tool); admin may do everything, including reading metrics
# and the drift monitor. "chat" is the chat gateway's role (`steward gateway`), which shares this key table.
PERMISSIONS: dict[str, frozenset[str]] = {
    "predict": frozenset({"predict", "explain", "models", "feedback"}),
    "reviewer": frozenset({"feedback", "models"}),
    "chat": frozenset({"chat", "models"}),
    "admin": frozenset({"predict", "explain", "models", "feedback", "monitor", "metrics", "chat"}),
}
REVIEWERS = frozenset({"reviewer", "admin"})  # roles whose feedback may concern any decision
# Older names still accepted (keys created under them keep working): "feedback" keys labelled any decision.
ALIASES = {"feedback": "reviewer"}
_DUMMY = hashlib.sha256(b"steward-no-such-key").hexdigest()


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    role: str
    name: str | None = None

    def may(self, action: str) -> bool:
        return action in PERMISSIONS.get(ALIASES.get(self.role, self.role), frozenset())

    @property
    def reviews(self) -> bool:
        """Whether this key may label decisions other keys asked for."""
        return ALIASES.get(self.role, self.role) in REVIEWERS


def key_from_headers(headers: Any) -> str | None:
    """The API key of a request: ``X-API-Key``, else ``Authorization: Bearer <key>`` (the OpenAI clients' way)."""
    raw = headers.get("x-api-key")
    auth = headers.get("authorization", "")
    if raw is None and auth.lower().startswith("bearer "):
        raw = auth[7:]
    return raw or None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(key: str) -> tuple[str, str] | None:
    parts = key.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != "stw" or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


class KeyStore:
    """Create, revoke, list and check keys in the service database (shared by every replica).

    ``cache_seconds`` > 0: a key that checked out is trusted for that long without asking the database again
    (the service checks a key on every request); a revocation then takes effect within that time.
    """

    def __init__(self, engine: Any, cache_seconds: float = 0.0) -> None:
        self.engine = engine
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[ApiKey, float]] = {}  # sha256 of the whole key -> (record, checked at)

    def cached(self, key: str | None) -> ApiKey | None:
        """The key's record if it checked out less than ``cache_seconds`` ago, else None (ask ``authenticate``)."""
        if not key or self.cache_seconds <= 0:
            return None
        hit = self._cache.get(_hash(key))
        if hit is None or time.monotonic() - hit[1] > self.cache_seconds:
            return None
        return hit[0]

    def create(self, role: str, name: str | None = None) -> tuple[ApiKey, str]:
        """A new key: returns its record and the key itself (which is not stored and cannot be recovered)."""
        from steward.service.audit import now
        from steward.service.tables import api_keys

        role = ALIASES.get(role, role)
        if role not in ROLES:
            raise ConfigError(f"--role: got {role!r}; valid roles: {', '.join(ROLES)}")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32).replace("_", "-")
        with self.engine.begin() as conn:
            conn.execute(api_keys.insert().values(key_id=key_id, secret_sha256=_hash(secret), role=role, name=name,
                                                  created=now(), revoked=False))
        return ApiKey(key_id, role, name), f"stw_{key_id}_{secret}"

    def revoke(self, key_id: str) -> bool:
        from sqlalchemy import update

        from steward.service.tables import api_keys

        with self.engine.begin() as conn:
            n = conn.execute(update(api_keys).where(api_keys.c.key_id == key_id).values(revoked=True)).rowcount
        return bool(n)

    def list(self) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from steward.service.audit import reading
        from steward.service.tables import api_keys

        with reading(self.engine) as conn:
            rows = conn.execute(select(api_keys.c.key_id, api_keys.c.role, api_keys.c.name, api_keys.c.created,
                                       api_keys.c.revoked).order_by(api_keys.c.created)).mappings()
            return [dict(r) for r in rows]

    def authenticate(self, key: str | None) -> ApiKey | None:
        """The key's record if it is valid and not revoked, else None."""
        from sqlalchemy import select

        from steward.service.audit import reading
        from steward.service.tables import api_keys

        parsed = parse(key or "")
        key_id, secret = parsed if parsed else ("", "")
        with reading(self.engine) as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).mappings().first()
        stored = row["secret_sha256"] if row else _DUMMY
        good = hmac.compare_digest(_hash(secret), stored)
        if not good or row is None or row["revoked"]:
            if key:
                self._cache.pop(_hash(key), None)
            return None
        found = ApiKey(row["key_id"], ALIASES.get(row["role"], row["role"]), row["name"])  # old names read as new
        if self.cache_seconds > 0 and key:
            if len(self._cache) > 10_000:  # bounded: drop everything rather than track ages
                self._cache.clear()
            self._cache[_hash(key)] = (found, time.monotonic())
        return found
