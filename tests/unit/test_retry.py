import logging

import pytest

from headseg.function.errors import BudgetExhausted, PermanentError, RetriableError
from headseg.function.retry import Budget, RetryPolicy, retry
from tests.twins import Clock


def flaky(failures: int, error=RetriableError):
    calls = []

    def call():
        calls.append(1)
        if len(calls) <= failures:
            raise error("boom", code="Throttling.User")
        return "ok"

    return call, calls


def test_retries_until_success_with_growing_jittered_waits(caplog):
    clock = Clock()
    call, calls = flaky(3)
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        clock.sleep(seconds)

    with caplog.at_level(logging.WARNING):
        assert retry(call, what="t", budget=Budget.seconds(100, clock), policy=RetryPolicy(6, 1.0, 8.0), sleep=sleep) == "ok"
    assert len(calls) == 4
    for n, wait in enumerate(waits, start=1):
        ceiling = min(8.0, 2 ** (n - 1))
        assert ceiling / 2 <= wait <= ceiling
    assert [r.fields["error"] for r in caplog.records] == ["Throttling.User"] * 3


def test_gives_up_after_max_attempts_with_the_last_error():
    clock = Clock()
    call, calls = flaky(10)
    with pytest.raises(RetriableError) as error:
        retry(call, what="t", budget=Budget.seconds(1000, clock), policy=RetryPolicy(3, 0.1, 1), sleep=clock.sleep)
    assert len(calls) == 3 and type(error.value) is RetriableError


def test_never_sleeps_past_the_budget():
    clock = Clock()
    call, calls = flaky(10)
    budget = Budget.seconds(5, clock)
    with pytest.raises(BudgetExhausted) as error:
        retry(call, what="SegmentHead", budget=budget, policy=RetryPolicy(50, 1.0, 8.0), sleep=clock.sleep)
    assert clock.now <= 5
    assert "SegmentHead: gave up after" in error.value.message and "Throttling.User" in error.value.message


def test_permanent_errors_are_not_retried():
    call, calls = flaky(1, error=PermanentError)
    with pytest.raises(PermanentError):
        retry(call, what="t", budget=Budget.seconds(10), policy=RetryPolicy(), sleep=lambda s: None)
    assert len(calls) == 1


def test_budget_timeout_caps_calls():
    clock = Clock()
    budget = Budget.seconds(3, clock)
    assert budget.timeout(10) == 3
    clock.now = 2.95
    assert budget.timeout(10) == 0.1  # floor: never a zero timeout


def test_access_denied_is_not_retried_inside_the_invocation():
    from headseg.function.errors import AccessDenied

    call, calls = flaky(5, error=AccessDenied)
    with pytest.raises(AccessDenied):
        retry(call, what="t", budget=Budget.seconds(100), policy=RetryPolicy(), sleep=lambda s: None)
    assert len(calls) == 1
