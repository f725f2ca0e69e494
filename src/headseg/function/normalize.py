"""Normalization: bring an image SegmentHead would refuse within its limits, and map results back.

The normalized copy is upright (EXIF orientation applied), fits within the maximum side, is a JPEG (a PNG when
it has transparency), and is at most the maximum size. Boxes found on it map back to the original image, as
displayed, with `to_original`. JPEGs are decoded at reduced size (`draft`) when they are to be downscaled, so
an 8000x6000 photo never lives in memory at full resolution. Pillow is imported lazily.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from headseg.function.errors import InvalidImage
from headseg.function.limits import SEGMENTHEAD_FORMATS, Limits
from headseg.function.images import ImageInfo, exif_orientation, register_heif, sniff, stored_size

if TYPE_CHECKING:  # Pillow itself is imported where it is used
    from PIL import Image

#: Modes SegmentHead is known to take as they are; anything else (CMYK, 16-bit, palette, LA, 1-bit) is converted.
PLAIN_MODES = frozenset({"RGB", "L", "RGBA"})
JPEG_QUALITIES = (90, 80, 70, 60)
SHRINK_STEP = 0.8  # when even the lowest quality is too large, downscale by this and try again
CROP_INSTEAD = 8  # when the decoder's exact reduction overshoots the limit by at most this many px, crop them
REDUCING_GAP = 3.0  # resize() first reduces by a whole factor when the image is this many times the target


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


SIXTEEN_BIT = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})  # made L by point() then convert()

def normalize(data: bytes, limits: Limits) -> Normalized:
    """An upright JPEG/PNG copy of `data` within `limits`. Raises InvalidImage when that is impossible."""
    from PIL import Image

    if sniff(data) == "HEIF":  # libheif's native libraries cost memory: load them only for HEIF
        register_heif()
    try:
        image: Image.Image = Image.open(io.BytesIO(data))  # check_pixels below is the guard (`images.quiet_pillow`)
        source_format = image.format or "image"
        stored = stored_size(image)
        check_pixels(ImageInfo(source_format, *stored), limits)
        orientation = exif_orientation(image)
        upright = (stored[1], stored[0]) if orientation in (5, 6, 7, 8) else stored
        steps = []
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            steps.append(f"first of {frames} frames")
        scale, target = fit(upright, limits.max_side)
        if min(target) < limits.min_side:
            raise InvalidImage(
                f"image is {upright[0]}x{upright[1]} px: within SegmentHead's {limits.max_side} px it would be "
                f"{target[0]}x{target[1]}, under the minimum of {limits.min_side} px",
                code="InvalidImage.Resolution",
            )
        if image.format in ("JPEG", "MPO") and scale < 1:  # MPO: a JPEG with more pictures after it
            image.draft(image.mode, draft_request(stored, scale))
        image.load()
        pending = exif_orientation(image) if orientation != 1 else 1  # Pillow's TIFF plugin turns it as it loads
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"refused a decompression bomb: {exc}", code="InvalidImage.TooManyPixels") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage(f"the image cannot be decoded: {exc}", code="InvalidImage.Corrupt") from None
    try:
        return _prepare(image, source_format, orientation, pending, stored, upright, target, limits, steps)
    except (OSError, ValueError) as exc:  # Pillow cannot turn, convert or encode what it decoded (a rare mode)
        raise InvalidImage(
            f"the {source_format} image (mode {image.mode}) cannot be converted for SegmentHead: {exc}",
            code="InvalidImage.Unsupported",
        ) from None


def _prepare(
    image: Image.Image,
    source_format: str,
    orientation: int,
    pending: int,
    stored: tuple[int, int],
    upright: tuple[int, int],
    target: tuple[int, int],
    limits: Limits,
    steps: list[str],
) -> Normalized:
    """The decoded image turned upright, in a plain mode, downscaled and encoded within `limits`."""
    from PIL import ImageOps

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


def fit(upright: tuple[int, int], max_side: int) -> tuple[float, tuple[int, int]]:
    """The scale and the size that fit `upright` within `max_side` (never upscaled)."""
    scale = min(1.0, max_side / max(*upright, 1))
    return scale, (max(1, math.floor(upright[0] * scale)), max(1, math.floor(upright[1] * scale)))


def draft_request(stored: tuple[int, int], scale: float) -> tuple[int, int]:
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
    if mode in SIXTEEN_BIT:
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
