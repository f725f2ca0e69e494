import io
import struct
import zlib

import pytest
from PIL import Image, ImageFile

from headseg.function import images
from headseg.function.errors import InvalidImage


def encode(fmt: str, size=(64, 48), mode="RGB", **options) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, "white").save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "fmt, mode, expected",
    [("JPEG", "RGB", "JPEG"), ("PNG", "RGBA", "PNG"), ("BMP", "RGB", "BMP"), ("GIF", "P", "GIF"), ("TIFF", "RGB", "TIFF"), ("WEBP", "RGB", "WEBP")],
)
def test_sniff_and_header(fmt, mode, expected):
    data = encode(fmt, mode=mode)
    assert images.sniff(data) == expected
    info = images.read_header(data, complete=True)
    assert (info.format, info.width, info.height, info.mode, info.orientation) == (expected, 64, 48, mode, 1)


@pytest.mark.parametrize("data", [b"", b"hello world", b"<html><body>not a jpeg</body></html>", b"BMW is a car, not a bitmap", b"%PDF-1.7"])
def test_non_images_are_not_sniffed(data):
    assert images.sniff(data) is None
    with pytest.raises(InvalidImage) as error:
        images.read_header(data, complete=True)
    assert error.value.code == "InvalidImage.NotImage"


def test_heif_brand_is_recognized():
    assert images.sniff(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00") == "HEIF"


def test_a_header_cut_short_asks_for_more_then_is_corrupt_when_complete():
    jpeg = encode("JPEG", size=(200, 100), exif=b"Exif\x00\x00" + b"\x00" * 60000)
    prefix = jpeg[:1000]  # ends inside the APP1 segment, before the frame header
    with pytest.raises(images.NeedMoreBytes):
        images.read_header(prefix, complete=False)
    with pytest.raises(InvalidImage) as error:
        images.read_header(prefix, complete=True)
    assert error.value.code == "InvalidImage.Corrupt"
    assert images.read_header(jpeg, complete=True) == images.ImageInfo("JPEG", 200, 100, "RGB", 1, sampling=((2, 2), (1, 1), (1, 1)))


LIMITS = {"max_bytes": 3 * 1024 * 1024, "min_side": 33, "max_side": 1999}


@pytest.mark.parametrize(
    "info, size, code, words",
    [
        (images.ImageInfo("GIF", 100, 100), 10, "InvalidImage.Format", "unsupported format GIF"),
        (images.ImageInfo("JPEG", 100, 100), 3 * 1024 * 1024 + 1, "InvalidImage.Size", "over SegmentHead's limit"),
        (images.ImageInfo("PNG", 32, 500), 10, "InvalidImage.Resolution", "under SegmentHead's minimum of 33x33"),
        (images.ImageInfo("PNG", 2000, 500), 10, "InvalidImage.Resolution", "over SegmentHead's maximum of 1999x1999"),
    ],
)
def test_limits(info, size, code, words):
    with pytest.raises(InvalidImage) as error:
        images.check_limits(info, size, **LIMITS)
    assert error.value.code == code and words in error.value.message


def test_limits_inclusive_bounds_pass():
    images.check_limits(images.ImageInfo("BMP", 33, 1999), 3 * 1024 * 1024, **LIMITS)


def test_exif_orientation_and_upright_size():
    image = Image.new("RGB", (300, 200))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    info = images.read_header(buffer.getvalue(), complete=True)
    assert info.orientation == 6 and info.upright_size == (200, 300)


def test_heif_header():
    from tests.corpus import heic

    info = images.read_header(heic(Image.new("RGB", (120, 80), "white")), complete=True)
    assert (info.format, info.width, info.height) == ("HEIF", 120, 80)


@pytest.fixture
def no_decoding(monkeypatch):
    """Every way Pillow (and pi-heif, and libwebp through Pillow) decodes pixels fails the test instead."""
    Image.init()
    images.register_heif()

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"{type(self).__name__}.load(): reading a header decoded pixel data")

    def decoder(*args, **kwargs):
        raise AssertionError("a Pillow decoder was made: reading a header decoded pixel data")

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for cls in {ImageFile.ImageFile, *subclasses(ImageFile.ImageFile)}:
        if "load" in vars(cls):
            monkeypatch.setattr(cls, "load", refuse)
    for name in dir(Image.core):  # Pillow's codecs: every pixel decode outside a load() makes one of them
        if name.endswith("_decoder"):
            monkeypatch.setattr(Image.core, name, decoder)
    monkeypatch.setattr(Image, "DECODERS", {})  # and of those a plugin registers (Image.register_decoder)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        chunks.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + length]))
        at += 12 + length
    return chunks


def png_from(chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(struct.pack(">I", len(b)) + k + b + struct.pack(">I", zlib.crc32(k + b)) for k, b in chunks)
    return b"\x89PNG\r\n\x1a\n" + body


def oriented_exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def multipage(fmt: str) -> bytes:
    frames = [Image.new("RGB", (64, 48), "white"), Image.new("RGB", (64, 48), "blue"), Image.new("RGB", (64, 48), "red")]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def heic_bytes() -> bytes:
    from tests.corpus import heic

    return heic(Image.new("RGB", (64, 48), "white"))


@pytest.mark.parametrize(
    "make, expected",
    [
        # Pillow's PngImageFile.getexif() loads the whole image when no eXIf chunk precedes IDAT: most PNGs
        (lambda: encode("PNG"), {"format": "PNG", "orientation": 1}),
        (lambda: encode("PNG", mode="RGBA", exif=oriented_exif(6)), {"format": "PNG", "mode": "RGBA", "orientation": 6}),
        (lambda: encode("PNG", mode="I;16"), {"format": "PNG", "mode": "I;16"}),
        (lambda: encode("JPEG", exif=oriented_exif(8)), {"format": "JPEG", "orientation": 8, "progressive": False}),
        (lambda: encode("JPEG", progressive=True, subsampling=0), {"progressive": True, "sampling": ((1, 1),) * 3}),
        (lambda: encode("JPEG", mode="CMYK"), {"mode": "CMYK", "sampling": ((1, 1),) * 4}),
        (lambda: encode("WEBP", exif=oriented_exif(3)), {"format": "WEBP", "orientation": 3}),
        (lambda: multipage("GIF"), {"format": "GIF", "mode": "P", "frames": 3}),
        (lambda: multipage("TIFF"), {"format": "TIFF", "frames": 3}),
        (lambda: multipage("WEBP"), {"format": "WEBP", "frames": 3}),
        (lambda: encode("TIFF", exif=oriented_exif(6)), {"format": "TIFF", "orientation": 6}),
        (lambda: encode("BMP"), {"format": "BMP"}),
        (heic_bytes, {"format": "HEIF", "bit_depth": 8}),
    ],
)
def test_reading_a_header_decodes_no_pixels(no_decoding, make, expected):
    data = make()
    info = images.read_header(data, complete=True)
    assert (info.width, info.height) == (64, 48)
    assert {name: getattr(info, name) for name in expected} == expected
    if info.format in ("PNG", "JPEG", "TIFF", "BMP"):  # and from a partial read (Pillow opens a WebP only whole)
        assert images.read_header(data[:-16], complete=False).orientation == info.orientation


def test_a_png_header_is_read_without_touching_its_corrupt_pixels(no_decoding):
    chunks = png_chunks(encode("PNG", size=(4000, 3000)))
    corrupt = png_from([(kind, b"\xde\xad" * 500 if kind == b"IDAT" else body) for kind, body in chunks])
    assert images.read_header(corrupt, complete=True) == images.ImageInfo("PNG", 4000, 3000, "RGB", 1)


def test_an_exif_chunk_after_the_pixels_is_not_looked_for(no_decoding):
    """Finding it would take decoding (Pillow) or the whole object: PNG writers put eXIf before IDAT."""
    chunks = png_chunks(encode("PNG", exif=oriented_exif(6)))
    exif = next(chunk for chunk in chunks if chunk[0] == b"eXIf")
    moved = [chunk for chunk in chunks if chunk[0] != b"eXIf"]
    moved.insert(-1, exif)  # just before IEND
    assert images.read_header(png_from(moved), complete=True).orientation == 1
