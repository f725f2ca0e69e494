"""Memory: whether decoding an image fits the function's memory with margin, judged from its header alone."""

from __future__ import annotations

from headseg.config import Config
from headseg.images import ImageInfo
from headseg.normalize import check_decode_cost

MIB = 1024 * 1024
M_MMAP_THRESHOLD = -3  # mallopt's parameter, from glibc's <malloc.h>
LARGE_BUFFER = MIB  # allocations this large or larger get a mapping of their own, unmapped when freed


def release_large_buffers(threshold: int = LARGE_BUFFER) -> bool:
    """Have glibc's malloc map every allocation of `threshold` bytes or more on its own, and unmap it when it is
    freed, for the rest of the process; whether it could (False off glibc).

    By default glibc raises that threshold to the largest buffer freed so far (up to 32 MB), then serves such
    buffers from per-thread arenas that keep them resident once freed: measured (bench/p3_cutouts.py), 16
    threads downloading 16 MB cutouts peaked at 26 cutouts' worth with 10 in flight, and a warm instance would
    keep its last image's buffers. With the threshold fixed, resident memory follows what is alive: what the
    decode estimate and the in-flight budget count.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))


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
