"""SegmentHead's documented input limits, in one place: the function checks and normalizes against them, the
configuration takes its defaults from them, and the SegmentHead server (`headseg serve`, the tests' fake) enforces
them. From the API's page: JPEG, PNG or BMP; at most 3 MB; larger than 32x32 and smaller than 2000x2000 px."""

from __future__ import annotations

from dataclasses import dataclass

#: Formats SegmentHead accepts as they are.
SEGMENTHEAD_FORMATS = frozenset({"JPEG", "PNG", "BMP"})


@dataclass(frozen=True)
class Limits:
    """SegmentHead's input limits (the defaults are the service's), and the guard against decompression bombs."""

    max_bytes: int = 3 * 1024 * 1024
    min_side: int = 33
    max_side: int = 1999
    max_pixels: int = 100_000_000
