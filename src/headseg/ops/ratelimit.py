"""A rate limiter for tooling that must not outrun a quota (SegmentHead: 2 QPS by default)."""

from __future__ import annotations

import threading
import time
from typing import Callable


class RateLimiter:
    """At most `rate` acquisitions per second, evenly spaced, shared by any number of threads."""

    def __init__(
        self, rate: float, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self._clock, self._sleep = clock, sleep
        self._next = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Wait for the next free slot (reserved under the lock, waited outside it)."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            self._sleep(slot - now)
