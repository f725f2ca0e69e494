"""A worker process for CPU-heavy steps: forked for one call, killed at the invocation's deadline.

A network call is bounded by abandoning the thread it runs on (`retry.within`); a decode cannot be: a thread
cannot be stopped, and an abandoned one keeps burning CPU and holding memory into the next invocation of a
frozen-and-thawed instance. So `run` forks a child for the call, waits for its answer no longer than the budget
allows, and kills it (SIGKILL) and reaps it when time is up: nothing it started outlives the call.

Why a fork per call, and not a pool or a long-lived worker: the child shares the parent's memory copy-on-write,
so the object's bytes (up to MAX_OBJECT_BYTES) reach it without a copy, and what it adds is what normalizing
in-process added (measured: a 24 MP PNG's peak grows the child by 118 MB, in-process by 117 MB), so the memory
gate's model still holds; nothing starts at cold start; a killed child needs no respawn. It costs about 20 ms
a call here (a 12 MP photo normalizes in 130 ms instead of 109; `bench/p7_deadline.py` reports the cost).

Forking a process that has threads (the pool, abandoned attempts) is safe only for a child that takes no lock
another thread may hold. This child runs one call of headseg's own decoding code (Pillow and its codecs: no
locks of their own), writes its answer to a pipe and leaves with `os._exit`: no logging, no printing (warnings
ignored, no fault handler), no atexit handlers, no flushing of buffers it inherited, no cyclic garbage
collection (it would write to every object of the parent's heap, copying it). CPython takes the import lock
around fork, so a child may import. Python 3.12 warns of forking with threads (a DeprecationWarning, hidden by
default): this is the case it allows for. If a child were ever stuck all the same, the deadline kills it.
"""

from __future__ import annotations

import faulthandler
import gc
import os
import pickle
import selectors
import signal
import threading
import time
import traceback
import warnings
from typing import Callable, NoReturn, TypeVar

from headseg.function.errors import BudgetExhausted, HeadsegError, RetriableError
from headseg.function.retry import Budget, within

T = TypeVar("T")

#: Held from creating a child's pipe until the parent closed its copy of the write end, so that no other child
#: (a concurrent record's) inherits it: the parent sees the end of the answer as soon as its own child exits.
_FORKING = threading.Lock()


class WorkerTraceback(Exception):
    """Where an unexpected exception was raised in the worker: its traceback, as text (the `__cause__`)."""


def run(call: Callable[[], T], budget: Budget, what: str) -> T:
    """`call()` in a child process, or `BudgetExhausted` once the budget is spent (the child killed and reaped).

    What `call` raises is raised here (headseg's errors as they are; anything else with the child's traceback
    as its cause). A child that dies without answering (a decoder crash, the kernel's OOM killer) raises a
    retriable `WorkerCrashed` error. Without `os.fork` (Windows), the call runs on a thread (`retry.within`):
    bounded all the same, but not stopped.
    """
    remaining = budget.remaining()
    if remaining <= 0:
        raise BudgetExhausted(f"{what}: no time left in the invocation")
    if not hasattr(os, "fork"):
        return within(budget, call, what)
    deadline = time.monotonic() + remaining
    with _FORKING:
        read, write = _pipe()
        pid = os.fork()
        if pid == 0:
            _child(call, read, write)
        os.close(write)
    answer: bytes | None = None
    try:
        answer = _answer(read, deadline)
    finally:
        os.close(read)
        status = _reap(pid, kill=answer is None)
    if answer is None:
        raise BudgetExhausted(f"{what}: still running when the {remaining:.1f}s left in the invocation ran out; stopped")
    if not answer:
        raise RetriableError(f"{what}: the worker died without an answer ({_death(status)})", code="WorkerCrashed")
    ok, value, where = pickle.loads(answer)
    if ok:
        return value
    if where:
        raise value from WorkerTraceback(where)
    raise value


def _pipe() -> tuple[int, int]:
    """A pipe that holds 1 MB where Linux allows it (64 KB by default): a normalized image's few MB come through
    in a few writes rather than fifty (measured: 35 ms for 3 MB, then 26 ms)."""
    read, write = os.pipe()
    try:
        import fcntl

        fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (ImportError, AttributeError, OSError):  # not Linux, or a lower pipe-max-size: the default size
        pass
    return read, write


def _child(call: Callable[[], object], read: int, write: int) -> NoReturn:
    """The forked child: run the call, write (ok, value or exception, traceback text) pickled, and leave."""
    code = 1
    try:
        os.close(read)
        gc.disable()
        warnings.simplefilter("ignore")
        faulthandler.disable()  # a crash is the parent's to report
        try:
            answer = pickle.dumps((True, call(), ""), pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:  # noqa: BLE001  (handed to the parent, which raises it)
            answer = _pickled_error(exc)
        view = memoryview(answer)
        while view:
            view = view[os.write(write, view) :]
        code = 0
    finally:
        os._exit(code)


def _pickled_error(exc: BaseException) -> bytes:
    where = "" if isinstance(exc, HeadsegError) else "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        return pickle.dumps((False, exc, where), pickle.HIGHEST_PROTOCOL)
    except Exception:  # an exception that does not pickle: its type and message survive
        return pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}"), where), pickle.HIGHEST_PROTOCOL)


def _answer(read: int, deadline: float) -> bytes | None:
    """Everything the child wrote, once it closed the pipe (exited); None when the deadline came first."""
    chunks: list[bytes] = []
    with selectors.DefaultSelector() as selector:
        selector.register(read, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                return None
            chunk = os.read(read, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def _reap(pid: int, kill: bool) -> int | None:
    """Kill the child first when asked, then wait for it: no zombie, nothing left running. Its wait status."""
    if kill:
        os.kill(pid, signal.SIGKILL)
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:  # SIGCHLD ignored: the kernel reaped it
        return None


def _death(status: int | None) -> str:
    if status is None:
        return "its exit status is unknown"
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        return f"exit status {code}"
    if code == -signal.SIGKILL:
        return "killed by SIGKILL: out of memory?"
    return f"killed by {signal.strsignal(-code) or f'signal {-code}'}"
