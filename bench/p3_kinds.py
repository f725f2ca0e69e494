"""The inputs P3 measures: every format and mode Pillow may take, each made from a photo-like RGB image.

Pillow writes most of them. What it cannot write is built here byte by byte (`tiff`, `png`, `bmp_rle8`): tiled
TIFFs, 16-bit RGB and 64-bit float samples, Adam7-interlaced PNGs, RLE-compressed BMPs; numpy lays out their
samples. HEIF is written with pillow-heif (the function's pi-heif only decodes).
"""

from __future__ import annotations

import dataclasses
import io
import struct
import zlib
from collections.abc import Callable
from typing import Any

Encode = Callable[[Any, io.BytesIO], None]  # a photo-like RGB image -> the kind's bytes


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str
    ext: str
    encode: Encode


def kinds() -> list[Kind]:
    """Every kind, by format: JPEG, PNG, TIFF, BMP, GIF, WebP, HEIF."""
    return [*_jpeg(), *_png(), *_tiff(), *_bmp(), *_gif(), *_webp(), *_heif()]


# -- images derived from the photo ------------------------------------------------------------------------------
def photo(width: int, height: int) -> Any:
    """Photo-like content: smooth gradients with fine grain, about what a phone writes."""
    from PIL import Image, ImageFilter

    base = Image.linear_gradient("L").resize((width, height))
    grain = Image.effect_noise((width, height), 12).filter(ImageFilter.BoxBlur(1))
    return Image.merge("RGB", (base, grain, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))


def rgba(image: Any) -> Any:
    from PIL import Image

    out = image.convert("RGBA")
    out.putalpha(image.getchannel("R").transpose(Image.Transpose.FLIP_TOP_BOTTOM))  # a gradient of alpha
    return out


def gray16(image: Any) -> Any:
    return image.convert("L").convert("I").point(lambda value: value * 257).convert("I;16")


def samples(image: Any, dtype: str) -> bytes:
    """The 8-bit image's samples as numpy's `dtype` ("<u2", ">u2": 16-bit, the full range; "<f8": 0 to 1)."""
    import numpy as np

    values = np.asarray(image).astype(dtype)
    return (values / 255 if values.dtype.kind == "f" else values * 257).tobytes()


def frames(image: Any, count: int) -> list[Any]:
    """`count` frames that differ (a frame equal to the previous is merged by the GIF and WebP writers)."""
    from PIL import Image

    return [image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if index % 2 else image for index in range(count)]


# -- JPEG -------------------------------------------------------------------------------------------------------
def _jpeg() -> list[Kind]:
    from PIL import Image

    def turned(image: Any, out: io.BytesIO) -> None:
        exif = Image.Exif()
        exif[0x0112] = 6  # stored on its side, displayed upright
        image.save(out, "JPEG", quality=90, exif=exif)

    def mpo(image: Any, out: io.BytesIO) -> None:
        image.save(out, "MPO", quality=90, save_all=True, append_images=[image])

    return [
        Kind("baseline JPEG", "jpg", lambda im, out: im.save(out, "JPEG", quality=90)),
        Kind("JPEG 4:4:4", "jpg", lambda im, out: im.save(out, "JPEG", quality=90, subsampling=0)),
        Kind("grayscale JPEG", "jpg", lambda im, out: im.convert("L").save(out, "JPEG", quality=90)),
        Kind("progressive JPEG", "jpg", lambda im, out: im.save(out, "JPEG", quality=90, progressive=True)),
        Kind(
            "progressive JPEG 4:4:4", "jpg",
            lambda im, out: im.save(out, "JPEG", quality=90, progressive=True, subsampling=0),
        ),
        Kind("CMYK JPEG", "jpg", lambda im, out: im.convert("CMYK").save(out, "JPEG", quality=90)),
        Kind(
            "progressive CMYK JPEG", "jpg",
            lambda im, out: im.convert("CMYK").save(out, "JPEG", quality=90, progressive=True),
        ),
        Kind("JPEG turned (EXIF 6)", "jpg", turned),
        Kind("MPO (2 pictures)", "mpo", mpo),
    ]


# -- PNG --------------------------------------------------------------------------------------------------------
def _png() -> list[Kind]:
    def palette(image: Any) -> Any:
        return image.convert("P")  # the web palette, dithered

    def transparent(image: Any, out: io.BytesIO) -> None:
        palette(image).save(out, "PNG", compress_level=1, transparency=0)

    def la(image: Any) -> Any:
        return rgba(image).convert("LA")

    def rgba16(image: Any, out: io.BytesIO) -> None:
        png(out, samples(rgba(image), ">u2"), image.size, 6, 16)

    def interlaced(image: Any, out: io.BytesIO) -> None:
        png(out, image.tobytes(), image.size, 2, 8, interlaced=image)

    return [
        Kind("PNG RGB", "png", lambda im, out: im.save(out, "PNG", compress_level=1)),
        Kind("PNG RGBA", "png", lambda im, out: rgba(im).save(out, "PNG", compress_level=1)),
        Kind("PNG P", "png", lambda im, out: palette(im).save(out, "PNG", compress_level=1)),
        Kind("PNG P with transparency", "png", transparent),
        Kind("PNG LA", "png", lambda im, out: la(im).save(out, "PNG", compress_level=1)),
        Kind("PNG 1-bit", "png", lambda im, out: im.convert("1").save(out, "PNG", compress_level=1)),
        Kind("16-bit PNG", "png", lambda im, out: gray16(im).save(out, "PNG", compress_level=1)),
        Kind("16-bit PNG RGBA", "png", rgba16),
        Kind("interlaced PNG (Adam7)", "png", interlaced),
    ]


_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def png(out: io.BytesIO, raw: bytes, size: tuple[int, int], colour: int, depth: int, interlaced: Any = None) -> None:
    """A PNG of `raw` samples (rows top to bottom, no filter). `interlaced`: the image whose Adam7 passes to
    write instead (each pass its own pixels: resampled, the memory is the same)."""
    width, height = size
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    stride = width * channels * depth // 8
    compressor = zlib.compressobj(1)
    chunks = []
    if interlaced is None:
        for y in range(height):
            chunks.append(compressor.compress(b"\0" + raw[y * stride : (y + 1) * stride]))
    else:
        for x0, y0, dx, dy in _ADAM7:
            pass_size = (-(-(width - x0) // dx), -(-(height - y0) // dy))
            if 0 in pass_size:
                continue
            data = interlaced.resize(pass_size).tobytes()
            row = pass_size[0] * channels * depth // 8
            for y in range(pass_size[1]):
                chunks.append(compressor.compress(b"\0" + data[y * row : (y + 1) * row]))
    chunks.append(compressor.flush())

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 1 if interlaced is not None else 0)
    out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(chunks)) + chunk(b"IEND", b""))


# -- TIFF -------------------------------------------------------------------------------------------------------
def _tiff() -> list[Kind]:
    def pillow(mode: Callable[[Any], Any], compression: str, one_strip: bool = True, **options: Any) -> Encode:
        def encode(image: Any, out: io.BytesIO) -> None:
            image = mode(image)
            info = {278: image.height} if one_strip else {}  # RowsPerStrip: the whole image in one strip
            image.save(out, "TIFF", compression=compression, tiffinfo=info, **options)

        return encode

    def same(image: Any) -> Any:
        return image

    def pages(image: Any, out: io.BytesIO) -> None:
        image.save(out, "TIFF", compression="tiff_lzw", save_all=True, append_images=frames(image, 3)[1:])

    def tiled(compression: int, side: int = 256) -> Encode:
        def encode(image: Any, out: io.BytesIO) -> None:
            tiff(out, image.tobytes(), image.size, bits=(8, 8, 8), photometric=2, compression=compression, tile=side)

        return encode

    def rgb16(image: Any, out: io.BytesIO) -> None:
        tiff(out, samples(image, "<u2"), image.size, bits=(16, 16, 16), photometric=2, compression=8)

    def float64(image: Any, out: io.BytesIO) -> None:
        raw = samples(image.convert("L"), "<f8")
        tiff(out, raw, image.size, bits=(64,), photometric=1, compression=8, sample_format=3)

    return [
        Kind("TIFF (LZW)", "tif", pillow(same, "tiff_lzw", one_strip=False)),
        Kind("TIFF LZW, one strip", "tif", pillow(same, "tiff_lzw")),
        Kind("TIFF deflate, one strip", "tif", pillow(same, "tiff_adobe_deflate")),
        Kind("TIFF PackBits, one strip", "tif", pillow(same, "packbits")),
        Kind("TIFF uncompressed, one strip", "tif", pillow(same, "raw")),
        Kind("TIFF JPEG", "tif", pillow(same, "jpeg", one_strip=False, quality=90)),
        Kind("TIFF JPEG, one strip", "tif", pillow(same, "jpeg", quality=90)),
        Kind("TIFF tiled, deflate", "tif", tiled(8)),
        Kind("TIFF tiled, uncompressed", "tif", tiled(1)),
        Kind("TIFF deflate, 4096 px tiles", "tif", tiled(8, 4096)),
        Kind("TIFF 3 pages (LZW)", "tif", pages),
        Kind("TIFF RGBA LZW, one strip", "tif", pillow(rgba, "tiff_lzw")),
        Kind("TIFF CMYK LZW, one strip", "tif", pillow(lambda im: im.convert("CMYK"), "tiff_lzw")),
        Kind("TIFF I;16 LZW, one strip", "tif", pillow(gray16, "tiff_lzw")),
        Kind("TIFF I (32-bit) LZW, one strip", "tif", pillow(lambda im: im.convert("I"), "tiff_lzw")),
        Kind(
            "TIFF F (32-bit float) deflate, one strip", "tif", pillow(lambda im: im.convert("F"), "tiff_adobe_deflate")
        ),
        Kind("TIFF 64-bit float deflate, one strip", "tif", float64),
        Kind("TIFF 16-bit RGB deflate, one strip", "tif", rgb16),
    ]


def tiff(
    out: io.BytesIO,
    raw: bytes,
    size: tuple[int, int],
    *,
    bits: tuple[int, ...],
    photometric: int,
    compression: int = 1,
    sample_format: int = 1,
    rows_per_strip: int = 0,
    tile: int = 0,
) -> None:
    """A little-endian TIFF of `raw` samples (chunky, rows top to bottom): strips of `rows_per_strip` rows (0: one
    strip), or `tile` px square tiles. Compression 1: none, 8: deflate. A fourth sample is unassociated alpha."""
    width, height = size
    pixel = sum(bits) // 8
    stride = width * pixel
    if tile:
        blocks = []
        for top in range(0, height, tile):
            for left in range(0, width, tile):
                rows = []
                for y in range(top, top + tile):
                    start = y * stride + left * pixel
                    row = raw[start : start + (min(width, left + tile) - left) * pixel] if y < height else b""
                    rows.append(row.ljust(tile * pixel, b"\0"))
                blocks.append(b"".join(rows))
    else:
        rows_per_strip = rows_per_strip or height
        blocks = [raw[top * stride : (top + rows_per_strip) * stride] for top in range(0, height, rows_per_strip)]
    if compression == 8:
        blocks = [zlib.compress(block, 1) for block in blocks]
    offsets, position = [], 8
    for block in blocks:
        offsets.append(position)
        position += len(block)
    counts = [len(block) for block in blocks]
    short, long_ = 3, 4
    tags: list[tuple[int, int, list[int]]] = [
        (256, long_, [width]),
        (257, long_, [height]),
        (258, short, list(bits)),
        (259, short, [compression]),
        (262, short, [photometric]),
        (277, short, [len(bits)]),
        (284, short, [1]),
        (339, short, [sample_format] * len(bits)),
    ]
    if len(bits) == 4:
        tags.append((338, short, [2]))  # ExtraSamples: unassociated alpha
    if tile:
        tags += [(322, long_, [tile]), (323, long_, [tile]), (324, long_, offsets), (325, long_, counts)]
    else:
        tags += [(273, long_, offsets), (278, long_, [rows_per_strip]), (279, long_, counts)]
    tags.sort()
    ifd_offset = position + position % 2
    extra = ifd_offset + 2 + 12 * len(tags) + 4
    entries, values = [], []
    for tag, kind, items in tags:
        body = struct.pack(f"<{len(items)}{'H' if kind == short else 'I'}", *items)
        if len(body) <= 4:
            entries.append(struct.pack("<HHI", tag, kind, len(items)) + body.ljust(4, b"\0"))
        else:
            entries.append(struct.pack("<HHII", tag, kind, len(items), extra))
            values.append(body)
            extra += len(body)
    out.write(struct.pack("<2sHI", b"II", 42, ifd_offset))
    out.write(b"".join(blocks) + b"\0" * (ifd_offset - position))
    out.write(struct.pack("<H", len(tags)) + b"".join(entries) + struct.pack("<I", 0) + b"".join(values))


# -- BMP, GIF, WebP, HEIF ---------------------------------------------------------------------------------------
def _bmp() -> list[Kind]:
    return [
        Kind("BMP", "bmp", lambda im, out: im.save(out, "BMP")),
        Kind("BMP RGBA (32-bit)", "bmp", lambda im, out: rgba(im).save(out, "BMP")),
        Kind("BMP P (8-bit)", "bmp", lambda im, out: im.convert("P").save(out, "BMP")),
        Kind("BMP RLE8", "bmp", bmp_rle8),
    ]


def bmp_rle8(image: Any, out: io.BytesIO) -> None:
    """An 8-bit RLE BMP (Pillow reads these, but does not write them) of the image's grey gradient, 8 levels: runs
    as long as RLE8 takes (255 px), as in a flat graphic."""
    width, height = image.size
    levels = image.convert("L").point(lambda value: value // 32).tobytes()
    rows = []
    for y in range(height - 1, -1, -1):  # bottom-up
        row, encoded, x = levels[y * width : (y + 1) * width], bytearray(), 0
        while x < width:
            run = 1
            while x + run < width and run < 255 and row[x + run] == row[x]:
                run += 1
            encoded += bytes((run, row[x]))
            x += run
        rows.append(bytes(encoded) + b"\0\0")  # end of line
    pixels = b"".join(rows)[:-2] + b"\0\1"  # end of bitmap
    palette = b"".join(bytes((level * 32 & 255,) * 3 + (0,)) for level in range(256))
    offset = 14 + 40 + len(palette)
    out.write(struct.pack("<2sIHHI", b"BM", offset + len(pixels), 0, 0, offset))
    out.write(struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 2835, 2835, 256, 0))
    out.write(palette + pixels)


def _gif() -> list[Kind]:
    def animated(image: Any, out: io.BytesIO) -> None:
        first, *rest = [frame.convert("P") for frame in frames(image, 3)]
        first.save(out, "GIF", save_all=True, append_images=rest, duration=100)

    return [
        Kind("GIF", "gif", lambda im, out: im.convert("P").save(out, "GIF")),
        Kind("animated GIF (3 frames)", "gif", animated),
    ]


def _webp() -> list[Kind]:
    def animated(image: Any, out: io.BytesIO) -> None:
        first, *rest = frames(image, 3)
        first.save(out, "WEBP", quality=80, method=0, save_all=True, append_images=rest)

    return [
        Kind("WebP", "webp", lambda im, out: im.save(out, "WEBP", quality=80, method=0)),
        Kind(
            "WebP lossless RGBA", "webp", lambda im, out: rgba(im).save(out, "WEBP", lossless=True, quality=0, method=0)
        ),
        Kind("animated WebP (3 frames)", "webp", animated),
    ]


def _heif() -> list[Kind]:
    def heic(convert: Callable[[Any], Any] = lambda im: im, count: int = 1) -> Encode:
        def encode(image: Any, out: io.BytesIO) -> None:
            import pillow_heif  # the encoder (pi-heif, the function's, only decodes)

            pillow_heif.register_heif_opener()
            first, *rest = frames(convert(image), count)
            options = {"quality": 50, "enc_params": {"preset": "ultrafast"}}
            first.save(out, "HEIF", save_all=bool(rest), append_images=rest, **options)

        return encode

    def ten_bit(image: Any, out: io.BytesIO) -> None:
        import pillow_heif

        heif = pillow_heif.from_bytes("RGB;16", image.size, samples(image, "<u2"))
        heif.save(out, quality=50, enc_params={"preset": "ultrafast"})  # 16-bit samples are written as 10-bit

    return [
        Kind("HEIC", "heic", heic()),
        Kind("HEIC RGBA", "heic", heic(rgba)),
        Kind("HEIC 10-bit", "heic", ten_bit),
        Kind("HEIC 3 images", "heic", heic(count=3)),
    ]
