"""The offline engine's pure parts: tiles that leave no face out, one face per head, the lift of a dark image,
the split between touching heads."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest

from headseg.local import faces, headcut, mattes
from headseg.local.faces import Face
from headseg.local.tflite import Detection


@pytest.mark.parametrize("size", [(800, 533), (1024, 819), (2000, 1250), (1332, 2000), (2000, 2000)])
def test_fine_tiles_hold_every_small_face_whole_and_stay_within_their_count(size):
    width, height = size
    tiles = faces.fine_tiles(width, height)
    assert 0 < len(tiles) <= faces.FINE_MAX_TILES
    assert all(0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height for x0, y0, x1, y1 in tiles)
    face = faces.FINE_SIDE // 4  # the largest face the fine pass is for fits the overlap
    for x, y in itertools.product(range(0, width - face + 1, 37), range(0, height - face + 1, 41)):
        assert any(x0 <= x and y0 <= y and x + face <= x1 and y + face <= y1 for x0, y0, x1, y1 in tiles), (x, y)


def test_small_images_have_no_tiles():
    assert faces.fine_tiles(320, 240) == []
    assert faces.coarse_tiles(320, 240) == []


def test_coarse_tiles_cover_the_image_overlapping_by_half():
    tiles = faces.coarse_tiles(800, 533)
    side = int(533 * faces.COARSE_FRACTION)
    assert {(x1 - x0, y1 - y0) for x0, y0, x1, y1 in tiles} == {(side, side)}
    for starts, length in (sorted({t[0] for t in tiles}), 800), (sorted({t[1] for t in tiles}), 533):
        assert starts[0] == 0 and starts[-1] == length - side
        assert all(0 < b - a <= side - side // 2 for a, b in itertools.pairwise(starts))


def test_a_face_centred_inside_a_surer_one_is_a_fragment_of_it():
    face = Face((300, 200, 420, 340), 0.9)
    fragment = Face((350, 280, 400, 330), 0.7)  # a tile that cut through the face saw its lower half
    neighbour = Face((430, 210, 540, 330), 0.8)
    assert faces.nms([fragment, face, neighbour]) == [face, neighbour]


def test_the_back_of_a_head_in_profile_is_not_a_second_head():
    profile = Face((290, 120, 360, 210), 0.9, nose=(295, 170))
    back_of_head = Face((332, 108, 370, 170), 0.6)  # hair behind the ear, seen as a face by a tile
    beside = Face((545, 100, 585, 150), 0.95)  # someone else, well clear of the head
    kept = faces.one_per_head([back_of_head, profile, beside], 800, 600)
    assert sorted(kept, key=lambda f: f.box[0]) == [profile, beside]


def test_a_dark_image_is_lifted_for_the_detectors_and_a_lit_one_left_alone():
    rng = np.random.default_rng(7)
    dim = rng.integers(0, 100, size=(60, 80, 3), dtype=np.uint8)  # mean luminance about 50
    lifted = headcut.brightened(dim)
    assert abs(float(lifted.mean()) - headcut.LIFTED_MEAN) < 15
    assert (np.diff(lifted[..., 0].ravel()[np.argsort(dim[..., 0].ravel(), kind="stable")].astype(int)) >= 0).all()  # order kept
    lit = rng.integers(60, 200, size=(60, 80, 3), dtype=np.uint8)
    assert headcut.brightened(lit) is lit


def test_hair_between_two_heads_goes_to_the_head_it_grows_on_even_beside_a_larger_face():
    small = Face((300, 200, 380, 300), 0.9)  # a woman's face
    large = Face((395, 170, 515, 320), 0.9)  # a man's, larger and a little higher, touching her hair
    ys, xs = np.mgrid[0:400, 0:600].astype(np.float32)
    mine = mattes.nearest_head(small, [large], xs, ys, 600, 400)
    theirs = mattes.nearest_head(large, [small], xs, ys, 600, 400)
    hair = (175, 375)  # (y, x): the top of her hair, beside his temple (from face middles in face sizes: his)
    assert mine[hair] == 1.0 and theirs[hair] == 0.0
    assert mine[240, 340] == 1.0 and theirs[240, 455] == 1.0  # each face is its own
    assert ((mine + theirs) <= 1.0 + 1e-6).all()  # no pixel in both cutouts


def _person(height: int, width: int, *boxes: tuple[int, int, int, int]) -> np.ndarray:
    """A person mask: 1 over each (x0, y0, x1, y1), 0 elsewhere."""
    mask = np.zeros((height, width), np.float32)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = 1.0
    return mask


def test_a_head_seen_from_behind_sits_on_a_body_and_a_shirt_pattern_or_a_hand_does_not():
    face = Face((200, 100, 240, 140), 0.65)  # a candidate no full-range pass confirms: hair, seen from behind
    head = (196, 96, 244, 144)
    assert mattes.on_body(face, _person(400, 440, head, (150, 144, 290, 400)), 0, 0)  # a body below, sky above
    assert mattes.on_body(face, _person(350, 340, (96, 46, 144, 94), (50, 94, 190, 350)), 100, 50)  # a crop's mask
    at_the_top = Face((200, 10, 240, 50), 0.65)  # the band above it is outside the image
    assert mattes.on_body(at_the_top, _person(400, 440, (196, 6, 244, 54), (150, 50, 290, 400)), 0, 0)
    assert not mattes.on_body(face, _person(400, 440, (0, 0, 440, 400)), 0, 0)  # a pattern on a shirt: person above it
    assert not mattes.on_body(face, _person(400, 440, head), 0, 0)  # a hand, a ball: nothing of a body below
    assert not mattes.on_body(face, _person(400, 440, (150, 144, 290, 400)), 0, 0)  # beside a person, not one


Box = tuple[float, float, float, float]


class _Detector:
    """A face detector twin: `answer(shape)` is the relative box (x, y, width, height) of the one face it sees
    in an image of that shape, or None."""

    def __init__(self, answer: Callable[[tuple[int, ...]], Box | None], score: float) -> None:
        self.answer, self.score = answer, score

    def process(self, rgb: np.ndarray) -> list[Detection]:
        box = self.answer(rgb.shape[:2])
        if box is None:
            return []
        x, y, w, h = box
        return [Detection(self.score, (x, y, x + w, y + h), ())]


@pytest.mark.parametrize(("found_up_close", "turns"), [(True, 1), (False, 0)])
def test_a_turned_copy_wins_only_when_its_face_is_found_again_up_close(found_up_close, turns):
    """A close-up strip, 311 x 136: nothing upright; turned a quarter, the whole-image pass takes an eye for a
    small face (0.81). Up close, on the crop around it, a real face is found again (centred) and an eye is not."""
    def answer(shape: tuple[int, ...]) -> Box | None:
        if shape == (136, 311):
            return None  # upright, and turned half
        if shape == (311, 136):
            return (0.3, 0.6, 0.18, 0.08)  # turned a quarter either way
        return (0.38, 0.38, 0.24, 0.24) if found_up_close else None  # the crop around the face, 1.5 faces each side

    cutter = object.__new__(headcut.HeadCutter)  # its orientation search alone, over the twin
    cutter._full = _Detector(answer, 0.81)
    chosen, faces = cutter._orientation(np.zeros((136, 311, 3), np.uint8))
    assert chosen == turns
    assert len(faces) == (1 if found_up_close else 0)


def test_hair_beside_the_cheeks_is_head_and_a_collar_beside_the_jaw_is_not():
    face = Face((200, 100, 300, 220), 0.9)  # middle at y 160; the jaw line just below the chin, at y 229.6
    ys, xs = np.mgrid[0:300, 0:500].astype(np.float32)
    region = mattes.head_region(face, (0, 0, 500, 300), xs, ys)  # a box wide enough to leave the jaw rule alone
    beside = 250 + 50 + int(100 * (mattes.JAW_SIDE + 0.1))  # 0.1 face widths outside the jaw's width
    assert region[100:155, 250:420].min() == 1.0  # above the face's middle: as wide as the box
    assert region[165, beside] == 1.0  # hair hanging beside the cheek, just below the face's middle
    assert region[215, beside] == 0.0  # a collar's tip beside the jaw, just above the jaw line
    assert region[215, 250 + 55] == 1.0  # the jaw itself
    assert (region[233:] == 0.0).all()  # nothing below the jaw line
