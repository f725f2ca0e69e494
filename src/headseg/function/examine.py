"""Examine: what the object is, whether SegmentHead can take it, and the normalized copy it needs if not.

`examine` is the one place a verdict on an object's content is reached (not an image, corrupt, too small, too
costly to decode), and it gives one only on bytes that verified: the whole object, which storage checks against
OSS's CRC64. A verdict reached on the first bytes alone (a partial read has no checksum) is reached again on the
whole object before it stands, so bytes corrupted in transfer are retried, never taken for the object's fault.
Every verdict is an `InvalidImage`: recorded for the version it was reached on, so that version is settled for
the function's next delivery, `status` and `backfill` alike (an empty object or a text file included).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from headseg.function import cputime, images, memory, nonimage, normalize
from headseg.function.config import Config
from headseg.function.errors import InvalidImage
from headseg.function.run import Run
from headseg.function.storage import ObjectInfo, Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inspected:
    """What the header says, and the bytes held: the first ones, or all of them when the header needed it."""

    image: images.ImageInfo
    data: bytes


def examine(
    run: Run, storage: Storage, info: ObjectInfo, head: bytes, config: Config
) -> tuple[Inspected, normalize.Normalized | None]:
    """The object's header read from `head` (its first bytes) and, when SegmentHead cannot take it as it is, a
    normalized copy; raises `InvalidImage` (not an image, corrupt, too small...) on verified bytes only."""
    if info.size > config.max_object_bytes:  # from the object's metadata: no byte of it needs reading
        raise InvalidImage(
            f"object is {info.size} bytes, over MAX_OBJECT_BYTES={config.max_object_bytes}: refused unread",
            code="InvalidImage.Size",
        )
    data = head
    while True:
        try:
            inspected = _inspect(run, info, data, config, in_worker=data is not head)
            return inspected, _normalize(run, storage, info, data, inspected, config)
        except images.NeedMoreBytes:  # a partial read ended inside the header
            pass
        except InvalidImage:
            if len(data) >= info.size:
                raise
            log.info("verdict on a partial read: checking it on the whole object", extra={"fields": {"size": info.size}})
        data = whole(run, storage, info, data)  # the whole object: the loop's second and last turn


def whole(run: Run, storage: Storage, info: ObjectInfo, held: bytes) -> bytes:
    """The whole object: the bytes held when they are all of it, else one more (verified) read of at most
    MAX_OBJECT_BYTES, checked before."""
    if len(held) >= info.size:
        return held
    return run.retry(f"read {info.key!r}", lambda: storage.get(info.key, None, run.budget))[1]


def _inspect(run: Run, info: ObjectInfo, data: bytes, config: Config, in_worker: bool) -> Inspected:
    """Format, size and dimensions from `data` (the first bytes, or all of them); refuse what no normalization
    can rescue. The first bytes (at most HEADER_BYTES) are parsed here; a whole object read for its header, in a
    worker killed at the deadline (opening some images walks millions of markers). Raises `NeedMoreBytes` when
    a partial read ended inside the header."""
    if images.sniff(data) is None:
        raise InvalidImage(nonimage.describe(data, info.size), code="InvalidImage.NotImage")
    if in_worker:
        image = cputime.read_header(data, run.budget, config)
    else:
        image = images.read_header(data, complete=len(data) >= info.size)
    normalize.check_pixels(image, config.limits)
    images.check_min_side(image, config.min_image_side)
    return Inspected(image, data)


def _normalize(
    run: Run, storage: Storage, info: ObjectInfo, head: bytes, inspected: Inspected, config: Config
) -> normalize.Normalized | None:
    """A copy within SegmentHead's limits, or None when it takes the object as it is; refused first when its
    memory or, from the first bytes of `head` (the bytes held), its CPU time cannot fit."""
    why = normalize.reasons(inspected.image, info.size, config.limits)
    if not why:
        return None
    memory.check_fits(inspected.image, info.size, run.memory_mb, config)
    cputime.check_head(inspected.image, head, info.size, run.budget, config)
    with run.timed("normalize"):
        normalized = cputime.normalize(whole(run, storage, info, inspected.data), inspected.image, run.budget, config)
    log.info("normalized", extra={"fields": {"why": why, "steps": list(normalized.steps)}})
    return normalized
