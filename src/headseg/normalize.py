"""Normalization: bring an image SegmentHead would refuse within its limits, and map results back.

The normalized copy is upright (EXIF orientation applied), fits within the maximum side, is a JPEG (a PNG when
it has transparency), and is at most the maximum size. Boxes found on it map back to the original image, as
displayed, with `to_original`. JPEGs are decoded at reduced size (`draft`) when they are to be downscaled, so
an 8000x6000 photo never lives in memory at full resolution. Pillow is imported lazily.
"""

from __future__ import annotations

import functools
import io
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from headseg import images
from headseg.errors import InvalidImage
from headseg.images import SEGMENTHEAD_FORMATS, ImageInfo, exif_orientation, register_heif, sniff, stored_size

if TYPE_CHECKING:  # Pillow itself is imported where it is used
    from PIL import Image

#: Modes SegmentHead is known to take as they are; anything else (CMYK, 16-bit, palette, LA, 1-bit) is converted.
PLAIN_MODES = frozenset({"RGB", "L", "RGBA"})
JPEG_QUALITIES = (90, 80, 70, 60)
SHRINK_STEP = 0.8  # when even the lowest quality is too large, downscale by this and try again
CROP_INSTEAD = 8  # when the decoder's exact reduction overshoots the limit by at most this many px, crop them
REDUCING_GAP = 3.0  # resize() first reduces by a whole factor when the image is this many times the target


@dataclass(frozen=True)
class Limits:
    """SegmentHead's input limits, and the guard against decompression bombs."""

    max_bytes: int = 3 * 1024 * 1024
    min_side: int = 33
    max_side: int = 1999
    max_pixels: int = 100_000_000


@dataclass(frozen=True)
class Normalized:
    """The normalized image and how it relates to the original (upright) image."""

    data: bytes
    format: str
    width: int
    height: int
    original_width: int
    original_height: int
    steps: tuple[str, ...]
    scale: float = 1.0  # normalized pixels per original pixel; the normalized image starts at the original's top left

    def to_original(self, x: int, y: int, width: int, height: int) -> tuple[int, int, int, int]:
        """A box on the normalized image, in the original upright image's pixels."""
        left, top = round(x / self.scale), round(y / self.scale)
        right = min(self.original_width, round((x + width) / self.scale))
        bottom = min(self.original_height, round((y + height) / self.scale))
        return left, top, right - left, bottom - top


def reasons(info: ImageInfo, size: int, limits: Limits) -> list[str]:
    """Why the image cannot go to SegmentHead as it is; empty when it can."""
    found = []
    if info.format not in SEGMENTHEAD_FORMATS:
        found.append(f"format {info.format}")
    if info.orientation != 1:
        found.append(f"EXIF orientation {info.orientation}")
    if info.mode not in PLAIN_MODES:
        found.append(f"mode {info.mode}")
    if max(info.width, info.height) > limits.max_side:
        found.append(f"{info.width}x{info.height} px")
    if size > limits.max_bytes:
        found.append(f"{size} bytes")
    return found


def check_pixels(info: ImageInfo, limits: Limits) -> None:
    """Refuse decompression bombs from the header alone, before anything is decoded."""
    if info.width * info.height > limits.max_pixels:
        raise InvalidImage(
            f"image claims {info.width}x{info.height} px, over MAX_PIXELS={limits.max_pixels}: refused unread "
            "(a decompression bomb, or a photo too large to process)",
            code="InvalidImage.TooManyPixels",
        )


_SIXTEEN_BIT = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})  # made L by point() then convert()

#: normalize() end to end at 24 to 27 MP, VmHWM growth in a fresh process, bytes per pixel of the full image
#: (the codecs' own are images.DECODER_BYTES_PER_PIXEL): JPEG, CMYK, MPO 2.1 (decoded at 1/2), progressive 4.0
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
    scale, target = _fit(info.upright_size, max_side)
    stored = (info.width, info.height)
    wanted = _draft_request(stored, scale)
    reduction = images.jpeg_reduction(stored, wanted) if info.format == "JPEG" and scale < 1 else 1
    size = (-(-info.width // reduction), -(-info.height // reduction))
    pixels = size[0] * size[1]
    per_pixel = images.stored_bytes(info.mode)
    live = per_pixel * pixels  # the decoded image, alive until normalize() returns
    during, kept = images.decoder_bytes(info, pixels)  # kept: until the opened image is replaced by its first copy
    peak = live + during
    if info.orientation != 1:  # ImageOps.exif_transpose (TIFF: Pillow's own, while loading)
        peak, kept = max(peak, live + kept + per_pixel * pixels), 0
        size = (size[1], size[0]) if info.orientation in (5, 6, 7, 8) else size
    alpha = info.mode == "RGBA"
    if info.mode in _SIXTEEN_BIT:  # point() into a second 16-bit image, then convert("L")
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
        return images.stored_bytes(base)
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


def normalize(data: bytes, limits: Limits) -> Normalized:
    """An upright JPEG/PNG copy of `data` within `limits`. Raises InvalidImage when that is impossible."""
    from PIL import Image, ImageOps

    if sniff(data) == "HEIF":  # libheif's native libraries cost memory: load them only for HEIF
        register_heif()
    try:
        with warnings.catch_warnings():  # check_pixels below is the guard
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data))
        source_format = image.format or "image"
        stored = stored_size(image)
        check_pixels(ImageInfo(source_format, *stored), limits)
        orientation = exif_orientation(image)
        upright = (stored[1], stored[0]) if orientation in (5, 6, 7, 8) else stored
        steps = []
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            steps.append(f"first of {frames} frames")
        scale, target = _fit(upright, limits.max_side)
        if min(target) < limits.min_side:
            raise InvalidImage(
                f"image is {upright[0]}x{upright[1]} px: within SegmentHead's {limits.max_side} px it would be "
                f"{target[0]}x{target[1]}, under the minimum of {limits.min_side} px",
                code="InvalidImage.Resolution",
            )
        if image.format in ("JPEG", "MPO") and scale < 1:  # MPO: a JPEG with more pictures after it
            image.draft(image.mode, _draft_request(stored, scale))
        image.load()
        pending = exif_orientation(image) if orientation != 1 else 1  # Pillow's TIFF plugin turns it as it loads
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"refused a decompression bomb: {exc}", code="InvalidImage.TooManyPixels") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage(f"the image cannot be decoded: {exc}", code="InvalidImage.Corrupt") from None
    turned = pending != orientation and orientation in (5, 6, 7, 8)
    decoded_scale = image.size[1 if turned else 0] / stored[0]  # a JPEG draft decodes at 1/2, 1/4 or 1/8, exactly
    if pending != 1:
        image = ImageOps.exif_transpose(image)
    if orientation != 1:
        steps.append(f"EXIF orientation {orientation} applied")
    image, converted = _plain_mode(image)
    if converted:
        steps.append(converted)
    image, final_scale = _downscale(image, upright, target, decoded_scale, limits.max_side, steps)
    fmt = "PNG" if image.mode == "RGBA" else "JPEG"
    if source_format != fmt:
        steps.append(f"transcoded {source_format} to {fmt}")
    before_encoding = image.width
    data_out, size = _encode(image, fmt, limits, steps)
    final_scale *= size[0] / before_encoding  # shrunk to fit the byte limit, if it had to be
    return Normalized(data_out, fmt, size[0], size[1], upright[0], upright[1], tuple(steps), final_scale)


def _fit(upright: tuple[int, int], max_side: int) -> tuple[float, tuple[int, int]]:
    """The scale and the size that fit `upright` within `max_side` (never upscaled)."""
    scale = min(1.0, max_side / max(*upright, 1))
    return scale, (max(1, math.floor(upright[0] * scale)), max(1, math.floor(upright[1] * scale)))


def _draft_request(stored: tuple[int, int], scale: float) -> tuple[int, int]:
    return math.ceil(stored[0] * scale), math.ceil(stored[1] * scale)


def _downscale(
    image: Image.Image,
    upright: tuple[int, int],
    target: tuple[int, int],
    decoded_scale: float,
    max_side: int,
    steps: list[str],
) -> tuple[Image.Image, float]:
    """The image at `target` size, and its scale from the original (upright)."""
    from PIL import Image

    if image.size == target:
        return image, decoded_scale if decoded_scale < 1 else target[0] / upright[0]
    overshoot = max(image.width, image.height) - max_side
    if decoded_scale < 1 and 0 < overshoot <= CROP_INSTEAD:
        # the decoder's exact reduction is a few px over the limit: cropping them costs no resampling (and
        # no second full-size buffer); boxes map back exactly; the original loses that many px at its edge
        fit = (min(image.width, max_side), min(image.height, max_side))
        steps.append(
            f"decoded at 1/{round(1 / decoded_scale)} scale and cropped from {upright[0]}x{upright[1]} to {fit[0]}x{fit[1]}"
        )
        return image.crop((0, 0, *fit)), decoded_scale
    steps.append(f"downscaled from {upright[0]}x{upright[1]} to {target[0]}x{target[1]}")
    return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP), target[0] / upright[0]


def _plain_mode(image: Image.Image) -> tuple[Image.Image, str]:
    """The image in RGB, L or RGBA, and the step taken (empty when none was needed)."""
    mode = image.mode
    if mode in PLAIN_MODES:
        return image, ""
    if mode in _SIXTEEN_BIT:
        return image.point(lambda value: value / 256).convert("L"), f"converted {mode} (16-bit) to L"
    has_alpha = mode in ("LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info)
    target = "RGBA" if has_alpha else "RGB"
    return image.convert(target), f"converted {mode} to {target}"


def _encode(image: Image.Image, fmt: str, limits: Limits, steps: list[str]) -> tuple[bytes, tuple[int, int]]:
    """Encode within max_bytes: lower JPEG quality first, then smaller sizes."""
    from PIL import Image

    while True:
        for quality in JPEG_QUALITIES if fmt == "JPEG" else (None,):
            buffer = io.BytesIO()
            if fmt == "JPEG":
                image.save(buffer, "JPEG", quality=quality)  # optimize=True would buffer every coefficient
            else:
                image.save(buffer, "PNG")  # optimize=True took 13 s of CPU for a 1999x1499 RGBA: 4 % smaller
            if buffer.tell() <= limits.max_bytes:
                if quality not in (None, JPEG_QUALITIES[0]):
                    steps.append(f"recompressed at JPEG quality {quality}")
                return buffer.getvalue(), image.size
        smaller = (math.floor(image.width * SHRINK_STEP), math.floor(image.height * SHRINK_STEP))
        if min(smaller) < limits.min_side:
            raise InvalidImage(
                f"image cannot be brought under {limits.max_bytes} bytes above {limits.min_side} px",
                code="InvalidImage.Size",
            )
        image = image.resize(smaller, Image.Resampling.LANCZOS)
        steps.append(f"shrunk to {smaller[0]}x{smaller[1]} to fit {limits.max_bytes} bytes")
