"""The offline engine's pure parts: tiles that leave no face out, one face per head, the lift of a dark image,
the split between touching heads."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from headseg.segmenters import faces, headcut, mattes
from headseg.segmenters.faces import Face


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
