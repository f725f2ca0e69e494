"""The bad-input corpus: objects a production bucket receives, each with the outcome headseg must reach.

Everything is generated here (no binaries in the repository): `cases()` yields one Case per input.
"""

from __future__ import annotations

import io
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
        # not images at all: skipped
        Case("empty.jpg", lambda: b"", "skipped", "NotAnImage", "not an image"),
        Case("page.jpg", lambda: b"<!DOCTYPE html><html><body>404</body></html>", "skipped", "NotAnImage"),
        Case("doc.pdf", lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "skipped", "NotAnImage"),
        Case("archive.zip", lambda: b"PK\x03\x04" + b"\x00" * 40, "skipped", "NotAnImage"),
        Case("notes.bmp", lambda: b"BMW owners club, minutes of the meeting", "skipped", "NotAnImage"),
        Case("vector.svg", lambda: b'<svg xmlns="http://www.w3.org/2000/svg"/>', "skipped", "NotAnImage"),
        Case("icon.ico", lambda: encode(photo(64, 64), "ICO"), "skipped", "NotAnImage"),
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
