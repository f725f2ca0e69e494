"""Memory: whether decoding an image fits the function's memory with margin, judged from its header alone."""

from __future__ import annotations

from headseg.config import Config
from headseg.images import ImageInfo
from headseg.normalize import check_decode_cost

MIB = 1024 * 1024


def check_fits(image: ImageInfo, object_size: int, memory_mb: int, config: Config) -> None:
    """Raise `InvalidImage` (DecodeCost) unless decoding and normalizing `image` fits in MEMORY_FRACTION of the
    function's memory, less what an instance holds before any image (MEMORY_RESERVED_MB: interpreter, SDKs) and
    the object's own bytes."""
    fraction = config.memory_fraction
    allowed = int((memory_mb * fraction - config.memory_reserved_mb) * MIB) - object_size
    check_decode_cost(
        image,
        allowed,
        max_side=config.max_image_side,
        allowance=f" at {memory_mb} MB function memory (MEMORY_FRACTION={fraction})",
        remedy="raise memorySize in s.yaml (or MEMORY_FRACTION), or upload a smaller image",
    )
