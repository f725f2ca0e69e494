"""The fake OSS's listing pages, found by bisection of a sorted key index kept on put and delete, are those of
the plain definition: every key under the prefix after the marker, in order, folders rolled up."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes.oss import OssState, StoredObject

CHARS = "ab/-.中\U0010ffff"
NAMES = st.text(CHARS, min_size=1, max_size=5)


def defined_page(
    keys: set[str], prefix: str, delimiter: str, after: str, max_keys: int
) -> tuple[list[tuple[str, bool]], bool]:
    """A page as OSS defines it, computed from scratch over every key: (name, whether a folder), truncated."""
    entries: list[tuple[str, bool]] = []
    for key in sorted(k for k in keys if k.startswith(prefix) and k > after):
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        entry = (key, False) if cut < 0 else (key[: cut + len(delimiter)], True)
        if entry not in entries and (cut < 0 or entry[0] > after):
            entries.append(entry)
    return entries[:max_keys], len(entries) > max_keys


@settings(max_examples=400, deadline=None)
@given(
    operations=st.lists(st.tuples(st.booleans(), NAMES), max_size=60),
    prefix=st.sampled_from(["", "a", "a/", "中", "\U0010ffff"]),
    delimiter=st.sampled_from(["", "/", "b", "\U0010ffff", "a/"]),
    after=st.one_of(st.just(""), NAMES),
    max_keys=st.integers(1, 6),
)
def test_pages_are_the_defined_ones_whatever_was_put_and_deleted(operations, prefix, delimiter, after, max_keys):
    state, keys = OssState(), set()
    state.create_bucket("b")
    for put, key in operations:
        if put:
            state.put("b", StoredObject(key, key.encode(), "text/plain", 0))
            keys.add(key)
        else:
            state.delete("b", key)
            keys.discard(key)
    page, truncated = state.list("b", prefix, delimiter, after, max_keys)
    assert ([(name, obj is None) for name, obj in page], truncated) == defined_page(
        keys, prefix, delimiter, after, max_keys
    )
    assert all(obj is None or obj.key == name for name, obj in page)
    assert state.keys("b", prefix) == sorted(k for k in keys if k.startswith(prefix))
