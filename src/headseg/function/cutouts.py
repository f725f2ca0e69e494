"""Cutouts: SegmentHead called, then every head's cutout downloaded, checked and stored, all heads at once.

SegmentHead's boxes are checked against the input image first: a head without a positive size, or wholly
outside the image, is dropped; one that reaches past an edge is clamped to it; each with a logged reason. The
bytes in flight (downloaded, not yet stored) stay within `in_flight_bytes`, each head counted at what its
download holds: the most its box's PNG can take, once, and its transfer buffers (`TRANSFER_BYTES`). That is
what the process holds too, as P3 measures it up to the most DOWNLOAD_WORKERS (bench/p3_cutouts.py), because
freed buffers go back to the system (`memory.release_large_buffers`).

Each head's PUT starts as soon as its download ends. When the temporary cutout URLs have expired before they
were read, SegmentHead is called once more; a second expiry goes to FC's retry. Of several heads' errors the
most decisive wins: permanent, then expired, then transient.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Callable, Iterator

from headseg.function.errors import CutoutExpired, HeadsegError, PermanentError, RetriableError
from headseg.function.run import Run
from headseg.function.segmenters import Head, Segmentation, Segmenter, SegmentInput, max_cutout_bytes

log = logging.getLogger(__name__)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: What a download holds besides its PNG: requests' 64 KiB blocks, the buffer's growth until it is large enough
#: to be mapped on its own (`memory.LARGE_BUFFER`), urllib3's buffers, oss2's reads for the PUT. Measured
#: (bench/p3_cutouts.py): about 25 KiB a download of a 160 KB cutout, 350 KiB of a 16 MB one.
TRANSFER_BYTES = 512 * 1024


@dataclass(frozen=True)
class Stored:
    """What one successful round left: the segmentation and the keys of its stored cutouts, head by head."""

    segmentation: Segmentation
    keys: list[str]


@dataclass(frozen=True)
class Cutouts:
    """Segment an image of `size` (width, height) and store its cutouts with `store(index, png) -> key`."""

    run: Run
    segmenter: Segmenter
    return_form: str | None
    store: Callable[[int, bytes], str]
    size: tuple[int, int]
    in_flight_bytes: int = 256 * 1024 * 1024

    def segment_and_store(self, image: Callable[[], SegmentInput]) -> Stored:
        """`image()` gives a fresh input for every SegmentHead attempt (a signed URL is short-lived)."""
        try:
            return self._round(image)
        except CutoutExpired:
            log.warning("cutout URLs expired; calling SegmentHead again")
            return self._round(image)

    def _round(self, image: Callable[[], SegmentInput]) -> Stored:
        run = self.run
        with run.timed("segment"):
            answer = run.retry("SegmentHead", lambda: self.segmenter.segment(image(), self.return_form, run.budget))
        segmentation = Segmentation(answer.request_id, valid_heads(answer.heads, self.size))
        with run.timed("cutouts"):
            in_flight = ByteBudget(self.in_flight_bytes)
            stores = [run.submit(self._store_one, index, head, in_flight) for index, head in enumerate(segmentation.heads)]
            return Stored(segmentation, _results(stores))

    def _store_one(self, index: int, head: Head, in_flight: "ByteBudget") -> str:
        with in_flight.hold(max_cutout_bytes(head) + TRANSFER_BYTES):
            png = self.run.retry("download cutout", lambda: self._download(head))
            return self.store(index, png)

    def _download(self, head: Head) -> bytes:
        png = self.segmenter.fetch(head, self.run.budget)
        if not png.startswith(PNG_MAGIC):
            raise RetriableError("the cutout is not a PNG", code="BadCutout")
        return png


class ByteBudget:
    """At most `limit` bytes held at once; a single holder larger than the limit waits until it is alone."""

    def __init__(self, limit: int) -> None:
        self.limit, self.held = limit, 0
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, size: int) -> Iterator[None]:
        size = min(size, self.limit)
        with self._changed:
            self._changed.wait_for(lambda: self.held + size <= self.limit)
            self.held += size
        try:
            yield
        finally:
            with self._changed:
                self.held -= size
                self._changed.notify_all()


def valid_heads(heads: list[Head], size: tuple[int, int]) -> list[Head]:
    """The heads whose boxes make sense in an image of `size`, clamped to it; the others dropped, logged."""
    width, height = size
    valid = []
    for index, head in enumerate(heads):
        box = (head.x, head.y, head.width, head.height)
        left, top = max(0, head.x), max(0, head.y)
        right, bottom = min(width, head.x + head.width), min(height, head.y + head.height)
        if head.width <= 0 or head.height <= 0 or right <= left or bottom <= top:
            why = "has no positive size" if head.width <= 0 or head.height <= 0 else f"lies outside the {width}x{height} image"
            log.warning("dropped a head SegmentHead returned", extra={"fields": {"head": index, "box": box, "why": why}})
            continue
        clamped = (left, top, right - left, bottom - top)
        if clamped != box:
            log.warning("clamped a head to the image", extra={"fields": {"head": index, "box": box, "clamped": clamped}})
        valid.append(replace(head, x=left, y=top, width=right - left, height=bottom - top))
    return valid


def _results(futures: list[Future[str]]) -> list[str]:
    """Every future's key, or the most decisive of their errors once all have ended."""
    keys, errors = [], []
    for future in futures:
        try:
            keys.append(future.result())
        except HeadsegError as exc:
            errors.append(exc)
    if errors:
        raise min(errors, key=_rank)
    return keys


def _rank(error: HeadsegError) -> int:
    if isinstance(error, PermanentError):
        return 0
    return 1 if isinstance(error, CutoutExpired) else 2
