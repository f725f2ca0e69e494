"""A long listing goes on in a process of its own: the pages' parsing (oss2's, about 35 us an object) on another
core than the command's own work on them.

`listed(build, storage, prefix, workers)` yields what `listing.listing(storage, prefix, workers)` yields, in
the same order. The first IN_PROCESS objects are listed here; a listing that goes on past them is handed to a
process started for it (`spawn`: nothing of this process's threads is copied), which rebuilds the storage
with `build` (picklable: the bucket's settings and credentials), lists from the last key seen and sends the
objects back in pages through a queue of BATCHES pages, so memory stays flat whatever the listing's length.

Requests: the pages this process had fetched ahead when it handed over (at most `listing.AHEAD` + 1) are
fetched again by the child: a few more than the listing's own, once per long listing.

Failures: a storage error in the child comes back as the same kind of error (`RetriableError` or
`PermanentError`, its message and code), a child that dies without a word as a `RetriableError`; when the
consumer stops early, or fails, the child is terminated. The child ignores Ctrl-C: the command decides.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import queue
import signal
from contextlib import closing
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from headseg.function import logs
from headseg.function.errors import HeadsegError, PermanentError, RetriableError
from headseg.function.storage import ObjectInfo, Storage
from headseg.ops.listing import PAGE, listing

IN_PROCESS = 10 * PAGE  # objects listed in this process before a longer listing gets one of its own
BATCHES = 4  # pages the child may have sent ahead of the consumer
Row = tuple[str, int, str, int, str]  # key, size, eTag, Last-Modified, version id: an ObjectInfo, lighter to send


@dataclass(frozen=True)
class _Failure:
    message: str
    code: str
    retriable: bool


def listed(build: Callable[[], Storage], storage: Storage, prefix: str, workers: int = 1) -> Iterator[ObjectInfo]:
    """Every object under `prefix` in key order: the first IN_PROCESS here, the rest from a process of its own."""
    count, last = 0, ""
    with closing(listing(storage, prefix, workers)) as here:  # closed at the hand-over: its threads stop
        for info in itertools.islice(here, IN_PROCESS):
            count, last = count + 1, info.key
            yield info
    if count == IN_PROCESS:
        yield from _from_child(build, prefix, last, workers)


def _from_child(build: Callable[[], Storage], prefix: str, after: str, workers: int) -> Iterator[ObjectInfo]:
    context = multiprocessing.get_context("spawn")
    pages: multiprocessing.Queue[list[Row] | _Failure | None] = context.Queue(maxsize=BATCHES)
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    child = context.Process(target=_child, args=(build, prefix, after, workers, pages, level), name="headseg-listing", daemon=True)
    child.start()
    try:
        while True:
            try:
                page = pages.get(timeout=1.0)
            except queue.Empty:
                if not child.is_alive():
                    raise RetriableError(f"listing {prefix!r}: its process ended (exit code {child.exitcode}) before the listing did",
                                         code="ListingProcessDied") from None
                continue
            if page is None:
                return
            if isinstance(page, _Failure):
                raise (RetriableError if page.retriable else PermanentError)(page.message, code=page.code)
            for key, size, etag, modified, version in page:
                yield ObjectInfo(key, size, etag, "", modified, version)
    finally:
        child.terminate()
        child.join(5)
        pages.cancel_join_thread()
        pages.close()


def _child(build: Callable[[], Storage], prefix: str, after: str, workers: int, pages: multiprocessing.Queue, level: str) -> None:
    """The child: list after `after`, a page of rows at a time; then None, or the failure."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logs.configure(level)
    try:
        page: list[Row] = []
        for info in listing(build(), prefix, workers, after):
            page.append((info.key, info.size, info.etag, info.last_modified, info.version_id))
            if len(page) == PAGE:
                pages.put(page)
                page = []
        pages.put(page)
        pages.put(None)
    except HeadsegError as exc:
        pages.put(_Failure(exc.message, exc.code, isinstance(exc, RetriableError)))
    except Exception as exc:  # the boundary: the command must hear of it, not wait
        pages.put(_Failure(f"listing {prefix!r} failed: {type(exc).__name__}: {exc}", "InternalError", True))
