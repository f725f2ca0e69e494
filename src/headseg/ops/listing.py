"""Listing a prefix with pages fetched ahead, by several threads over ranges of keys: what `Storage.list` yields,
in the same order, sooner.

`listing(storage, prefix, workers, start_after)` yields exactly what `storage.list(prefix, start_after=...)`
yields: every object under `prefix` after `start_after`, in key order (OSS's order is that of the keys' UTF-8
bytes, which is code-point order, Python's order of `str`).

Ranges
    With one worker there is one range, all of the listing, and one thread fetches its pages ahead of the
    consumer. With `workers` > 1 the key space is cut at up to `workers` - 1 boundaries b1 < b2 < ...: the ranges
    (start_after, b1], (b1, b2], ..., (bk, end] are listed at once, each by its own thread, with ListObjectsV2's
    `start-after` set to the range's lower end; a range stops at the first key past its upper end. The consumer
    reads the ranges one after the other, so the keys come in order whatever the boundaries are: a boundary
    placed badly costs balance, never correctness. A boundary need not be a key: it is any string.

Bounded memory
    Each range's thread hands over pages of up to `PAGE` objects through a buffer of `AHEAD` pages, and blocks
    while it is full. A range holds at most AHEAD pages ready, the page being filled and the storage's own page
    (oss2's), and the consumer one page: memory is O(workers x PAGE) whatever the size of the bucket (measured
    against the fake OSS: 2.5, 4.8, 7.6 and 15 MB traced at 1, 2, 4 and 8 workers, the same at 30k and 300k
    keys; `storage.list` alone 2.4 MB).

What it buys
    With one worker the next pages are fetched while the consumer works on the current one: at 30 ms a request
    and 30 us of work per object, 100k keys take 6.3 s instead of `storage.list`'s 8.4 s. More workers do not
    make one in-order consumer faster: a range the consumer has not reached yet fetches AHEAD (+1) pages, then
    waits, so each later range saves the latency of its first pages and no more (measured: 6.9-7.3 s at 2 to 8
    workers, with their probes and their threads' parsing competing for the GIL). Ranges pay off only for
    consumers that take them independently.

Choosing the boundaries (workers > 1)
    The first two pages of the first range are read before the other ranges start (its thread then carries on
    from there). If they hold the whole listing, there is one range. Otherwise `keyspace.boundaries` places
    them from those pages and a few probes (see there).

Requests (OSS: one request lists a page of up to 1 000 keys)
    workers = 1: exactly what `storage.list` makes: max(1, ceil(N / 1000)).
    workers > 1: at most that + workers + probes (probes <= keyspace.PROBES_PER_WORKER x workers; 3 to 11
    measured): each range but the last ends on a page that reaches past its upper end (a range's pages count
    from its own start; an empty last range costs one), and each probe is one page. 100k keys in 100 pages
    took 107, 109 and 116 requests at 2, 4 and 8 workers. Up to two pages (2 000 keys) make no probe and one
    range.

Failures and early stops
    A storage error in any thread (`RetriableError`, `PermanentError`...) is raised to the consumer, the same
    exception object, as soon as the consumer next asks for an object, even if the failing range is a later
    one; the other threads are then stopped. When the consumer stops early (the generator is closed, garbage
    collected, or interrupted), every thread stops at its next page and is joined before the generator
    returns; none is left blocked on a full buffer (a thread inside a request finishes that request first).
    Probes run in the consumer's thread, so their errors are raised as they are.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass

from headseg.function.storage import ObjectInfo, Storage
from headseg.ops.keyspace import boundaries, close

PAGE = 1000  # objects a page hands over: an OSS listing page (ListObjectsV2's largest max-keys)
AHEAD = 2  # pages each range keeps ready for the consumer


def listing(storage: Storage, prefix: str, workers: int = 1, start_after: str = "") -> Generator[ObjectInfo, None, None]:
    """Every object under `prefix` whose key is after `start_after`, in key order, as `storage.list` yields them,
    with pages fetched ahead: by one thread, or by `workers` threads over ranges of keys (see the module)."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    pages = iter(storage.list(prefix, start_after=start_after))
    try:
        head = list(itertools.islice(pages, 2 * PAGE)) if workers > 1 else []
        bounds = boundaries(storage, prefix, head, workers, PAGE) if len(head) == 2 * PAGE else []
    except BaseException:
        close(pages)
        raise
    ranges = [_Range(0, start_after, bounds[0] if bounds else None, pages, head)]
    ranges += [_Range(i, lower, upper, None, []) for i, (lower, upper) in
               enumerate(itertools.zip_longest(bounds, bounds[1:]), start=1)]
    yield from _Window(storage, prefix, ranges).objects()


@dataclass
class _Range:
    """Keys in (lower, upper] (no upper: to the end). `pages`: a listing already opened at `lower`, and `head`
    what was read from it already."""

    index: int
    lower: str
    upper: str | None
    pages: Iterator[ObjectInfo] | None
    head: list[ObjectInfo]


class _Stopped(Exception):
    """The consumer has gone: a range's thread unwinds."""


class _Window:
    """The ranges' threads and the consumer, meeting at one buffer of pages per range under one condition."""

    def __init__(self, storage: Storage, prefix: str, ranges: list[_Range]) -> None:
        self._storage, self._prefix, self._ranges = storage, prefix, ranges
        self._changed = threading.Condition()
        self._ready: list[deque[list[ObjectInfo]]] = [deque() for _ in ranges]
        self._done = [False] * len(ranges)
        self._failure: BaseException | None = None
        self._stopped = False

    def objects(self) -> Iterator[ObjectInfo]:
        threads = [
            threading.Thread(target=self._fill, args=(r,), name=f"headseg-listing-{r.index}", daemon=True)
            for r in self._ranges
        ]
        try:
            for thread in threads:
                thread.start()
            for r in self._ranges:
                while (page := self._take(r.index)) is not None:
                    for info in page:
                        if self._failure is not None:  # another range's, raised without waiting for this page's end
                            raise self._failure
                        yield info
        finally:
            with self._changed:
                self._stopped = True
                for ready in self._ready:
                    ready.clear()
                self._changed.notify_all()
            for thread in threads:
                if thread.ident is not None:
                    thread.join()

    def _take(self, index: int) -> list[ObjectInfo] | None:
        """The range's next page; None once it has none left. Raises the first failure of any range."""
        with self._changed:
            ready = self._ready[index]
            while not ready and not self._done[index] and self._failure is None:
                self._changed.wait()
            if self._failure is not None:
                raise self._failure
            if not ready:
                return None
            self._changed.notify_all()
            return ready.popleft()

    def _put(self, index: int, page: list[ObjectInfo]) -> None:
        with self._changed:
            while len(self._ready[index]) >= AHEAD and not self._stopped:
                self._changed.wait()
            if self._stopped:
                raise _Stopped
            self._ready[index].append(page)
            self._changed.notify_all()

    def _fill(self, r: _Range) -> None:
        """A range's thread: its objects, a page at a time, until past its upper end."""
        pages = r.pages if r.pages is not None else iter(self._storage.list(self._prefix, start_after=r.lower))
        failure = None
        try:
            if r.head:
                self._put(r.index, r.head)
            page: list[ObjectInfo] = []
            for info in pages:
                if r.upper is not None and info.key > r.upper:
                    break
                page.append(info)
                if len(page) == PAGE:
                    self._put(r.index, page)
                    page = []
            if page:
                self._put(r.index, page)
        except _Stopped:
            pass
        except BaseException as exc:  # whatever it is, the consumer must learn of it rather than wait forever
            failure = exc
        finally:
            close(pages)
            with self._changed:
                self._done[r.index] = True
                if failure is not None and self._failure is None:
                    self._failure = failure
                self._changed.notify_all()
