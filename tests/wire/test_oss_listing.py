"""Parallel listing with the real oss2 against the fake OSS: what `OssStorage.list` lists, in its order; the LIST
requests it adds; a failed page raised from whichever range's thread met it."""

from __future__ import annotations

import base64
import math
import threading
from collections.abc import Callable

import pytest

from headseg.function.errors import AccessDenied, RetriableError
from headseg.function.storage.oss import OssStorage
from headseg.ops.keyspace import PROBES_PER_WORKER
from headseg.ops.listing import listing
from tests.conftest import BUCKET
from tests.fakes._server import Request
from tests.fakes.oss import FakeOss
from tests.tooling import CREDENTIALS

FLAT = [f"incoming/{i:07d}.jpg" for i in range(12_345)]
AWKWARD = [f"incoming/{stem}{i:03d}" for i in range(700) for stem in
           ("a", "a-b", "a.jpg", "a.jpg.bak", "a/x", "a/x/y", "a0", "a~", "aé", "a中", "a\U0001f600", "b&<c>")]


@pytest.fixture
def storage(fake_oss: FakeOss) -> OssStorage:
    return OssStorage(BUCKET, endpoint=fake_oss.url, credentials=CREDENTIALS, region="cn-shanghai")


def fill(fake: FakeOss, keys: list[str]) -> None:
    for key in [*keys, "incominf", "incoming", "incomingz/1", "other/1"]:
        fake.put(BUCKET, key, b"")


def lists(fake: FakeOss) -> int:
    return fake.requests_by_kind()["LIST"]


def threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith("headseg-listing")]


@pytest.mark.parametrize("workers", [1, 2, 5, 8])
@pytest.mark.parametrize("keys", [FLAT, AWKWARD], ids=["flat", "awkward"])
def test_the_same_objects_in_the_same_order_for_a_few_more_requests(fake_oss, storage, keys, workers):
    fill(fake_oss, keys)
    sequential = list(storage.list("incoming/"))
    pages = lists(fake_oss)
    assert pages == math.ceil(len(keys) / 1000)

    assert list(listing(storage, "incoming/", workers)) == sequential
    added = lists(fake_oss) - 2 * pages
    if workers == 1:
        assert added == 0
    else:  # a page past each range's end and the probes
        assert 0 < added <= workers + PROBES_PER_WORKER * workers
    assert not threads()


@pytest.mark.parametrize("workers", [1, 4])
def test_small_and_empty_listings_cost_what_a_listing_costs(fake_oss, storage, workers):
    fill(fake_oss, FLAT[:1500])
    assert [i.key for i in listing(storage, "nothing/", workers)] == []
    assert [i.key for i in listing(storage, "incoming/", workers)] == FLAT[:1500]
    assert [i.key for i in listing(storage, "incoming/", workers, FLAT[1496])] == FLAT[1497:1500]
    assert lists(fake_oss) == 1 + 2 + 1


def page_after(low: str, high: str) -> Callable[[Request], bool]:
    """A matcher for one LIST page: the first that continues from a key in [low, high), then that page again
    (oss2 asks for a page three times on a 5xx)."""
    chosen: list[str] = []

    def match(request: Request) -> bool:
        token = request.param("continuation-token")
        if request.method != "GET" or request.param("list-type") != "2" or not token:
            return False
        if not chosen and low <= base64.urlsafe_b64decode(token).decode() < high:
            chosen.append(token)
        return bool(chosen) and token == chosen[0]

    return match


@pytest.mark.parametrize("workers", [1, 6])
@pytest.mark.parametrize("fault", ["server_error", "throttle", "deny"])
def test_a_failed_page_in_any_range_is_raised_as_the_listing_raises_it(fake_oss, storage, workers, fault):
    fill(fake_oss, FLAT)
    match = page_after(FLAT[7000], FLAT[11000])  # a page of the last third: of a later range, with 6 workers
    armed = getattr(fake_oss, fault)(times=1 if fault == "deny" else 3, match=match)
    expected = {"server_error": "InternalError", "throttle": "SlowDown", "deny": "AccessDenied"}[fault]

    seen: list[str] = []
    with pytest.raises(RetriableError) as raised:
        for info in listing(storage, "incoming/", workers):
            seen.append(info.key)
    assert raised.value.code == expected and isinstance(raised.value, AccessDenied) == (fault == "deny")
    assert seen == FLAT[: len(seen)] and len(seen) < 11000
    assert armed.hits == armed.times
    assert not threads()
