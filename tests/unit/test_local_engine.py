"""The offline engine finds the heads a person would label and cuts out only the head."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from headseg.function.errors import InvalidImage
from tests.conftest import SAMPLES, iou, png_image, sample_labels

LABELS = sample_labels()


@pytest.mark.parametrize("name", sorted(LABELS))
def test_finds_every_labelled_head_and_nothing_else(local_segmenter, name):
    heads = local_segmenter.cut((SAMPLES / name).read_bytes(), None)
    found = [[h.x, h.y, h.width, h.height] for h in heads]
    assert len(found) == len(LABELS[name])
    for label in LABELS[name]:
        assert max(iou(label, box) for box in found) >= 0.5, (label, found)
    assert [box[0] for box in found] == sorted(box[0] for box in found)  # left to right, like SegmentHead


def test_background_outside_the_head_is_transparent(local_segmenter):
    [head] = local_segmenter.cut((SAMPLES / "astronaut.jpg").read_bytes(), None)
    cutout = png_image(head.png)
    assert cutout.mode == "RGBA" and cutout.size == (head.width, head.height)
    alpha = np.asarray(cutout)[:, :, 3]
    corners = [alpha[0, 0], alpha[0, -1], alpha[-1, 0], alpha[-1, -1]]
    assert max(corners) == 0
    assert alpha[head.height // 2, head.width // 2] == 255  # the face
    assert 0.45 < (alpha > 127).mean() < 0.9  # a head fills most of its box, not all of it
    # the colours are the source's: the cutout is the image, not a rendering
    source = np.asarray(Image.open(SAMPLES / "astronaut.jpg").convert("RGB"))
    centre = (head.y + head.height // 2, head.x + head.width // 2)
    assert tuple(np.asarray(cutout)[head.height // 2, head.width // 2, :3]) == tuple(source[centre])


def test_the_suit_below_the_chin_is_not_head(local_segmenter):
    [head] = local_segmenter.cut((SAMPLES / "astronaut.jpg").read_bytes(), None)
    alpha = np.asarray(png_image(head.png))[:, :, 3]
    assert head.y + head.height <= 200  # the chin is at about y=187; the collar starts below it
    assert alpha[-3:, :].mean() < 128  # only the chin reaches the bottom rows


def test_mask_form_is_single_channel_with_the_same_boxes(local_segmenter):
    data = (SAMPLES / "group.jpg").read_bytes()
    cutouts = local_segmenter.cut(data, None)
    masks = local_segmenter.cut(data, "mask")
    assert [(h.x, h.y, h.width, h.height) for h in masks] == [(h.x, h.y, h.width, h.height) for h in cutouts]
    for mask, cutout in zip(masks, cutouts):
        image = png_image(mask.png)
        assert image.mode == "L" and image.size == (mask.width, mask.height)
        assert np.array_equal(np.asarray(image), np.asarray(png_image(cutout.png))[:, :, 3])


def test_an_image_without_people_has_no_heads(local_segmenter):
    gradient = Image.linear_gradient("L").resize((640, 480)).convert("RGB")
    buffer = io.BytesIO()
    gradient.save(buffer, "JPEG")
    assert local_segmenter.cut(buffer.getvalue(), None) == []


def test_undecodable_bytes_are_an_invalid_image(local_segmenter):
    with pytest.raises(InvalidImage) as error:
        local_segmenter.cut(b"\xff\xd8\xff\xe0 truncated", None)
    assert error.value.code == "InvalidImage.Content"


def _rotated_box(box: list[int], turns: int, size: tuple[int, int]) -> list[float]:
    """The upright image's box on the image turned `turns` quarter turns counter-clockwise (PIL's ROTATE_90 = one)."""
    x, y, w, h = box
    width, height = size
    for _ in range(turns):
        x, y, w, h = y, width - x - w, h, w
        width, height = height, width
    return [x, y, w, h]


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_a_turned_photo_is_searched_turned_and_its_boxes_land_on_its_own_pixels(local_segmenter, turns):
    upright = Image.open(SAMPLES / "astronaut.jpg")
    turned = upright.transpose([Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270][turns - 1])
    data = io.BytesIO()
    turned.save(data, "JPEG", quality=92)
    heads = local_segmenter.cut(data.getvalue(), None)
    [expected] = [_rotated_box(label, turns, upright.size) for label in LABELS["astronaut.jpg"]]
    [found] = [[h.x, h.y, h.width, h.height] for h in heads]
    assert iou(expected, found) >= 0.5, (found, expected)  # the head box of the upright search, turned with the photo
    pixels = np.asarray(Image.open(io.BytesIO(data.getvalue())).convert("RGB"))  # as the engine decoded it
    for head in heads:  # the matte is turned back with the box: its opaque middle is the face, in the turned photo
        cutout = np.asarray(png_image(head.png))
        assert cutout.shape[:2] == (head.height, head.width)
        assert tuple(cutout[head.height // 2, head.width // 2, :3]) == tuple(pixels[head.y + head.height // 2, head.x + head.width // 2])


def test_a_large_photo_is_searched_on_a_preview_and_its_boxes_land_on_its_own_pixels(local_segmenter):
    upright = Image.open(SAMPLES / "astronaut.jpg")
    scale = 3  # 1536 px: the whole-image pass looks at a 1024 px preview
    large = upright.resize((upright.width * scale, upright.height * scale), Image.Resampling.BICUBIC)
    data = io.BytesIO()
    large.save(data, "JPEG", quality=92)
    [head] = local_segmenter.cut(data.getvalue(), None)
    [label] = LABELS["astronaut.jpg"]
    assert iou([v * scale for v in label], [head.x, head.y, head.width, head.height]) >= 0.5
