"""Memory: the one home of "does this fit": what decoding and normalizing an image will take, judged from its
header alone (`decode_cost`, measured against real peaks by bench P3), whether that fits the function's memory
with margin (`check_fits`), and how freed buffers go back to the system (`release_large_buffers`)."""

from __future__ import annotations

import functools
import math

from headseg.function import images
from headseg.function.config import Config
from headseg.function.errors import InvalidImage
from headseg.function.images import ImageInfo
from headseg.function.normalize import CROP_INSTEAD, PLAIN_MODES, REDUCING_GAP, SIXTEEN_BIT, Limits, draft_request, fit

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


#: Bytes Pillow keeps per pixel of a mode (RGB is stored as RGBX, LA as LXXA); every mode not listed takes 4.
_STORED_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}

#: Bytes a decoder takes per decoded pixel beyond the Pillow image it fills: (while decoding, held until the
#: opened image is dropped). Measured as VmHWM growth in fresh processes, reset with /proc/self/clear_refs
#: around each Pillow call normalize() makes, at 12 and 24 MP (Pillow 13, pi-heif 1.4); bench/p3_memory.py
#: measures normalize()'s own peak that way for every format and mode. WebP: 16 B/px in all while decoding
#: (libwebp's two RGBA canvases, the frame copied out to Python, Pillow's image), 8 of them held by the open
#: WebPImageFile (its decoder keeps the canvases); animated and lossless RGBA alike. HEIF: 7 (libheif's
#: interleaved RGB, then Pillow's image), RGBA 8, 10-bit 7.5, none held. JPEG, PNG, TIFF, BMP, GIF: Pillow's
#: image alone (Adam7, RLE, multi-frame and strips of a few rows too); a progressive JPEG adds
#: `coefficient_bytes`, a compressed TIFF its `strip_bytes` (3 B/px more for a one-strip RGB, 6 for 16-bit RGB).
DECODER_BYTES_PER_PIXEL: dict[str, tuple[float, float]] = {"WEBP": (12.0, 8.0), "HEIF": (3.0, 0.0)}


def stored_bytes(mode: str) -> int:
    """Bytes a decoded pixel of `mode` takes in Pillow."""
    return _STORED_BYTES.get(mode, 4)


def decoder_bytes(info: ImageInfo, pixels: int) -> tuple[int, int]:
    """What decoding `pixels` of the image takes beyond Pillow's own image: (at the peak, held afterwards)."""
    during, held = DECODER_BYTES_PER_PIXEL.get(info.format, (0.0, 0.0))
    if info.format == "HEIF":
        during += (info.mode == "RGBA") + (info.bit_depth > 8)  # 10/12-bit: decoded to 16 bits a sample first
        held = during if info.frames > 1 else held  # pi-heif keeps a sequence's decoded frames
    coefficients = info.coefficient_bytes if info.format == "JPEG" else 0
    return math.ceil(during * pixels) + coefficients + info.strip_bytes, math.ceil(held * pixels)


#: normalize() end to end at 24 to 27 MP, VmHWM growth in a fresh process, bytes per pixel of the full image
#: (the codecs' own are DECODER_BYTES_PER_PIXEL): JPEG, CMYK, MPO 2.1 (decoded at 1/2), progressive 4.0
#: (4:4:4: 7.0, CMYK: 9.0); PNG RGB, P, 1-bit, Adam7, TIFF, GIF, BMP (RLE8 too) 5.8, RGBA, LA, P with
#: transparency 9.8, 16-bit 5.0, turned (EXIF 6) 8.0; TIFF in one compressed strip 7.0 (16-bit RGB 10.0), CMYK
#: 8.0, 32-bit integer 9.0, float 9.0 (converted to RGB by way of L); WebP 16.0, RGBA 17.8; HEIC 7.0, RGBA 9.8,
#: 10-bit 7.5, three images 8.9. The model before DECODE_COST_SAFETY is within 3 % of each (6 % for a grayscale
#: JPEG's 15 MB); decode_cost/measured: 1.12 to 1.26 there, 1.10 to 1.15 at 48 to 100 MP, up to 1.45 for peaks
#: under 50 MB (DECODE_COST_SLACK).
DECODE_COST_SAFETY = 1.1  # the estimate is the modelled peak times this, plus DECODE_COST_SLACK
DECODE_COST_SLACK = 8 * 1024 * 1024  # encoder buffers, the shrink loop, allocator rounding


def decode_cost(info: ImageInfo, max_side: int) -> int:
    """Estimated peak bytes `normalize()` allocates for an image with this header, within `max_side`.

    From the header alone. A JPEG to be downscaled decodes at 1/2, 1/4 or 1/8 (`draft`), a progressive one
    still buffering its full-size coefficients; every other format decodes at full size. Then each working copy
    while the previous is alive: EXIF transposition, conversion to RGB/RGBA/L, the downscale. Conservative, and
    normalize()'s alone: the object's bytes and what the caller holds are not in it.
    """
    scale, target = fit(info.upright_size, max_side)
    stored = (info.width, info.height)
    wanted = draft_request(stored, scale)
    reduction = images.jpeg_reduction(stored, wanted) if info.format == "JPEG" and scale < 1 else 1
    size = (-(-info.width // reduction), -(-info.height // reduction))
    pixels = size[0] * size[1]
    per_pixel = stored_bytes(info.mode)
    live = per_pixel * pixels  # the decoded image, alive until normalize() returns
    during, kept = decoder_bytes(info, pixels)  # kept: until the opened image is replaced by its first copy
    peak = live + during
    if info.orientation != 1:  # ImageOps.exif_transpose (TIFF: Pillow's own, while loading)
        peak, kept = max(peak, live + kept + per_pixel * pixels), 0
        size = (size[1], size[0]) if info.orientation in (5, 6, 7, 8) else size
    alpha = info.mode == "RGBA"
    if info.mode in SIXTEEN_BIT:  # point() into a second 16-bit image, then convert("L")
        peak = max(peak, live + kept + per_pixel * pixels + pixels)
        live, kept, per_pixel = pixels, 0, 1
    elif info.mode not in PLAIN_MODES:  # convert("RGB" or "RGBA"), 4 bytes a pixel either way
        alpha = info.mode in ("LA", "PA", "RGBa", "La") or (info.mode == "P" and info.transparency)
        peak = max(peak, live + kept + (_intermediate_bytes(info.mode, "RGBA" if alpha else "RGB") + 4) * pixels)
        live, kept, per_pixel = 4 * pixels, 0, 4
    if size != target:
        peak = max(peak, live + kept + _downscale_cost(size, target, per_pixel, alpha, reduction, max_side))
    return math.ceil(peak * DECODE_COST_SAFETY) + DECODE_COST_SLACK


@functools.cache
def _intermediate_bytes(mode: str, target: str) -> int:
    """Bytes a pixel of the image convert() makes on its way from `mode` to `target` when Pillow has no direct
    converter: it converts to the mode's base first (F to L, then L to RGB: measured 9 B/px for a 32-bit float
    TIFF, not 8). 0 when it converts directly; asked of Pillow's own converter, on one pixel."""
    from PIL import Image

    try:
        pixel = Image.new(mode, (1, 1))
        base = Image.getmodebase(mode)
    except (ValueError, KeyError):  # a mode Pillow does not make: count the largest intermediate
        return 4
    try:
        pixel.im.convert(target)
    except ValueError:
        return stored_bytes(base)
    return 0


def _downscale_cost(
    size: tuple[int, int], target: tuple[int, int], per_pixel: int, alpha: bool, reduction: int, max_side: int
) -> int:
    """What `_downscale` allocates: a crop, or resize()'s premultiplied RGBA copy, reduce(), horizontal pass."""
    if reduction > 1 and 0 < max(size) - max_side <= CROP_INSTEAD:
        return per_pixel * min(size[0], max_side) * min(size[1], max_side)
    working = per_pixel * size[0] * size[1] if alpha else 0
    factor = (int(size[0] / target[0] / REDUCING_GAP) or 1, int(size[1] / target[1] / REDUCING_GAP) or 1)
    if factor != (1, 1):
        size = (-(-size[0] // factor[0]), -(-size[1] // factor[1]))
        working += per_pixel * size[0] * size[1]
    if size[0] != target[0]:  # the horizontal pass: the target's width, the source's height
        working += per_pixel * target[0] * size[1]
    return working + per_pixel * target[0] * target[1]


def _megabytes(count: int) -> str:
    """Bytes in Function Compute's units (its memorySize MB are MiB)."""
    mib = count / 2**20
    return f"{mib / 1024:.1f} GB" if mib >= 1024 else f"{mib:.0f} MB"


def check_decode_cost(
    info: ImageInfo, allowed_bytes: int, *, max_side: int = Limits.max_side, allowance: str = "", remedy: str = ""
) -> int:
    """Refuse, from its header, an image that normalizing would need more than `allowed_bytes` for; return the
    estimate (`decode_cost`) otherwise. Permanent: the same object with the same memory fails the same way.

    `allowance` says where `allowed_bytes` comes from and `remedy` how to raise it (default: memorySize in
    s.yaml), both for the reason: e.g. " at 512 MB function memory (MEMORY_FRACTION=0.6)", "raise memorySize in
    s.yaml or MAX_DECODE_BYTES".
    """
    cost = decode_cost(info, max_side)
    if cost > allowed_bytes:
        kind = f"{info.format} {info.width}x{info.height} {info.mode}{' progressive' if info.progressive else ''}"
        raise InvalidImage(
            f"{kind} needs ~{_megabytes(cost)} to decode and normalize, over the {_megabytes(allowed_bytes)} "
            f"allowed{allowance}: {remedy or 'raise memorySize in s.yaml'}",
            code="InvalidImage.DecodeCost",
        )
    return cost
