"""standing.classify by marks: every source in exactly one class, whatever its key sorts next to, streamed from
the two listings in bounded memory; on the twin bucket."""

from __future__ import annotations

import json
from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from headseg.function.config import Config
from headseg.function.layout import Mark
from headseg.function.storage import ObjectInfo
from headseg.ops import merge
from headseg.ops.standing import classify
from tests.twins import MemoryStorage

CONFIG = Config(input_prefix="in/", output_prefix="out/")
# keys that sort around each other's results folders: "a" < "a-b" < "a.b" < "a/x", but "a-b/" < "a.b/" < "a/"
SEGMENTS = st.sampled_from(["a", "a-b", "a.b", "a b", "a/x", "a/x/y", "b", "é", "\U0001f600", "a!", "a0", "~"])
KEYS = st.lists(SEGMENTS, min_size=1, max_size=3).map(lambda parts: "in/" + "/".join(parts))
STATES = st.sampled_from(["pending", "done", "stale", "failed", "retriable", "orphans", "done+old", "failed+retriable", "other-form"])


def put_mark(storage: MemoryStorage, key: str, kind: str, etag: str, detail: str = "-") -> None:
    storage.put(CONFIG.layout(key).mark(Mark(kind, etag, 0, 1, detail)), b"mark", "text/plain")


def seeded(states: dict[str, str]) -> tuple[MemoryStorage, dict[str, str]]:
    """A twin bucket: each key in the state asked, stamped for marks; and the class each key should get."""
    storage = MemoryStorage()
    storage.put("out/.settled.json", json.dumps({"prefixes": ["in/"]}).encode(), "application/json")
    expected = {}
    for key, state in states.items():
        if state != "orphans":
            storage.put(key, key.encode(), "image/jpeg")
        etag = storage.head(key).etag if state != "orphans" else "0" * 32
        old = "F" * 32
        if state in ("done", "done+old", "orphans"):
            put_mark(storage, key, "done", etag)
        if state == "done+old":
            put_mark(storage, key, "failed", old, "InvalidImage.NotImage")
        if state == "stale":
            put_mark(storage, key, "done", old)
        if state in ("failed", "failed+retriable"):
            put_mark(storage, key, "failed", etag, "InvalidImage.NotImage")
        if state in ("retriable", "failed+retriable"):
            put_mark(storage, key, "retriable", etag, "Throttling")
        if state == "other-form":
            put_mark(storage, key, "done", etag, "mask")
        expected[key] = {"done+old": "done", "failed+retriable": "failed", "other-form": "stale"}.get(state, state)
    return storage, expected


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(KEYS, STATES, min_size=1, max_size=12))
def test_every_source_gets_the_class_its_marks_say_once_in_rank_order(states):
    storage, expected = seeded(states)
    entries = list(classify(storage, "in/", CONFIG))
    assert {e.key: e.name for e in entries} == expected
    assert len(entries) == len(expected)
    assert [e.key for e in entries] == sorted(expected, key=lambda key: key + "/\U0010ffff")
    assert not [call for call in storage.calls if call[0] == "get" and call[1] != "out/.settled.json"]  # nothing read
    assert {e.code for e in entries if e.name == "failed"} <= {"InvalidImage.NotImage"}


def test_without_a_stamp_the_records_are_read_and_marks_are_not_results():
    storage, _ = seeded({"in/a.jpg": "done"})
    storage.delete("out/.settled.json")
    [entry] = classify(storage, "in/", CONFIG)
    assert entry.name == "pending" and entry.reads == 0  # a mark alone is no record: 0.2 would redo it too


def test_a_mark_that_is_not_one_is_ignored_and_a_key_too_long_fails_from_the_key_alone():
    storage, _ = seeded({"in/a.jpg": "pending"})
    storage.put("out/.settled/in/a.jpg/done.not-a-number.x.y.-", b"", "text/plain")
    storage.put("out/.settled/in/a.jpg/notes.txt", b"", "text/plain")
    long_key = "in/" + "k" * 1000
    storage.put(long_key, b"x", "image/jpeg")
    entries = {e.key: e for e in classify(storage, "in/", CONFIG)}
    assert entries["in/a.jpg"].name == "pending"  # no name there says how a version settled
    assert entries[long_key].name == "failed" and entries[long_key].code == "KeyTooLong"


def flat(n: int, pulled: list[int]) -> Iterator[ObjectInfo]:
    for i in range(n):
        pulled[0] += 1
        yield ObjectInfo(f"in/{i:07d}.jpg", 1, "E", "", 0)


def test_the_merge_holds_a_few_objects_not_the_listing():
    """The consumer's lag behind the listing stays bounded: nothing accumulates whatever the listing's length."""
    pulled = [0]
    lag = 0
    for count, _info in enumerate(merge.ranked(flat(50_000, pulled)), start=1):
        lag = max(lag, pulled[0] - count)
    assert count == 50_000 and lag <= 1
    nested = [ObjectInfo("in/a" + "-" * depth, 1, "E", "", 0) for depth in range(200)]  # each ranks before the last
    assert [i.key for i in merge.ranked(nested)] == [i.key for i in reversed(nested)]
