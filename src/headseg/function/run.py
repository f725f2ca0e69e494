"""What every stage of one record's processing shares: its time budget, its retries, the pool, a stopwatch."""

from __future__ import annotations

import contextvars
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, TypeVar

from headseg.function.retry import Budget, RetryPolicy, retry

T = TypeVar("T")


@dataclass(frozen=True)
class Run:
    """One record's run. `timings_ms` is the stopwatch's record, written to the sidecar; nothing reads it back."""

    budget: Budget
    policy: RetryPolicy
    pool: ThreadPoolExecutor
    sleep: Callable[[float], None] = time.sleep
    invocation_id: str = ""  # FC's request id: it goes into error sidecars
    memory_mb: int = 512  # the function's memory, which decoding and cutouts in flight must fit in
    timings_ms: dict[str, float] = field(default_factory=dict)
    standing: set[str] = field(default_factory=set)  # the sidecar keys this run wrote or found for its version
    started: float | None = None  # default: now

    def __post_init__(self) -> None:
        if self.started is None:
            object.__setattr__(self, "started", self.budget.clock())

    def recording(self) -> "Run":
        """This run with the budget for recording its outcome (the work's, plus most of TIME_MARGIN)."""
        return replace(self, budget=self.budget.for_recording())

    def elapsed_ms(self) -> float:
        return _ms(self.budget.clock() - (self.started or 0.0))

    def retry(self, what: str, call: Callable[[], T]) -> T:
        """`call()`, retried with backoff while it fails transiently and the budget lasts."""
        return retry(call, what=what, budget=self.budget, policy=self.policy, sleep=self.sleep)

    def submit(self, call: Callable[..., T], *args: Any) -> Future[T]:
        """Run `call(*args)` on the pool in a copy of this context, so its log lines carry the record's fields.

        Submit only from the record's own thread: a pool task never waits on another pool task.
        """
        return self.pool.submit(contextvars.copy_context().run, call, *args)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Record how long the block took under `name`."""
        started = self.budget.clock()
        try:
            yield
        finally:
            self.timings_ms[name] = _ms(self.budget.clock() - started)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
