"""The offline engine's models, as shipped, give what mediapipe 0.10.21 gave on the samples."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from headseg.local import tflite
from tests.conftest import SAMPLES

# the models as taken from mediapipe 0.10.21's wheel (src/headseg/local/models/SOURCES.md)
CHECKSUMS = {
    "face_detection_short_range.tflite": "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    "face_detection_full_range_sparse.tflite": "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
    "selfie_segmentation.tflite": "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
}

# Recorded with mediapipe 0.10.21's FaceDetection (model_selection 1 = full, 0 = short) and SelfieSegmentation
# (model_selection 0) on the samples (a crop of a sample: x0,y0,x1,y1): per face its score, box (x0, y0, x1, y1)
# and nose tip (x, y), relative to the image; per mask its mean and the share of pixels >= 0.5.
RECORDED = {
    ("astronaut.jpg", None): {
        "full": [[0.911, 0.33861, 0.13155, 0.54332, 0.33626, 0.43724, 0.25753]],
        "short": [[0.92021, 0.34524, 0.1613, 0.53264, 0.34871, 0.43223, 0.25023]],
        "mask": [0.542, 0.54478],
    },
    ("cameraman.png", None): {
        "full": [[0.86667, 0.38989, 0.23964, 0.53827, 0.38804, 0.49327, 0.33626]],
        "short": [[0.76602, 0.35229, 0.23854, 0.51801, 0.40427, 0.43051, 0.32636]],
        "mask": [0.32096, 0.32728],
    },
    ("group.jpg", (0, 0, 640, 640)): {
        "full": [[0.93589, 0.2535, 0.40119, 0.38514, 0.53285, 0.31389, 0.47566]],
        "short": [[0.7084, 0.25608, 0.41553, 0.39086, 0.55031, 0.31544, 0.49175]],
        "mask": [0.36485, 0.37732],
    },
    ("group.jpg", (1000, 300, 1300, 640)): {  # not square: letterboxed for detection, stretched for the mask
        "full": [[0.82367, 0.31986, 0.17585, 0.53032, 0.36152, 0.42935, 0.28415]],
        "short": [[0.93323, 0.33605, 0.19129, 0.52444, 0.35753, 0.42805, 0.28204]],
        "mask": [0.36247, 0.36393],
    },
    ("group.jpg", None): {"full": [], "short": [], "mask": [0.04728, 0.03641]},  # the whole group: faces too small
}
TOLERANCE = 1e-3  # scores and relative coordinates; LiteRT's kernels and OpenCV's matrix rounding differ by ~2e-4


@pytest.fixture(scope="module")
def models() -> dict[str, tflite.FaceDetector | tflite.PersonSegmenter]:
    return {
        "full": tflite.FaceDetector(tflite.FULL_RANGE),
        "short": tflite.FaceDetector(tflite.SHORT_RANGE),
        "mask": tflite.PersonSegmenter(),
    }


def test_the_models_are_the_ones_taken_from_mediapipe():
    sources = (tflite.MODELS / "SOURCES.md").read_text(encoding="utf-8")
    assert (tflite.MODELS / "LICENSE").read_text(encoding="utf-8").lstrip().startswith("Apache License")
    for name, checksum in CHECKSUMS.items():
        assert hashlib.sha256((tflite.MODELS / name).read_bytes()).hexdigest() == checksum, name
        assert checksum in sources, name
    assert {tflite.FULL_RANGE.file, tflite.SHORT_RANGE.file, tflite.SEGMENTER_FILE} == set(CHECKSUMS)


@pytest.mark.parametrize(("name", "box"), list(RECORDED))
def test_detectors_and_segmenter_give_what_mediapipe_gave(models, name, box):
    rgb = np.asarray(Image.open(SAMPLES / name).convert("RGB"))
    if box is not None:
        rgb = rgb[box[1] : box[3], box[0] : box[2]]
    expected = RECORDED[(name, box)]
    for kind in ("full", "short"):
        found = [[d.score, *d.box, *d.keypoints[tflite.NOSE]] for d in models[kind].process(rgb)]
        assert len(found) == len(expected[kind]), (kind, found)
        for face, recorded in zip(found, expected[kind]):
            assert np.allclose(face, recorded, rtol=0, atol=TOLERANCE), (kind, face, recorded)
    mask = models["mask"].process(rgb)
    assert mask.shape == rgb.shape[:2] and mask.dtype == np.float32
    assert np.allclose([mask.mean(), (mask >= 0.5).mean()], expected["mask"], rtol=0, atol=TOLERANCE)


def test_anchors_are_blazefaces():
    short, full = tflite.anchors(tflite.SHORT_RANGE), tflite.anchors(tflite.FULL_RANGE)
    assert short.shape == (896, 2) and full.shape == (2304, 2)
    assert tuple(short[0]) == tuple(short[1]) == (0.5 / 16, 0.5 / 16)  # 16 x 16 cells, two anchors each
    assert tuple(short[512]) == (0.5 / 8, 0.5 / 8)  # then 8 x 8 cells, three layers of two anchors each
    assert tuple(full[-1]) == (47.5 / 48, 47.5 / 48)


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(1, 9), width=st.integers(1, 9), out=st.integers(1, 6),
    x0=st.floats(-4, 4), y0=st.floats(-4, 4), sx=st.floats(0.1, 3), sy=st.floats(0.1, 3), seed=st.integers(0, 99),
)
def test_warp_samples_as_opencv_does(height, width, out, x0, y0, sx, sy, seed):
    """Every output pixel by OpenCV's fixed-point rule, one at a time: positions on a 1/32 grid, weights out of
    32 per axis, black outside the image (however far), rounded once."""
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)

    def pixel(y: int, x: int) -> np.ndarray:
        return rgb[y, x].astype(np.int64) if 0 <= y < height and 0 <= x < width else np.zeros(3, np.int64)

    expected = np.zeros((out, out + 1, 3), np.uint8)
    for v in range(out):
        for u in range(out + 1):
            fx, fy = round((x0 + u * sx) * 32), round((y0 + v * sy) * 32)
            ix, iy, ax, ay = fx >> 5, fy >> 5, fx & 31, fy & 31
            total = (
                pixel(iy, ix) * (32 - ay) * (32 - ax) + pixel(iy, ix + 1) * (32 - ay) * ax
                + pixel(iy + 1, ix) * ay * (32 - ax) + pixel(iy + 1, ix + 1) * ay * ax
            )
            expected[v, u] = (total * 32 + (1 << 14)) >> 15
    assert np.array_equal(tflite.warp(rgb, x0, y0, sx, sy, out + 1, out), expected)
