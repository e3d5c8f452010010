"""Token buckets: ``rate`` requests per minute with bursts up to ``burst``, per API key (requests, tokens) or
per client address (failed authentications).

In-process: each replica limits on its own (put a shared limiter such as the proxy's in front of several
replicas). Written here because the well-known libraries (slowapi, limits) need a storage backend or
decorate routes one by one, while this is a dozen lines keyed by API key.
"""

from __future__ import annotations

import threading
import time


class RateLimiter:
    def __init__(self, per_minute: int, burst: int, max_entries: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_entries = max_entries  # keyed by client address, the table must not grow without bound
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _tokens(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate)

    def take(self, key: str, cost: float = 1.0) -> float:
        """0.0 if allowed; otherwise the seconds to wait before retrying."""
        now = time.monotonic()
        with self._lock:
            tokens = self._tokens(key, now)
            if key not in self._buckets and len(self._buckets) >= self.max_entries:
                self._sweep(now)
            if tokens >= cost:
                self._buckets[key] = (tokens - cost, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (cost - tokens) / self.rate

    def wait(self, key: str, cost: float = 1.0) -> float:
        """Like ``take`` but takes nothing: the seconds until ``cost`` would be allowed (0.0: now)."""
        with self._lock:
            tokens = self._tokens(key, time.monotonic())
        return 0.0 if tokens >= cost else (cost - tokens) / self.rate

    def _sweep(self, now: float) -> None:
        """Forget buckets that have refilled (they hold nothing a new bucket would not); if every bucket is
        still draining, forget them all rather than grow."""
        full = [k for k in self._buckets if self._tokens(k, now) >= self.burst]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self.max_entries:
            self._buckets.clear()

    def give_back(self, key: str, amount: float) -> None:
        """Return part of a reservation that was not used (the gateway reserves max_tokens up front)."""
        if amount <= 0:
            return
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, time.monotonic()))
            self._buckets[key] = (min(self.burst, tokens + amount), last)
