"""Image checks: what the object is (from its first bytes) and whether SegmentHead accepts it.

Only headers are parsed here: nothing here decodes pixel data, not even partly (see `exif_orientation`).
Pillow is imported lazily.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from dataclasses import dataclass

from headseg.function import nonimage
from headseg.function.errors import InvalidImage
from headseg.function.limits import SEGMENTHEAD_FORMATS


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
    """What the image header says: format, stored pixel dimensions, mode and EXIF orientation (1: upright).

    And what decoding it will cost (`memory.decode_cost`): whether a JPEG is progressive (its decoder then
    buffers every DCT coefficient of the full image, whatever the scale it outputs), its components' sampling
    factors (h, v) as in its frame header (((2, 2), (1, 1), (1, 1)) for 4:2:0), the bits per sample a HEIF codes,
    the frames (pages) the bytes read show: the exact count when they are the whole object, at least 1, and the
    strip or tile a TIFF's decoder holds besides the image (`libtiff_chunk`).
    """

    format: str
    width: int
    height: int
    mode: str = "RGB"
    orientation: int = 1
    progressive: bool = False
    sampling: tuple[tuple[int, int], ...] = ()
    bit_depth: int = 8
    frames: int = 1
    transparency: bool = False  # a palette image declares a transparent entry: it is converted to RGBA, not RGB
    strip_bytes: int = 0  # bytes of the strip or tile Pillow's libtiff decoder decodes into (`libtiff_chunk`)

    @property
    def upright_size(self) -> tuple[int, int]:
        """The size as displayed: orientations 5 to 8 turn the image a quarter."""
        return (self.height, self.width) if self.orientation in (5, 6, 7, 8) else (self.width, self.height)

    @property
    def coefficient_bytes(self) -> int:
        """What libjpeg buffers to decode a progressive JPEG, at any scale: every component's DCT blocks at full
        size, 64 coefficients of 2 bytes each (3 B/px for 4:2:0 colour). 0 for anything else."""
        if not self.progressive:
            return 0
        sampling = self.sampling or ((1, 1),) * {"L": 1, "CMYK": 4}.get(self.mode, 3)  # unknown: full resolution
        h_max, v_max = max(h for h, _ in sampling), max(v for _, v in sampling)
        columns, rows = math.ceil(self.width / (8 * h_max)), math.ceil(self.height / (8 * v_max))
        return sum(columns * h * rows * v * 64 * 2 for h, v in sampling)


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
        raise InvalidImage(nonimage.describe(data, len(data) if complete else None), code="InvalidImage.NotImage")
    from PIL import Image, UnidentifiedImageError

    if fmt == "HEIF":
        register_heif()
    try:
        image = Image.open(io.BytesIO(data))  # Pillow's own pixel limit warns (`quiet_pillow`): MAX_PIXELS applies after
        with image:
            width, height = stored_size(image)
            mode = image.mode
            orientation = exif_orientation(image)
            transparency = mode == "P" and "transparency" in image.info
            progressive = bool(image.info.get("progressive") or image.info.get("progression"))
            sampling = _jpeg_sampling(image) if fmt == "JPEG" else ()
            bit_depth = _bit_depth(image.info.get("bit_depth")) if fmt == "HEIF" else 8
            strip_bytes = libtiff_chunk(image) if fmt == "TIFF" else 0  # the first page's: before _frames seeks
            frames = _frames(image)
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
    return ImageInfo(
        format=fmt,
        width=width,
        height=height,
        mode=mode,
        orientation=orientation,
        progressive=progressive,
        sampling=sampling,
        bit_depth=bit_depth,
        frames=frames,
        transparency=transparency,
        strip_bytes=strip_bytes,
    )


def stored_size(image: object) -> tuple[int, int]:
    """An open Pillow image's dimensions as stored, before its EXIF orientation. Pillow's TIFF plugin reports
    (and decodes to) the displayed ones, turning the image as it loads; the TIFF header has the stored ones."""
    tags = getattr(image, "tag_v2", None)
    if getattr(image, "format", None) == "TIFF" and tags is not None:
        width, height = tags.get(256), tags.get(257)  # ImageWidth, ImageLength
        if isinstance(width, int) and isinstance(height, int):
            return width, height
    size = image.size  # type: ignore[attr-defined]
    return int(size[0]), int(size[1])


def exif_orientation(image: object) -> int:
    """The EXIF orientation tag (1 to 8) of an open Pillow image; 1 when absent or unreadable.

    Read from what opening the image parsed (EXIF, XMP; a TIFF's first IFD), never by decoding: Pillow's own
    `PngImageFile.getexif()` loads the whole image when no eXIf chunk came before IDAT, in case one follows the
    pixels. So a PNG's orientation is an eXIf chunk before IDAT (where PNG writers put it), the same answer from
    its first bytes as from the whole object.
    """
    from PIL import Image

    try:
        value = Image.Image.getexif(image).get(0x0112, 1)  # type: ignore[arg-type]  # the base class's: it never loads
    except (SyntaxError, ValueError, OSError, TypeError, AttributeError):  # a broken EXIF block is not fatal
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def libtiff_chunk(image: object) -> int:
    """The bytes of the strip or tile Pillow's libtiff decoder decodes into before unpacking it into the image,
    from an open TIFF's tags, as the decoder sizes it: a tile's width and length, or the image's width and its
    rows per strip (absent: every row; libtiff fills at most the image's), at the file's bits per pixel (32 when
    libtiff converts YCbCr to RGBA). A compressed TIFF's strip is often the whole image (measured: 3 B/px more
    than the image for a one-strip RGB LZW TIFF). When Pillow reads the pixels itself (uncompressed) it reads a
    64 KB block at a time, but an image of several tiles is decoded a tile at a time into a tile of its own (measured:
    a 1024-px tile of a 16-bit RGB TIFF added 8 B/px of the tile): counted at 8 bytes a pixel; one tile, or strips,
    add nothing. Tags it cannot read count as the whole image at 8 bytes a pixel."""
    tags = getattr(image, "tag_v2", {})
    width, height = stored_size(image)
    if not getattr(image, "use_load_libtiff", True):
        try:
            columns, rows = int(tags.get(322, width)), int(tags.get(323, height))
        except (TypeError, ValueError):
            return width * height * 8
        return columns * rows * 8 if columns < width or rows < height else 0
    try:
        bits = tuple(tags.get(258, (1,)))  # BitsPerSample: one per sample, or one for all
        per_pixel = sum(bits) if len(bits) > 1 else int(bits[0]) * int(tags.get(277, 1))  # SamplesPerPixel
        if tags.get(262) == 6:  # PhotometricInterpretation YCbCr
            per_pixel = max(per_pixel, 32)
        if 322 in tags or 323 in tags:  # TileWidth, TileLength
            columns, rows = int(tags[322]), int(tags[323])
        else:
            columns, rows = width, min(int(tags.get(278, height)), height)  # RowsPerStrip
    except (TypeError, ValueError, KeyError, IndexError):
        return width * height * 8
    return max(0, -(-columns * per_pixel // 8) * rows)


def _jpeg_sampling(image: object) -> tuple[tuple[int, int], ...]:
    """Each component's (h, v) sampling factors from the frame header Pillow parsed (`layer`)."""
    try:
        return tuple((int(layer[1]), int(layer[2])) for layer in getattr(image, "layer", ()))
    except (TypeError, ValueError, IndexError):
        return ()


def _bit_depth(value: object) -> int:
    return value if isinstance(value, int) and 1 <= value <= 16 else 8


def _frames(image: object) -> int:
    """How many frames the bytes parsed so far show. Counting walks headers only (a GIF's blocks, a TIFF's IFDs);
    on a partial read it stops where the bytes end."""
    try:
        count = getattr(image, "n_frames", 1)  # Pillow warns of every truncated TIFF IFD it meets (`quiet_pillow`)
    except (EOFError, OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError, struct.error):
        return 1  # a count the bytes cannot finish is informational: never fatal
    return count if isinstance(count, int) and count >= 1 else 1


def jpeg_reduction(stored: tuple[int, int], wanted: tuple[int, int]) -> int:
    """The factor JpegImageFile.draft(mode, wanted) decodes at: 8, 4, 2 or 1 (libjpeg's DCT scaling)."""
    fit = min(stored[0] // wanted[0], stored[1] // wanted[1])
    return next(factor for factor in (8, 4, 2, 1) if fit >= factor)


def warm() -> None:
    """Import Pillow with the plugins `Image.open` loads first (JPEG, PNG, BMP, GIF, PPM) and the EXIF tables,
    as the first event would: about 45 ms of a cold instance's first event, moved to the initializer."""
    from PIL import ExifTags, Image  # noqa: F401

    Image.preinit()


def quiet_pillow() -> None:
    """Keep Pillow's warnings out of the process's output, from now on: headseg judges what they warn of itself
    (a header past Pillow's pixel limit meets MAX_PIXELS; a truncated TIFF IFD, corrupt EXIF).

    Filtered once, by module, rather than in a `warnings.catch_warnings()` block around each call: that block
    swaps the process's one filter list, so two threads in it at once can leave its filter installed for good.
    """
    warnings.filterwarnings("ignore", module=r"PIL\.")


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
