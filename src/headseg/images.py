"""Image checks: what the object is (from its first bytes) and whether SegmentHead accepts it.

Only headers are parsed here; nothing decodes a whole image. Pillow is imported lazily.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from headseg.errors import InvalidImage

#: Formats SegmentHead accepts as they are.
SEGMENTHEAD_FORMATS = frozenset({"JPEG", "PNG", "BMP"})

_MAGIC: list[tuple[int, bytes, str]] = [
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
    (0, b"BM", "BMP"),
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (8, b"WEBP", "WEBP"),
]
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif")

#: How many leading bytes are enough to tell the format and the dimensions of almost every image.
HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class ImageInfo:
    """What the image header says: format, stored pixel dimensions, mode and EXIF orientation (1: upright)."""

    format: str
    width: int
    height: int
    mode: str = "RGB"
    orientation: int = 1

    @property
    def upright_size(self) -> tuple[int, int]:
        """The size as displayed: orientations 5 to 8 turn the image a quarter."""
        return (self.height, self.width) if self.orientation in (5, 6, 7, 8) else (self.width, self.height)


def sniff(head: bytes) -> str | None:
    """The image format the leading bytes announce, or None when they are not an image at all."""
    for offset, magic, name in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            if name == "WEBP" and head[:4] != b"RIFF":
                continue
            if name == "BMP" and len(head) >= 14 and head[6:10] != b"\x00\x00\x00\x00":
                continue  # "BM" followed by non-zero reserved bytes is text, not a bitmap
            return name
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "HEIF"
    return None


class NeedMoreBytes(Exception):
    """The header did not fit in the bytes read so far."""


def read_header(data: bytes, *, complete: bool) -> ImageInfo:
    """Parse format and dimensions from `data`, the object's first bytes (`complete`: the whole object).

    Raises `NeedMoreBytes` when a partial read ended inside the header, `InvalidImage` when it is corrupt.
    """
    fmt = sniff(data)
    if fmt is None:
        raise InvalidImage("not an image: the first bytes match no image format", code="InvalidImage.NotImage")
    from PIL import Image, UnidentifiedImageError

    if fmt == "HEIF":
        register_heif()
    try:
        with warnings.catch_warnings():  # headseg applies its own MAX_PIXELS right after
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        with image:
            width, height = image.size
            mode = image.mode
            orientation = exif_orientation(image)
    except Image.DecompressionBombError:
        raise InvalidImage(
            f"{fmt} header claims more than {2 * (Image.MAX_IMAGE_PIXELS or 0)} pixels: refused unread "
            "(a decompression bomb)",
            code="InvalidImage.TooManyPixels",
        ) from None
    except (UnidentifiedImageError, SyntaxError, OSError, ValueError, EOFError) as exc:
        if not complete:
            raise NeedMoreBytes() from exc
        detail = "its data does not parse" if isinstance(exc, UnidentifiedImageError) else str(exc)
        raise InvalidImage(f"corrupt {fmt}: the header cannot be read ({detail})", code="InvalidImage.Corrupt") from None
    if width <= 0 or height <= 0:
        raise InvalidImage(f"corrupt {fmt}: it claims {width}x{height} pixels", code="InvalidImage.Corrupt")
    return ImageInfo(format=fmt, width=width, height=height, mode=mode, orientation=orientation)


def exif_orientation(image: object) -> int:
    """The EXIF orientation tag (1 to 8) of an open Pillow image; 1 when absent or unreadable."""
    try:
        value = image.getexif().get(0x0112, 1)  # type: ignore[attr-defined]
    except (SyntaxError, ValueError, OSError, TypeError, AttributeError):  # a broken EXIF block is not fatal
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def register_heif() -> None:
    """Teach Pillow to open HEIC/HEIF (pi-heif: libheif's decoder without the encoders), once."""
    from pi_heif import register_heif_opener

    register_heif_opener()


def check_limits(info: ImageInfo, size: int, *, max_bytes: int, min_side: int, max_side: int) -> None:
    """Raise `InvalidImage` unless SegmentHead accepts the image as it is."""
    if info.format not in SEGMENTHEAD_FORMATS:
        raise InvalidImage(
            f"unsupported format {info.format}: SegmentHead takes JPEG, PNG or BMP",
            code="InvalidImage.Format",
        )
    if size > max_bytes:
        raise InvalidImage(
            f"image is {size} bytes, over SegmentHead's limit of {max_bytes} bytes", code="InvalidImage.Size"
        )
    check_min_side(info, min_side)
    if max(info.width, info.height) > max_side:
        raise InvalidImage(
            f"image is {info.width}x{info.height} px, over SegmentHead's maximum of {max_side}x{max_side}",
            code="InvalidImage.Resolution",
        )


def check_min_side(info: ImageInfo, min_side: int) -> None:
    """Raise `InvalidImage` for an image too small for SegmentHead; upscaling would invent nothing to find."""
    width, height = info.upright_size
    if min(width, height) < min_side:
        raise InvalidImage(
            f"image is {width}x{height} px, under SegmentHead's minimum of {min_side}x{min_side}",
            code="InvalidImage.Resolution",
        )
