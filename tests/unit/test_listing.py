"""Parallel listing against the in-memory bucket: the same objects in the same order as `Storage.list`, for any
keys and any number of workers; bounded read-ahead; errors from any range raised; threads gone when it stops."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headseg.function.errors import PermanentError, RetriableError
from headseg.function.storage import ObjectInfo
from headseg.ops import listing as listing_module
from headseg.ops.keyspace import PROBES_PER_WORKER
from headseg.ops.listing import AHEAD, PAGE, listing
from tests.twins import MemoryStorage

# Characters that sort before "/" ("-", "."), "/", after it, and beyond ASCII (2, 3 and 4 UTF-8 bytes)
CHARS = "-./0189AZ_az~éß中語\U0001f600"
AWKWARD = ["a", "a-b", "a.jpg", "a.jpg.bak", "a/x", "a/x/y", "a0", "a~", "aé", "a中", "a\U0001f600", "b"]


def bucket(keys: list[str]) -> MemoryStorage:
    return MemoryStorage(objects={key: (key.encode(), "image/jpeg") for key in keys})


def threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith("headseg-listing")]


@contextmanager
def small_pages(page: int = 3) -> Iterator[None]:
    """Pages of `page` objects, so that a few dozen keys make several ranges and probes."""
    with mock.patch.object(listing_module, "PAGE", page):
        yield


@dataclass
class Watched:
    """A bucket whose listings count what they hand out, and raise `failure` instead of handing out `fail_at`,
    or anything in the thread named `fail_in` (setting `failing` first). `lead`: the most objects ever handed
    out by the ranges' listings ahead of what the consumer (`consume`) has taken, once it has taken one (the
    probes, read before that, are not counted)."""

    inner: MemoryStorage
    fail_at: str | None = None
    fail_in: str | None = None
    failure: Exception = field(default_factory=lambda: RetriableError("OSS ListObjects: HTTP 503", code="SlowDown"))
    failing: threading.Event = field(default_factory=threading.Event)
    pulled: int = 0
    consumed: int = 0
    probed: int = 0
    lead: int = 0
    open: int = 0  # listings not closed yet
    starts: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def bucket(self) -> str:
        return self.inner.bucket

    def list(self, prefix: str, delimiter: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        with self.changed:
            self.starts.append(start_after)
            self.open += 1
        mine = 0
        try:
            for info in self.inner.list(prefix, delimiter, start_after):
                if info.key == self.fail_at or threading.current_thread().name == self.fail_in:
                    self.failing.set()
                    raise self.failure
                with self.changed:
                    self.pulled, mine = self.pulled + 1, mine + 1
                    if self.consumed:
                        self.lead = max(self.lead, self.pulled - self.probed - self.consumed)
                    self.changed.notify_all()
                yield info
        finally:
            with self.changed:
                self.open -= 1
                self.probed += 0 if self.consumed else mine
                self.changed.notify_all()

    def consume(self, infos: Iterator[ObjectInfo]) -> Iterator[ObjectInfo]:
        for info in infos:
            with self.changed:
                self.consumed += 1
            yield info

    def wait_for(self, condition: Callable[[Watched], bool], timeout: float = 10.0) -> bool:
        """Block until `condition(self)` holds; False if it does not within `timeout` seconds."""
        with self.changed:
            return self.changed.wait_for(lambda: condition(self), timeout=timeout)


# -- the same objects, in order ------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(
    keys=st.lists(st.text(CHARS, min_size=1, max_size=6), max_size=80, unique=True),
    awkward=st.booleans(),
    prefix=st.sampled_from(["", "a", "a/", "中", "zz"]),
    start_after=st.one_of(st.just(""), st.text(CHARS, max_size=4)),
    workers=st.integers(1, 8),
    page=st.integers(1, 4),
)
def test_any_keys_come_out_as_the_listing_gives_them(keys, awkward, prefix, start_after, workers, page):
    storage = bucket(keys + AWKWARD if awkward else keys)
    with small_pages(page):
        got = list(listing(storage, prefix, workers, start_after))
    assert got == list(storage.list(prefix, start_after=start_after))
    assert [info.key for info in got] == sorted(k for k in storage.objects if k.startswith(prefix) and k > start_after)
    assert not threads()


@pytest.mark.parametrize("workers", range(1, 9))
@pytest.mark.parametrize(
    "keys",
    [
        [f"incoming/{i:07d}.jpg" for i in range(1, 20_001)],  # one flat folder
        [f"incoming/{i}.jpg" for i in range(1, 12_001)],  # numbers of every width
        [f"incoming/{chr(0x4E00 + i % 300)}{i:05d}-图.png" for i in range(9_000)],  # non-ASCII
        [f"incoming/{stem}{i:04d}" for i in range(1500) for stem in AWKWARD],  # runs sorting around "/"
    ],
    ids=["flat", "widths", "non-ascii", "awkward"],
)
def test_full_pages_make_ranges_and_keep_the_order(keys, workers):
    storage = bucket(keys + ["incominf", "incoming", "incomingz", "other/1"])
    got = [info.key for info in listing(storage, "incoming/", workers)]
    assert got == sorted(k for k in keys if k.startswith("incoming/"))
    listings = len(storage.done("list"))
    assert listings == 1 if workers == 1 else 1 < listings <= workers + PROBES_PER_WORKER * workers


@pytest.mark.parametrize("workers", [1, 2, 8])
def test_empty_and_tiny_listings(workers):
    storage = bucket(["a/1", "b/1", "b/2"])
    assert [i.key for i in listing(storage, "nothing/", workers)] == []
    assert [i.key for i in listing(storage, "b/", workers)] == ["b/1", "b/2"]  # fewer keys than workers
    assert [i.key for i in listing(storage, "", workers, start_after="b/1")] == ["b/2"]
    assert [i.key for i in listing(storage, "", workers, start_after="b/2")] == []
    assert not threads()


def test_workers_must_be_positive():
    with pytest.raises(ValueError):
        next(listing(bucket(["a"]), "", 0))


# -- read-ahead ------------------------------------------------------------------------------------------------------
def test_one_worker_fetches_ahead_while_the_consumer_works_but_only_so_far():
    keys = [f"k/{i:06d}" for i in range(20 * PAGE)]
    watched = Watched(bucket(keys))
    objects = watched.consume(listing(watched, "k/", 1))
    assert next(objects).key == keys[0]
    # While the consumer holds its first object, the thread lists on: the rest of the consumer's page, AHEAD
    # pages ready and one being filled; then it waits. (A bound that held would always pass the second check;
    # a thread running on unbounded would fail it.)
    limit = (AHEAD + 2) * PAGE
    assert watched.wait_for(lambda w: w.pulled == limit)
    assert not watched.wait_for(lambda w: w.pulled > limit, timeout=0.1)
    assert [info.key for info in objects] == keys[1:]
    assert watched.lead <= limit
    assert watched.starts == [""]


@pytest.mark.parametrize("workers", [2, 4, 8])
def test_ranges_fetch_a_few_pages_each_whatever_the_bucket(workers):
    keys = [f"k/{i:07d}" for i in range(60 * PAGE)]
    watched = Watched(bucket(keys))
    objects = watched.consume(listing(watched, "k/", workers))
    assert next(objects).key == keys[0]
    # per range: AHEAD pages ready, one being filled, the key past its end; the first range's head (two pages)
    limit = workers * ((AHEAD + 1) * PAGE + 1) + 2 * PAGE
    assert watched.wait_for(lambda w: w.pulled - w.probed > 3 * PAGE)  # later ranges fill meanwhile
    assert not watched.wait_for(lambda w: w.pulled - w.probed > limit, timeout=0.1)
    assert [info.key for info in objects] == keys[1:]
    assert watched.lead <= limit
    assert watched.open == 0


# -- failures and early stops ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("failure", [RetriableError("slow", code="SlowDown"), PermanentError("no", code="NoSuchKey")])
def test_a_failure_in_a_later_range_reaches_the_consumer_at_once(failure):
    keys = [f"k/{i:07d}" for i in range(40 * PAGE)]
    watched = Watched(bucket(keys), fail_in="headseg-listing-3", failure=failure)  # the fourth range's thread
    objects = listing(watched, "k/", 4)
    with pytest.raises(type(failure)) as raised:
        assert next(objects).key == keys[0]  # (unless the failure is known already)
        assert watched.failing.wait(10)  # the last range's thread has met it, the consumer is still in the first
        assert watched.wait_for(lambda w: "headseg-listing-3" not in threads())  # and it has ended, having told
        next(objects)
    assert raised.value is failure
    assert not threads() and watched.open == 0


@pytest.mark.parametrize("workers", [1, 3])
def test_a_failure_mid_listing_ends_it_after_the_objects_before_it(workers):
    keys = [f"k/{i:07d}" for i in range(10 * PAGE)]
    watched = Watched(bucket(keys), fail_at=keys[7 * PAGE + 5])
    seen: list[str] = []
    with pytest.raises(RetriableError) as raised:
        for info in listing(watched, "k/", workers):
            seen.append(info.key)
    assert raised.value is watched.failure
    assert seen == keys[: len(seen)]
    assert not threads() and watched.open == 0


def test_a_failing_probe_is_raised_as_it_is():
    keys = [f"k/{i:07d}" for i in range(10 * PAGE)]

    def hook(operation: str, key: str) -> None:
        if len(storage.done("list")) == 2:  # the first probe (the first list is the first range's)
            raise RetriableError("OSS ListObjects: connection failed", code="ConnectionError")

    storage = bucket(keys)
    storage.hook = hook
    with pytest.raises(RetriableError, match="connection failed"):
        next(listing(storage, "k/", 4))
    assert not threads()


@pytest.mark.parametrize("how", ["close", "drop", "interrupt"])
def test_stopping_early_stops_every_thread(how):
    watched = Watched(bucket([f"k/{i:07d}" for i in range(50 * PAGE)]))
    if how == "interrupt":  # Ctrl-C in the consumer's loop: unwinding drops the generator
        with pytest.raises(KeyboardInterrupt):
            for index, _info in enumerate(listing(watched, "k/", 6)):
                if index == 10:
                    raise KeyboardInterrupt
    else:
        objects = listing(watched, "k/", 6)
        assert [next(objects) for _ in range(5)]
        assert watched.wait_for(lambda w: w.pulled - w.probed >= 6 * 3 * PAGE)  # every range is up and full
        if how == "close":
            objects.close()
        del objects  # no reference left: the generator is finalized
    assert not threads()
    assert watched.open == 0


def test_start_after_is_strict_in_every_storage_twin(tmp_path):
    from headseg.local.directory import DirectoryStorage

    directory = DirectoryStorage(tmp_path)
    memory = bucket([])
    for key in ["a-b", "a.jpg", "a.jpg.bak", "a/x", "a/y/z", "a0", "b"]:
        directory.put(key, b"x", "text/plain")
        memory.put(key, b"x", "text/plain")
    for storage in (directory, memory):
        assert [i.key for i in storage.list("a", start_after="a-b")] == ["a.jpg", "a.jpg.bak", "a/x", "a/y/z", "a0"]
        assert [i.key for i in storage.list("", start_after="a.jpg.bak")] == ["a/x", "a/y/z", "a0", "b"]
        assert [i.key for i in storage.list("a/", "/", start_after="a/")] == ["a/x"]
        assert [i.key for i in storage.list("a/", start_after="a/x")] == ["a/y/z"]
