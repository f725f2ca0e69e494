"""The worker: a call in a forked child, its answer or its error handed back, and at the deadline the child
killed and reaped, whatever it was doing. Real processes, real time (budgets of a fraction of a second)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from headseg.function import worker
from headseg.function.errors import BudgetExhausted, InvalidImage, RetriableError
from headseg.function.retry import Budget
from tests.processes import children


def spin() -> None:
    while True:  # a decode that never ends, burning a core
        pass


def test_the_answer_comes_back_from_the_child_and_the_child_is_gone():
    parent = os.getpid()
    assert worker.run(lambda: (os.getpid() != parent, b"\x89" * 3_000_000), Budget.seconds(30), "answer") == (True, b"\x89" * 3_000_000)
    assert children() == set()


def test_headsegs_errors_come_back_as_they_are():
    def refuse() -> None:
        raise InvalidImage("too costly", code="InvalidImage.DecodeTime")

    with pytest.raises(InvalidImage) as error:
        worker.run(refuse, Budget.seconds(30), "refuse")
    assert (error.value.code, error.value.message) == ("InvalidImage.DecodeTime", "too costly")
    assert children() == set()


def test_an_unexpected_error_comes_back_with_the_childs_traceback():
    def broken() -> None:
        {}["missing"]  # noqa: B018

    with pytest.raises(KeyError) as error:
        worker.run(broken, Budget.seconds(30), "bug")
    assert isinstance(error.value.__cause__, worker.WorkerTraceback)
    assert "in broken" in str(error.value.__cause__) and "KeyError: 'missing'" in str(error.value.__cause__)


def test_a_call_still_running_at_the_deadline_is_killed_and_reaped():
    started = time.monotonic()
    with pytest.raises(BudgetExhausted, match=r"spin: still running when the 0\.\ds left in the invocation ran out; stopped"):
        worker.run(spin, Budget.seconds(0.5), "spin")
    assert time.monotonic() - started < 2.0  # 0.5 s, and the kill; generous for a loaded machine
    assert children() == set()


def test_no_time_left_starts_no_child():
    with pytest.raises(BudgetExhausted, match="no time left"):
        worker.run(lambda: 1, Budget.seconds(0), "late")
    assert children() == set()


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGKILL])
def test_a_child_that_dies_without_answering_is_a_retriable_crash(sig):
    with pytest.raises(RetriableError) as error:
        worker.run(lambda: os.kill(os.getpid(), sig), Budget.seconds(30), "decode")
    assert error.value.code == "WorkerCrashed"
    assert "decode: the worker died without an answer (killed by" in error.value.message
    assert ("out of memory?" in error.value.message) is (sig == signal.SIGKILL)
    assert children() == set()


def test_concurrent_calls_each_get_their_own_answer_and_a_slow_one_holds_up_no_other():
    """A child must not inherit a sibling's pipe: the quick calls end long before the one that spins."""
    results: dict[int, object] = {}

    def call(index: int) -> None:
        try:
            results[index] = worker.run(spin if index == 0 else (lambda: index * 10), Budget.seconds(3 if index == 0 else 30), "x")
        except BudgetExhausted as exc:
            results[index] = exc.code

    slow = threading.Thread(target=call, args=(0,))
    slow.start()
    started = time.monotonic()
    quick = [threading.Thread(target=call, args=(index,)) for index in range(1, 9)]
    for thread in quick:
        thread.start()
    for thread in quick:
        thread.join()
    assert time.monotonic() - started < 2.5  # not held until the spinning sibling is killed at 3 s
    slow.join()
    assert results == {0: "BudgetExhausted", **{index: index * 10 for index in range(1, 9)}}
    assert children() == set()
