"""The invocation's time budget, and retries with backoff and jitter that never outrun it."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from headseg.errors import BudgetExhausted, RetriableError

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass
class Budget:
    """The time left for this invocation (FC's timeout minus a margin kept to record the outcome)."""

    deadline: float
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    @classmethod
    def seconds(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> "Budget":
        return cls(deadline=clock() + seconds, clock=clock)

    def remaining(self) -> float:
        return max(0.0, self.deadline - self.clock())

    def timeout(self, default: float) -> float:
        """A per-call timeout that ends no later than the budget (at least 0.1 s)."""
        return max(0.1, min(default, self.remaining()))


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with equal jitter: the n-th wait is between d/2 and d, d = min(cap, base * 2**n)."""

    max_attempts: int = 6
    base: float = 0.5
    cap: float = 8.0

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        ceiling = min(self.cap, self.base * 2 ** (attempt - 1))
        return ceiling / 2 + rng() * ceiling / 2


def retry(
    call: Callable[[], T],
    *,
    what: str,
    budget: Budget,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `call`, retrying `RetriableError`s while attempts and time remain.

    Gives up with the last error after `policy.max_attempts` (at once for errors that say retrying now cannot
    help), or with `BudgetExhausted` when the next wait
    would not leave time for another attempt.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except RetriableError as exc:
            if attempt >= policy.max_attempts or not exc.retry_in_invocation:
                raise
            wait = policy.delay(attempt)
            if budget.remaining() <= wait:
                raise BudgetExhausted(
                    f"{what}: gave up after {attempt} attempt(s) with {budget.remaining():.1f}s of the "
                    f"invocation left; last error {exc.code}: {exc.message}"
                ) from exc
            log.warning(
                "retrying",
                extra={"fields": {"call": what, "attempt": attempt, "error": exc.code, "wait_s": round(wait, 3)}},
            )
            sleep(wait)
