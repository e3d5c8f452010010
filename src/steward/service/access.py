"""Who may call: the API-key check both services run before a route, with its two rate limits.

One place for it so the classifier service and the chat gateway cannot drift apart: the key (header or
bearer token) is checked, its role must allow the action, its requests are rate limited; and failed
authentications are limited **per client address**, so nobody can try keys at line rate. The presented key
is never logged or counted, only the reason a request was refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from steward.service.errors import ServiceError
from steward.service.keys import ApiKey, KeyStore, key_from_headers
from steward.service.ratelimit import RateLimiter


def _address_limited(wait: float) -> ServiceError:
    """The refusal of a request from an address over its failed-authentication limit."""
    return ServiceError(429, "too_many_failed_authentications", "too many requests with a missing or wrong API key "
                        "from this address; wait before retrying", retry_after=max(1, round(wait)))


class Access:
    """``check(headers, client, action)`` -> the caller's key, or :class:`ServiceError`.

    ``failures``: the failed-authentication bucket per client address. While an address is over it, every
    request from it is refused with 429 before its key is looked at (a valid key too: the address is
    guessing). ``refused(reason)`` is told each refusal (a metric)."""

    def __init__(self, keys: KeyStore, requests: RateLimiter, failures: RateLimiter, *, missing_hint: str,
                 refused: Callable[[str], None] | None = None) -> None:
        self.keys, self.requests, self.failures = keys, requests, failures
        self.missing_hint, self.refused = missing_hint, refused

    def _deny(self, reason: str, exc: ServiceError) -> ServiceError:
        if self.refused is not None:
            self.refused(reason)
        return exc

    async def check(self, headers: Mapping[str, str], client: str | None, action: str) -> ApiKey:
        address = client or "unknown"
        wait = self.failures.wait(address)
        if wait > 0:
            raise self._deny("address_limited", _address_limited(wait))
        raw = key_from_headers(headers)
        key = self.keys.cached(raw) if raw else None  # most requests: no database round trip, no worker thread
        if key is None and raw:
            # The failure is charged before the lookup and refunded if the key is good: concurrent guesses
            # cannot all pass the check above while the first of them is still being looked up.
            if self.failures.take(address) > 0:
                raise self._deny("address_limited", _address_limited(self.failures.wait(address)))
            key = await asyncio.get_running_loop().run_in_executor(None, self.keys.authenticate, raw)
            if key is not None:
                self.failures.give_back(address, 1.0)
        elif key is None:
            self.failures.take(address)
        if key is None:
            if not raw:
                raise self._deny("missing_key", ServiceError(401, "missing_api_key", self.missing_hint))
            raise self._deny("invalid_key", ServiceError(401, "invalid_api_key", "the API key is unknown or revoked"))
        if not key.may(action):
            raise self._deny("forbidden", ServiceError(403, "forbidden", f"role {key.role!r} may not {action}"))
        wait = self.requests.take(key.key_id)
        if wait > 0:
            raise self._deny("rate_limited", ServiceError(429, "rate_limited", "too many requests for this key",
                                                          retry_after=max(1, round(wait))))
        return key


def client_address(request: Any) -> str | None:
    """The peer address of a Starlette request (behind a proxy: run uvicorn with ``--proxy-headers``)."""
    return request.client.host if request.client is not None else None
