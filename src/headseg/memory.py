"""Memory: whether decoding an image fits the function's memory with margin, judged from its header alone."""

from __future__ import annotations

import os

from headseg.config import Config
from headseg.images import ImageInfo
from headseg.normalize import check_decode_cost

MIB = 1024 * 1024


def check_fits(image: ImageInfo, object_size: int, memory_mb: int, config: Config) -> None:
    """Raise `InvalidImage` (DecodeCost) unless decoding and normalizing `image` fits in MEMORY_FRACTION of the
    function's memory, less what the process holds already (interpreter, SDKs) and the object's own bytes."""
    fraction = config.memory_fraction
    allowed = int(memory_mb * MIB * fraction) - resident_bytes() - object_size
    check_decode_cost(
        image,
        allowed,
        max_side=config.max_image_side,
        allowance=f" at {memory_mb} MB function memory (MEMORY_FRACTION={fraction})",
        remedy="raise memorySize in s.yaml (or MEMORY_FRACTION), or upload a smaller image",
    )


def resident_bytes() -> int:
    """This process's resident memory (Linux; 0 where /proc is not there)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
