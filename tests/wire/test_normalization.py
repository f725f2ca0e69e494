"""Inputs outside SegmentHead's limits are normalized, and every coordinate maps back to the original."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from headseg.function import images
from headseg.function.errors import InvalidImage
from headseg.function.images import ImageInfo
from headseg.function.memory import check_decode_cost, decode_cost
from headseg.function.normalize import Limits, normalize
from tests.conftest import BUCKET, Cloud
from tests.corpus import encode, heic, png_claiming
from tests.fakes.images import portrait

HEADS = [(400, 500, 600, 800), (1800, 450, 640, 860)]  # in a 3000x2000 photo


def test_a_large_photo_is_downscaled_for_segmenthead_and_boxes_map_back(cloud: Cloud):
    data = portrait(3000, 2000, HEADS)
    etag = cloud.upload("incoming/big.jpg", data)

    outcome = cloud.invoke_key("incoming/big.jpg", etag)["outcomes"][0]

    assert outcome["outcome"] == "done" and outcome["heads"] == 2
    sidecar = cloud.read_json("heads/incoming/big.jpg/heads.json")
    assert (sidecar["source"]["width"], sidecar["source"]["height"]) == (3000, 2000)
    norm = sidecar["normalization"]
    assert (norm["width"], norm["height"], norm["format"]) == (1999, 1332, "JPEG")
    assert norm["steps"] == ["downscaled from 3000x2000 to 1999x1332"]
    for head, (x, y, w, h) in zip(sidecar["heads"], HEADS):  # original pixels, within rounding of the scale
        assert abs(head["x"] - x) <= 4 and abs(head["y"] - y) <= 4
        assert abs(head["width"] - w) <= 6 and abs(head["height"] - h) <= 6
    [url] = cloud.imageseg.fetched_urls
    scratch = rf"/{BUCKET}/heads/\.scratch/incoming/big\.jpg/{etag[:8].lower()}\.jpg\?"
    assert re.search(scratch, url)  # SegmentHead read this run's copy
    assert not [k for k in cloud.outputs() if ".scratch" in k]  # and it is gone


def test_exif_orientation_is_applied_and_boxes_are_upright(cloud: Cloud):
    upright = Image.open(io.BytesIO(portrait(300, 400, [(100, 60, 90, 120)], fmt="PNG"))).convert("RGB")
    stored = upright.rotate(90, expand=True)  # stored sideways: 400x300, displayed after a 90° turn clockwise
    exif = stored.getexif()
    exif[0x0112] = 6
    etag = cloud.upload("incoming/phone.jpg", encode(stored, "JPEG", exif=exif, quality=95))

    assert cloud.invoke_key("incoming/phone.jpg", etag)["outcomes"][0]["outcome"] == "done"

    sidecar = cloud.read_json("heads/incoming/phone.jpg/heads.json")
    assert (sidecar["source"]["width"], sidecar["source"]["height"]) == (300, 400)
    assert sidecar["normalization"]["steps"] == ["EXIF orientation 6 applied"]
    [head] = sidecar["heads"]
    assert abs(head["x"] - 100) <= 2 and abs(head["y"] - 60) <= 2 and abs(head["width"] - 90) <= 3


@pytest.mark.parametrize(
    "name, make, step",
    [
        ("webp", lambda img: encode(img, "WEBP", quality=95), "transcoded WEBP to JPEG"),
        ("tiff", lambda img: encode(img, "TIFF"), "transcoded TIFF to JPEG"),
        ("gif", lambda img: encode(img.quantize(64), "GIF"), "converted P to RGB"),
        ("cmyk", lambda img: encode(img.convert("CMYK"), "JPEG", quality=95), "converted CMYK to RGB"),
        ("heic", heic, "transcoded HEIF to JPEG"),
    ],
)
def test_formats_segmenthead_refuses_are_transcoded(cloud: Cloud, name, make, step):
    image = Image.open(io.BytesIO(portrait(400, 300, [(60, 50, 80, 100), (250, 40, 90, 110)], fmt="PNG"))).convert("RGB")
    etag = cloud.upload(f"incoming/p.{name}", make(image))
    outcome = cloud.invoke_key(f"incoming/p.{name}", etag)["outcomes"][0]
    assert outcome["outcome"] == "done" and outcome["heads"] == 2, outcome
    assert step in cloud.read_json(f"heads/incoming/p.{name}/heads.json")["normalization"]["steps"]


def test_an_oversized_png_is_recompressed_under_the_limit(cloud: Cloud):
    noisy = Image.effect_noise((1900, 1500), 90).convert("RGB")
    data = encode(noisy, "PNG")
    assert len(data) > 3 * 1024 * 1024
    etag = cloud.upload("incoming/noise.png", data)
    assert cloud.invoke_key("incoming/noise.png", etag)["outcomes"][0]["outcome"] == "done"
    steps = cloud.read_json("heads/incoming/noise.png/heads.json")["normalization"]["steps"]
    assert "transcoded PNG to JPEG" in steps


def test_normalize_keeps_alpha_as_png_and_converts_16_bit():
    rgba = normalize(encode(Image.new("RGBA", (2400, 100), (255, 0, 0, 128)), "PNG"), Limits())
    assert (rgba.format, rgba.width, rgba.height) == ("PNG", 1999, 83)
    deep = normalize(encode(Image.new("I;16", (100, 100), 40000), "PNG"), Limits())
    assert deep.format == "JPEG" and "converted I;16 (16-bit) to L" in deep.steps
    assert Image.open(io.BytesIO(deep.data)).getpixel((50, 50)) == pytest.approx(156, abs=2)


def test_a_line_too_thin_after_downscaling_is_refused():
    with pytest.raises(InvalidImage) as error:
        normalize(encode(Image.new("L", (40000, 40)), "PNG"), Limits())
    assert error.value.code == "InvalidImage.Resolution"
    assert "would be 1999x1, under the minimum of 33 px" in error.value.message


def test_a_decompression_bomb_is_refused_from_its_header(cloud: Cloud):
    bomb = png_claiming(100_000, 100_000)
    etag = cloud.upload("incoming/bomb.png", bomb)
    outcome = cloud.invoke_key("incoming/bomb.png", etag)["outcomes"][0]
    assert outcome["outcome"] == "failed" and outcome["code"] == "InvalidImage.TooManyPixels"
    assert "refused unread" in outcome["reason"]
    assert cloud.imageseg.calls == 0


def test_an_object_over_max_object_bytes_is_refused_without_reading_it(cloud: Cloud):
    cloud.configure(MAX_OBJECT_BYTES="100000")
    data = encode(Image.effect_noise((1200, 1200), 90).convert("RGB"), "JPEG", quality=95)
    etag = cloud.upload("incoming/huge.jpg", data)
    outcome = cloud.invoke_key("incoming/huge.jpg", etag)["outcomes"][0]
    assert outcome["outcome"] == "failed" and outcome["code"] == "InvalidImage.Size"
    full_reads = [e for e in cloud.oss.logged(lambda r: r.method == "GET" and "huge.jpg" in r.path and "heads" not in r.path.split("/")[2]) if "range" not in e.request.headers]
    assert full_reads == []


def test_an_exact_decoder_reduction_is_cropped_not_resampled_and_maps_back_exactly():
    image = Image.new("RGB", (8000, 6000), (200, 200, 200))
    image.paste((255, 0, 0), (4000, 2000, 4400, 2400))  # a 400 px red square
    normalized = normalize(encode(image, "JPEG", quality=90), Limits())
    assert (normalized.width, normalized.height, normalized.scale) == (1999, 1500, 0.25)
    assert normalized.steps == ("decoded at 1/4 scale and cropped from 8000x6000 to 1999x1500",)
    assert normalized.to_original(1000, 500, 100, 100) == (4000, 2000, 400, 400)
    red = Image.open(io.BytesIO(normalized.data)).convert("RGB").getpixel((1050, 550))
    assert red[0] > 200 and red[1] < 60


def test_an_object_read_whole_for_its_header_is_not_downloaded_again_for_normalizing(cloud: Cloud):
    image = Image.open(io.BytesIO(portrait(300, 200, [(40, 30, 60, 80)], fmt="PNG"))).convert("RGB")
    exif = image.getexif()
    exif[0x0112] = 3  # upside down: normalized, and the ICC profile pushes the header past the first 64 KB
    etag = cloud.upload("incoming/icc.jpg", encode(image, "JPEG", exif=exif, icc_profile=b"\x00" * 90_000))

    assert cloud.invoke_key("incoming/icc.jpg", etag)["outcomes"][0]["outcome"] == "done"

    source_gets = cloud.oss.logged(lambda r: r.method == "GET" and cloud.oss.match(key="incoming/icc.jpg")(r))
    full_reads = [e for e in source_gets if "range" not in e.request.headers and "x-oss-signature" not in e.request.raw_path]
    assert len(full_reads) == 1  # one ranged read for the header, one whole read, nothing twice


def test_an_oriented_tiff_is_turned_once_and_maps_back():
    """Pillow's TIFF plugin reports the displayed size and turns the image itself as it loads."""
    image = Image.new("RGB", (4000, 3000), "white")
    image.paste((255, 0, 0), (0, 0, 400, 300))  # stored top left: displayed top right after a quarter turn
    exif = image.getexif()
    exif[0x0112] = 6
    data = encode(image, "TIFF", exif=exif)
    info = images.read_header(data, complete=True)
    assert (info.width, info.height, info.orientation, info.upright_size) == (4000, 3000, 6, (3000, 4000))
    normalized = normalize(data, Limits())
    assert (normalized.original_width, normalized.original_height) == (3000, 4000)
    assert (normalized.width, normalized.height) == (1499, 1999)
    red = Image.open(io.BytesIO(normalized.data)).convert("RGB")
    assert red.getpixel((1450, 50))[1] < 60 and red.getpixel((50, 50))[1] > 200
    assert normalized.to_original(1350, 0, 149, 149) == pytest.approx((2701, 0, 299, 299), abs=2)


MB = 2**20


def test_decode_cost_follows_what_the_decoder_does():
    baseline = decode_cost(ImageInfo("JPEG", 8000, 6000, sampling=((2, 2), (1, 1), (1, 1))), 1999)
    progressive = decode_cost(ImageInfo("JPEG", 8000, 6000, progressive=True, sampling=((2, 2), (1, 1), (1, 1))), 1999)
    progressive_444 = decode_cost(ImageInfo("JPEG", 8000, 6000, progressive=True, sampling=((1, 1),) * 3), 1999)
    assert baseline < 40 * MB  # decoded at 1/4: 2000x1500, never the 48 MP
    assert 140 * MB < progressive < progressive_444  # every coefficient of the full image, 2 bytes each
    webp = decode_cost(ImageInfo("WEBP", 10000, 10000), 1999)
    assert 1500 * MB < webp < 2000 * MB  # measured: 1.53 GB
    rgba = decode_cost(ImageInfo("PNG", 10000, 10000, "RGBA"), 1999)
    assert 800 * MB < rgba < 1100 * MB  # measured: 874 MB, the premultiplied copy resize() makes included
    rgb = decode_cost(ImageInfo("PNG", 10000, 10000, "RGB"), 1999)
    assert rgb < decode_cost(ImageInfo("PNG", 10000, 10000, "RGB", orientation=6), 1999) < rgba  # a turned copy
    palette = decode_cost(ImageInfo("PNG", 6000, 4000, "P"), 1999)
    assert palette < decode_cost(ImageInfo("PNG", 6000, 4000, "P", transparency=True), 1999)
    assert decode_cost(ImageInfo("HEIF", 8000, 6000), 1999) < decode_cost(ImageInfo("HEIF", 8000, 6000, bit_depth=10), 1999)


def test_the_decode_cost_gate_names_the_estimate_the_limit_and_the_remedy():
    info = images.read_header(png_claiming(10_000, 10_000), complete=True)  # the header alone: nothing decoded
    allowed = int(512 * MB * 0.6)
    with pytest.raises(InvalidImage) as error:
        check_decode_cost(info, allowed, allowance=" at 512 MB function memory (MEMORY_FRACTION=0.6)")
    assert error.value.code == "InvalidImage.DecodeCost"
    message = error.value.message
    assert message.startswith("PNG 10000x10000 RGB needs ~")
    assert "over the 307 MB allowed at 512 MB function memory (MEMORY_FRACTION=0.6): raise memorySize in s.yaml" in message
    photo = ImageInfo("JPEG", 8000, 6000, sampling=((2, 2), (1, 1), (1, 1)))
    assert check_decode_cost(photo, allowed) == decode_cost(photo, Limits().max_side)
    with pytest.raises(InvalidImage, match=r"JPEG 8000x6000 RGB progressive needs ~\d+ MB .* over the 100 MB allowed: do X"):
        check_decode_cost(ImageInfo("JPEG", 8000, 6000, progressive=True), 100 * MB, remedy="do X")


def test_a_jpeg_with_more_pictures_after_it_is_decoded_at_reduced_size_too():
    """Phones append depth or gain maps as an MPO: Pillow opens it as format MPO, a JPEG all the same."""
    buffer = io.BytesIO()
    Image.new("RGB", (4000, 3000), "white").save(buffer, "MPO", save_all=True, append_images=[Image.new("RGB", (400, 300))])
    normalized = normalize(buffer.getvalue(), Limits())
    assert "decoded at 1/2 scale and cropped from 4000x3000 to 1999x1500" in normalized.steps


def test_a_mode_pillow_decodes_but_cannot_convert_is_a_clear_permanent_refusal():
    """A 16-bit big-endian TIFF decodes, but Pillow has no point() for its mode: a permanent InvalidImage that
    names the mode, not an exception nobody classified (which would be retried for ever)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("I;16B", (2400, 100)).save(buffer, "TIFF")
    with pytest.raises(InvalidImage, match=r"mode I;16B\) cannot be converted") as error:
        normalize(buffer.getvalue(), Limits())
    assert error.value.code == "InvalidImage.Unsupported"
