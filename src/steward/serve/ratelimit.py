"""Per-key token buckets: ``rate`` requests per minute with bursts up to ``burst``.

In-process: each replica limits on its own (put a shared limiter such as the proxy's in front of several
replicas). Written here because the well-known libraries (slowapi, limits) need a storage backend or
decorate routes one by one, while this is a dozen lines keyed by API key.
"""

from __future__ import annotations

import threading
import time


class RateLimiter:
    def __init__(self, per_minute: int, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> float:
        """0.0 if allowed; otherwise the seconds to wait before retrying."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= cost:
                self._buckets[key] = (tokens - cost, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (cost - tokens) / self.rate

    def give_back(self, key: str, amount: float) -> None:
        """Return part of a reservation that was not used (the gateway reserves max_tokens up front)."""
        if amount <= 0:
            return
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, time.monotonic()))
            self._buckets[key] = (min(self.burst, tokens + amount), last)
