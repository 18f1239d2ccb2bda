"""Rate limits per token subject: a token bucket each, refilled continuously.

The buckets live in this gateway process; with several gateway replicas each enforces its own
share, which bounds a client at the number of replicas times the limit.
"""

import math
import threading
import time


class RateLimiter:
    def __init__(self, per_minute: int, burst: int, *, clock=time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)
        self._lock = threading.Lock()

    def take(self, key: str) -> float | None:
        """Spend one request for `key`; None if allowed, else seconds until one is available."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return None
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > 100_000:  # forget idle subjects rather than grow forever
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 600}
            return (1 - tokens) / self.rate

    @staticmethod
    def retry_after(wait: float) -> str:
        return str(max(1, math.ceil(wait)))
