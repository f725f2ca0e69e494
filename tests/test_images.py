import io

import pytest
from PIL import Image

from headseg import images
from headseg.errors import InvalidImage


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
    assert images.read_header(jpeg, complete=True) == images.ImageInfo("JPEG", 200, 100, "RGB", 1)


LIMITS = dict(max_bytes=3 * 1024 * 1024, min_side=33, max_side=1999)


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
