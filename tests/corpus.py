"""The bad-input corpus: objects a production bucket receives, each with the outcome headseg must reach.

Everything is generated here (no binaries in the repository): `cases()` yields one Case per input.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import dataclass
from typing import Callable

from PIL import Image

from tests.fakes.images import portrait


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[], bytes]
    outcome: str  # done | skipped | failed
    code: str = ""  # the outcome's code, for skipped and failed
    words: str = ""  # found in the outcome's reason, or in the normalization steps when done
    key: str = ""  # default: incoming/corpus/<name>

    @property
    def object_key(self) -> str:
        return self.key or f"incoming/corpus/{self.name}"


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def photo(width: int = 240, height: int = 180) -> Image.Image:
    return Image.open(io.BytesIO(portrait(width, height, [(40, 30, 50, 60)], fmt="PNG"))).convert("RGB")


def oriented(orientation: int) -> bytes:
    image = photo()
    exif = image.getexif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", exif=exif)


def png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def animated_gif() -> bytes:
    frames = [photo().quantize(32), Image.new("RGB", (240, 180), "blue").quantize(8)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def heic(image: Image.Image | None = None) -> bytes:
    """`image` (default: a photo) as HEIC."""
    from pillow_heif import from_pillow

    buffer = io.BytesIO()
    from_pillow(image or photo()).save(buffer, quality=80)
    return buffer.getvalue()


def big_icc_jpeg() -> bytes:
    """An ICC profile in several APP2 segments pushes the frame header past the first 64 KB."""
    return encode(photo(), "JPEG", icc_profile=b"\x00" * 90_000)


def cases() -> list[Case]:
    jpeg = encode(photo(), "JPEG", quality=90)
    png = encode(photo(), "PNG")
    return [
        # not images at all: permanent errors, recorded (so the version is settled), named for what they are
        Case("empty.jpg", lambda: b"", "failed", "InvalidImage.NotImage", "empty file (0 bytes)"),
        Case("page.jpg", lambda: b"<!DOCTYPE html><html><body>404</body></html>", "failed", "InvalidImage.NotImage", "text, not an image"),
        Case("doc.pdf", lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "failed", "InvalidImage.NotImage", "a PDF document, not an image"),
        Case("archive.zip", lambda: b"PK\x03\x04" + b"\x00" * 40, "failed", "InvalidImage.NotImage"),
        Case("notes.bmp", lambda: b"BMW owners club, minutes of the meeting", "failed", "InvalidImage.NotImage", "text, not an image"),
        Case("vector.svg", lambda: b'<svg xmlns="http://www.w3.org/2000/svg"/>', "failed", "InvalidImage.NotImage"),
        Case("icon.ico", lambda: encode(photo(64, 64), "ICO"), "failed", "InvalidImage.NotImage", "an ICO icon, not an image"),
        # broken images: permanent errors, recorded
        Case("header-only.jpg", lambda: jpeg[:4] + b"\x00" * 20, "failed", "InvalidImage.Corrupt", "corrupt JPEG"),
        Case("truncated.jpg", lambda: jpeg[: len(jpeg) // 2], "failed", "InvalidImage.Content"),
        Case("truncated.png", lambda: png[: len(png) // 2], "failed", "InvalidImage.Content"),
        Case("garbage-after-magic.png", lambda: b"\x89PNG\r\n\x1a\n" + b"\x13" * 50, "failed", "InvalidImage.Corrupt"),
        Case("bomb.png", lambda: png_claiming(100_000, 100_000), "failed", "InvalidImage.TooManyPixels", "refused unread"),
        Case("bomb-wide.png", lambda: png_claiming(2_000_000, 60), "failed", "InvalidImage.TooManyPixels"),
        Case("one-pixel.png", lambda: encode(Image.new("RGB", (1, 1)), "PNG"), "failed", "InvalidImage.Resolution", "1x1 px"),
        Case("line.png", lambda: encode(Image.new("L", (40000, 1)), "PNG"), "failed", "InvalidImage.Resolution", "40000x1"),
        Case("32px.png", lambda: encode(Image.new("RGB", (32, 32)), "PNG"), "failed", "InvalidImage.Resolution", "32x32"),
        Case("thin-after-downscale.png", lambda: encode(Image.new("L", (8000, 40)), "PNG"), "failed", "InvalidImage.Resolution", "would be 1999x9"),
        # fine as they are
        Case("33px.png", lambda: encode(Image.new("RGB", (33, 33)), "PNG"), "done"),
        Case("plain.jpg", lambda: jpeg, "done"),
        Case("png-named.jpg", lambda: png, "done"),
        Case("jpeg-named.png", lambda: jpeg, "done"),
        Case("no-extension", lambda: jpeg, "done"),
        Case("plain.bmp", lambda: encode(photo(), "BMP"), "done"),
        Case("rgba.png", lambda: encode(photo().convert("RGBA"), "PNG"), "done"),
        Case("grey.jpg", lambda: encode(photo().convert("L"), "JPEG"), "done"),
        Case("progressive.jpg", lambda: encode(photo(), "JPEG", progressive=True), "done"),
        Case("1999px.jpg", lambda: encode(photo().resize((1999, 1500)), "JPEG"), "done"),
        Case("trailing-garbage.jpg", lambda: jpeg + b"\x00garbage" * 100, "done"),
        Case("big-icc.jpg", big_icc_jpeg, "done"),
        # normalized for SegmentHead
        Case("2000px.jpg", lambda: encode(photo().resize((2000, 1500)), "JPEG"), "done", words="downscaled from 2000x1500 to 1999x1499"),
        Case("phone.jpg", lambda: encode(photo().resize((4000, 3000)), "JPEG"), "done", words="decoded at 1/2 scale and cropped from 4000x3000 to 1999x1500"),
        *[Case(f"orientation-{n}.jpg", lambda n=n: oriented(n), "done", words=f"EXIF orientation {n} applied") for n in range(2, 9)],
        Case("cmyk.jpg", lambda: encode(photo().convert("CMYK"), "JPEG"), "done", words="converted CMYK to RGB"),
        Case("16bit.png", lambda: encode(photo().convert("L").point(lambda v: v * 256, "I").convert("I;16"), "PNG"), "done", words="16-bit"),
        Case("palette.png", lambda: encode(photo().quantize(64), "PNG"), "done", words="converted P to RGB"),
        Case("grey-alpha.png", lambda: encode(photo().convert("LA"), "PNG"), "done", words="converted LA to RGBA"),
        Case("bilevel.png", lambda: encode(photo().convert("1"), "PNG"), "done", words="converted 1 to RGB"),
        Case("animated.gif", animated_gif, "done", words="first of 2 frames"),
        Case("photo.webp", lambda: encode(photo(), "WEBP"), "done", words="transcoded WEBP to JPEG"),
        Case("photo.tiff", lambda: encode(photo(), "TIFF"), "done", words="transcoded TIFF to JPEG"),
        Case("photo.heic", lambda: heic(), "done", words="transcoded HEIF to JPEG"),
        Case("noise-4mb.png", lambda: encode(Image.effect_noise((1600, 1200), 100).convert("RGB"), "PNG"), "done", words="transcoded PNG to JPEG"),
        # keys
        Case("unicode", lambda: jpeg, "done", key="incoming/corpus/团队 合影/张 三.jpg"),
        Case("plus", lambda: jpeg, "done", key="incoming/corpus/a+b c.jpg"),
        Case("percent", lambda: jpeg, "done", key="incoming/corpus/100%.jpg"),
        Case("percent-escape", lambda: jpeg, "done", key="incoming/corpus/a%20b.jpg"),
        Case("long-key", lambda: jpeg, "failed", "KeyTooLong", "1023-byte key limit", key="incoming/corpus/" + "k" * 990 + ".jpg"),
        Case("output-prefix", lambda: png, "skipped", "OutputPrefix", key="heads/incoming/corpus/x.jpg/head-0-00000000.png"),
        Case("scratch-prefix", lambda: jpeg, "skipped", "OutputPrefix", key="heads/.scratch/incoming/corpus/x.jpg/0.jpg"),
        Case("outside-input", lambda: jpeg, "skipped", "OutsideInputPrefix", key="elsewhere/x.jpg"),
    ]


# -- CPU bombs: small, valid (or nearly) images whose decoding takes far longer than their size suggests --------
def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def many_scans(size: tuple[int, int] = (2000, 2000), copies: int = 5000, scan: int = -1, lead: bytes = b"") -> bytes:
    """A progressive JPEG of flat grey (libjpeg's 10 scans) with one scan repeated `copies` times (libjpeg warns
    of the odd progression and decodes on): the last one (-1) refines every AC coefficient of the Y component,
    14 bytes that walk all its blocks, coefficient by coefficient; scan 1 is a first AC scan (every block, once).
    `lead`: bytes inserted as an APP15 segment before the frame header (pushes the header past the first bytes)."""
    data = encode(Image.new("RGB", size, (128, 128, 128)), "JPEG", progressive=True, quality=90)
    starts = [match.start() for match in re.finditer(b"\xff\xda", data)] + [len(data) - 2]
    index = scan % (len(starts) - 1)
    repeated = data[starts[index] : starts[index + 1]] * copies
    data = data[: starts[index + 1]] + repeated + data[starts[index + 1] :]
    segments = b"".join(b"\xff\xef" + struct.pack(">H", len(part) + 2) + part for part in _parts(lead, 65533))
    return data[:2] + segments + data[2:]


def _parts(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def many_markers(count: int = 3_000_000) -> bytes:
    """A JPEG with `count` empty comment segments before its frame: Pillow parses each one in Python."""
    data = encode(Image.new("RGB", (2400, 80), "grey"), "JPEG")
    return data[:2] + b"\xff\xfe\x00\x02" * count + data[2:]


def stray_bytes(count: int = 20_000_000) -> bytes:
    """A JPEG with `count` zero bytes before its scan (libjpeg skips them; Pillow reads them one at a time)."""
    data = encode(Image.new("RGB", (2400, 80), "grey"), "JPEG")
    scan = data.index(b"\xff\xda")
    return data[:scan] + b"\x00" * count + data[scan:]


def png_chunks(count: int = 3_000_000, where: str = "before") -> bytes:
    """A 2400x80 PNG with `count` empty private chunks before its IDAT ("before") or after it ("after"), or its
    pixel data (stored: 576 KB) split into `count` IDAT chunks ("idat", at most one a byte)."""
    width, height = 2400, 80
    pixels = zlib.compress((b"\x00" + b"\x80" * 3 * width) * height, 0 if where == "idat" else 9)  # stored: splittable
    parts = min(count, len(pixels)) if where == "idat" else 1
    idat = [_chunk(b"IDAT", pixels[i * len(pixels) // parts : (i + 1) * len(pixels) // parts]) for i in range(parts)]
    extra = _chunk(b"zzZz", b"") * count if where in ("before", "after") else b""
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    before, after = (extra, b"") if where == "before" else (b"", extra)
    return b"\x89PNG\r\n\x1a\n" + ihdr + before + b"".join(idat) + after + _chunk(b"IEND", b"")


def gif_frames(count: int = 2_000_000, size: tuple[int, int] = (240, 180)) -> bytes:
    """A GIF with `count` one-pixel frames: counting them walks each one in Python."""
    width, height = size
    header = b"GIF89a" + struct.pack("<HH", width, height) + b"\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1) + b"\x00" + b"\x02\x02\x44\x01\x00"
    return header + frame * count + b"\x3b"


def _ifd(order: str, entries: list[tuple[int, int, int, bytes]], following: int) -> bytes:
    body = struct.pack(order + "H", len(entries))
    for tag, kind, values, value in sorted(entries):
        body += struct.pack(order + "HHI", tag, kind, values) + value
    return body + struct.pack(order + "I", following)


def tiff_directories(count: int = 200_000, size: tuple[int, int] = (2400, 40)) -> bytes:
    """A grey TIFF with `count` directories (pages) sharing one strip: counting its frames reads each one."""
    width, height = size
    data = bytearray(b"II*\x00" + struct.pack("<I", 0))
    strip = len(data)
    data += b"\x80" * (width * height)
    first = len(data)
    struct.pack_into("<I", data, 4, first)
    short = lambda value: struct.pack("<HH", value, 0)  # noqa: E731
    entries = [(256, 3, 1, short(width)), (257, 3, 1, short(height)), (258, 3, 1, short(8)), (259, 3, 1, short(1)),
               (262, 3, 1, short(1)), (273, 4, 1, struct.pack("<I", strip)), (278, 3, 1, short(height)),
               (279, 4, 1, struct.pack("<I", width * height))]
    size_of = len(_ifd("<", entries, 0))
    for index in range(count):
        data += _ifd("<", entries, first + (index + 1) * size_of if index < count - 1 else 0)
    return bytes(data)


def tiff_tiles(size: tuple[int, int] = (9984, 9984), tile: int = 16, compression: int = 8) -> bytes:
    """A grey TIFF of `tile`-px tiles, all pointing at one tile's data: deflated (`compression` 8, decoded by
    libtiff) or stored (1, Pillow's own decoder, tile by tile)."""
    width, height = size
    count = -(-width // tile) * -(-height // tile)
    data = bytearray(b"II*\x00" + struct.pack("<I", 0))
    pixels = len(data)
    packed = zlib.compress(b"\x80" * tile * tile) if compression == 8 else b"\x80" * tile * tile
    data += packed
    offsets = len(data)
    data += struct.pack("<I", pixels) * count
    sizes = len(data)
    data += struct.pack("<I", len(packed)) * count
    struct.pack_into("<I", data, 4, len(data))
    short = lambda value: struct.pack("<HH", value, 0)  # noqa: E731
    data += _ifd("<", [(256, 4, 1, struct.pack("<I", width)), (257, 4, 1, struct.pack("<I", height)),
                       (258, 3, 1, short(8)), (259, 3, 1, short(compression)), (262, 3, 1, short(1)),
                       (322, 3, 1, short(tile)), (323, 3, 1, short(tile)), (324, 4, count, struct.pack("<I", offsets)),
                       (325, 4, count, struct.pack("<I", sizes))], 0)
    return bytes(data)
