"""Where to cut a listing into ranges of about equal size, knowing nothing of its keys but the first two pages:
a few probes find the last key, and the span between is cut evenly, keys read as numbers.

Probes
    Each probe is a `storage.list` after a point, of which only the first page is read (one request). Galloping
    first (points 1, 16, 256... two-page spans past the highest key known, each probe's last key raising that),
    then halving (geometrically) the gap between the highest key known and the lowest point known to have
    nothing after it, until that gap is within 1 / (2 x workers) of the span from the first key, or the probes
    run out (PROBES_PER_WORKER x workers). A probe whose page is not full has found the last key. The span from
    the head's last key to that end is then cut into `workers` equal parts, or fewer if the head's density says
    a part would hold less than a page (boundaries that coincide are dropped). Measured on 100k to 2M keys of
    the usual shapes with 2 to 16 workers: 3 to 11 probes.

Keys as numbers
    Each character after the prefix (up to `_RESOLUTION` past where the head's first and last keys part) is a
    digit, 1 + its place in an alphabet of the characters seen in the keys sampled (the head and every probe's
    page), 0 past the key's end. A boundary is the string of a number, so it is made of characters seen. Key
    order is number order (a character never seen counts as the seen one below it followed by the highest
    digits), and the numbers spread evenly for fixed-width numbers, hex digests, UUIDs and dates, which raw code
    points would not (between "9" and "a" lie 39 of them). Keys bunched in a few places, or a last key a digit
    longer than the rest, give unequal ranges; a boundary is any string, so never a wrong listing.
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
from collections.abc import Iterable, Iterator

from headseg.function.storage import MAX_KEY_BYTES, ObjectInfo, Storage

PROBES_PER_WORKER = 3  # at most this many probes (one page each) per worker
GROWTH = 16  # each galloping probe lands this many times farther than the last
_RESOLUTION = 12  # characters of a key read past where the head's first and last keys part


def boundaries(storage: Storage, prefix: str, head: list[ObjectInfo], workers: int, page: int) -> list[str]:
    """Up to workers - 1 increasing strings above the last key of `head` (the listing's first two pages of
    `page` objects) that cut the rest of the listing under `prefix` into about equal ranges."""
    return _Sampler(storage, prefix, head, workers, page).boundaries()


def close(pages: Iterator[ObjectInfo]) -> None:
    """Close a listing (a generator) read only in part."""
    end = getattr(pages, "close", None)
    if end is not None:
        end()


class _Sampler:
    """The probes' state: the alphabet learnt so far, and how many probes are left."""

    def __init__(self, storage: Storage, prefix: str, head: list[ObjectInfo], workers: int, page: int) -> None:
        self._storage, self._prefix, self._workers, self._page = storage, prefix, workers, page
        self._first, self._last = head[0].key, head[-1].key
        parting = os.path.commonprefix([self._first[len(prefix) :], self._last[len(prefix) :]])
        self._depth = len(parting) + _RESOLUTION
        self._seen: set[int] = set()
        self._alphabet: list[int] = []
        self._learn(info.key for info in head)
        self._probes = PROBES_PER_WORKER * workers

    def boundaries(self) -> list[str]:
        low, high = self._last, None  # the highest key known to exist; a point with nothing after it
        growth = 1
        while high is None and self._probes:  # gallop: 1, 16, 256... head spans past the highest key known
            span = self._value(self._last) - self._value(self._first)  # (in the alphabet as learnt so far)
            low, high = self._probe(self._key(self._value(low) + max(span, 1) * growth), low, high)
            growth *= GROWTH
        while high is not None and self._probes:  # halve the gap geometrically (in distance from the first key)
            first, bottom, top = self._value(self._first), self._value(low), self._value(high)
            if top - bottom <= (bottom - first) // (2 * self._workers):
                break
            middle = self._key(first + math.isqrt((bottom - first) * (top - first)))
            if not bottom < self._value(middle) < top:
                break  # the halfway point rounds onto an end: close enough
            low, high = self._probe(middle, low, high)
        first, last, end = self._value(self._first), self._value(self._last), self._value(low)
        if high is not None:
            end = (end + self._value(high)) // 2
        pages = 2 * (end - last) // max(last - first, 1)  # estimated from the head's density
        parts = max(1, min(self._workers, pages))  # no range expected to hold less than a page
        bounds: list[str] = []
        for part in range(1, parts):
            bound = self._key(last + (end - last) * part // parts)
            if bound > (bounds[-1] if bounds else self._last):
                bounds.append(bound)
        return bounds

    def _probe(self, point: str, low: str, high: str | None) -> tuple[str, str | None]:
        """One page after `point`: the new (low, high)."""
        self._probes -= 1
        pages = iter(self._storage.list(self._prefix, start_after=point))
        try:
            keys = [info.key for info in itertools.islice(pages, self._page)]
        finally:
            close(pages)
        self._learn(keys)
        if not keys:
            return low, point
        low = max(low, keys[-1])
        return (low, low) if len(keys) < self._page else (low, high)  # a page not full ends the listing

    def _suffix(self, key: str) -> str:
        return key[len(self._prefix) : len(self._prefix) + self._depth]

    def _learn(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._seen.update(map(ord, self._suffix(key)))
        self._alphabet = sorted(self._seen)

    def _value(self, key: str) -> int:
        """The key as a number: a digit per character, 1 + its place in the alphabet, 0 past the key's end. A
        character never sampled counts as the one below it followed by the highest digits (as the key's end if
        none is below it): the order is kept, ties aside."""
        alphabet, radix, suffix, number = self._alphabet, len(self._alphabet) + 1, self._suffix(key), 0
        for position in range(self._depth):
            rest = self._depth - position - 1
            if position == len(suffix):
                return number * radix ** (rest + 1)
            place = bisect.bisect_left(alphabet, ord(suffix[position]))
            if place < len(alphabet) and alphabet[place] == ord(suffix[position]):
                number = number * radix + place + 1
            elif place:
                return (number * radix + place + 1) * radix**rest - 1
            else:
                return number * radix ** (rest + 1)
        return number

    def _key(self, number: int) -> str:
        """The string (under the prefix) of a number, within MAX_KEY_BYTES."""
        alphabet, radix, digits = self._alphabet, len(self._alphabet) + 1, []
        number = min(number, radix**self._depth - 1)
        for _ in range(self._depth):
            number, digit = divmod(number, radix)
            digits.append(digit)
        chars = itertools.takewhile(bool, reversed(digits))
        key = self._prefix + "".join(chr(alphabet[digit - 1]) for digit in chars)
        while len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
            key = key[:-1]
        return key
