"""The invocation's time budget, and retries with backoff and jitter that never outrun it.

Every attempt runs on a thread of its own and is waited for no longer than the budget allows (`within`): a
stalled socket or a body trickling in one byte a second cannot hold the invocation past its deadline, whatever
the client library does inside. The clients' own timeouts come from the budget too, so an abandoned attempt
ends soon after.
"""

from __future__ import annotations

import contextvars
import logging
import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Generic, TypeVar

from headseg.function.errors import BudgetExhausted, RetriableError

T = TypeVar("T")

#: Every network call's own timeouts (the SDKs' and oss2's defaults), each capped by the budget (`Budget.timeout`).
CALL_TIMEOUT = 10.0  # seconds a call may wait for an answer (a read)
CONNECT_TIMEOUT = 5.0  # seconds a connection may take
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Budget:
    """The time left for this invocation's work: FC's timeout minus TIME_MARGIN. `grace` more seconds (most of
    the margin) remain for recording the outcome once the work has given up. `total`: the whole work budget an
    invocation starts with (what no retry can exceed; unknown: infinite)."""

    deadline: float
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    grace: float = 0.0
    total: float = math.inf

    @classmethod
    def seconds(cls, seconds: float, clock: Callable[[], float] = time.monotonic, grace: float = 0.0) -> "Budget":
        return cls(deadline=clock() + seconds, clock=clock, grace=grace, total=seconds)

    def for_recording(self) -> "Budget":
        """The budget of the outcome's record: the work's deadline plus the grace."""
        return Budget(self.deadline + self.grace, self.clock, total=self.total + self.grace)

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
            return within(budget, call, what)
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


class _Attempt(Generic[T]):
    """One call on a daemon thread of its own, in a copy of the caller's context (its log fields)."""

    def __init__(self, call: Callable[[], T]) -> None:
        self._call, self._context = call, contextvars.copy_context()
        self._result: T | None = None
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="headseg-call", daemon=True)

    def _run(self) -> None:
        try:
            self._result = self._context.run(self._call)
        except BaseException as exc:  # handed to the waiting thread, which re-raises it
            self._error = exc

    def outcome(self) -> T:
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]


def within(budget: Budget, call: Callable[[], T], what: str) -> T:
    """`call()`, or `BudgetExhausted` once the budget is spent: the call is left to end on its own (its
    client's timeout, taken from the budget, ends it soon) and its result, if any, is dropped."""
    remaining = budget.remaining()
    if remaining <= 0:
        raise BudgetExhausted(f"{what}: no time left in the invocation")
    attempt = _Attempt(call)
    attempt.thread.start()
    attempt.thread.join(remaining)
    if attempt.thread.is_alive():
        raise BudgetExhausted(f"{what}: no answer within the {remaining:.1f}s left in the invocation")
    return attempt.outcome()
