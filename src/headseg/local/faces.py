"""Faces for the offline engine: where to look (tiles, a preview), what a detector found, which finds are one
face, and the head boxes around a face. Pure geometry on numpy arrays, apart from `detect`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from headseg.local.tflite import NOSE, Detection

NMS_IOU = 0.3
PREVIEW_SIDE = 1024  # the orientation search (and the whole-image pass) look at the image shrunk to this
FINE_SIDE = 256  # fine tiles' side in pixels: the full-range detector (192 px) sees them at 3/4 scale
FINE_MAX_TILES = 24  # on larger images fine tiles grow so that there are at most this many
COARSE_FRACTION = 0.5  # short-range tiles' side as a fraction of the image's short side
MIN_TILED_SIDE = 400  # smaller images are searched whole only
HEAD_TOP = 0.75  # hair above the face box, in face heights
HEAD_BOTTOM = 0.08  # below the face box (the chin), in face heights
HEAD_SIDE = 0.3  # ears and hair each side, in face widths
REACH_TOP = 0.85  # hair may reach this far above the face box, in face heights
REACH_SIDE = 0.4  # and this far each side of it, in face widths
YAW_SHIFT = 1.0  # a turned face's head lies behind it: shift the head box away from the nose by this much


class Detector(Protocol):
    def process(self, rgb: np.ndarray) -> list[Detection]: ...


@dataclass(frozen=True)
class Face:
    """A detected face: box (x0, y0, x1, y1) and nose tip (x, y) in image pixels, and the detector's score."""

    box: tuple[float, float, float, float]
    score: float
    nose: tuple[float, float] | None = None

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)


def head_box(face: Face, width: int, height: int) -> tuple[float, float, float, float]:
    """The box a head (with hair, without neck) occupies around a face box, clipped to the image."""
    return _grown(face, width, height, HEAD_TOP, HEAD_SIDE)


def reach_box(face: Face, width: int, height: int) -> tuple[float, float, float, float]:
    """The farthest a head's hair may reach around a face box (big hair, a hat), cut at the jaw: the
    segmentation decides how much of it is head."""
    return _grown(face, width, height, REACH_TOP, REACH_SIDE)


def _grown(face: Face, width: int, height: int, top: float, side: float) -> tuple[float, float, float, float]:
    """The face box grown `top` face heights upwards, `side` face widths each way and to just below the chin,
    clipped to the image. In a turned face the nose sits off the box's middle and the back of the head is on
    the other side, so the box shifts away from the nose."""
    x0, y0, x1, y1 = face.box
    shift = -YAW_SHIFT * (face.nose[0] - face.centre[0]) if face.nose else 0.0
    return (
        max(0.0, x0 - side * face.width + shift),
        max(0.0, y0 - top * face.height),
        min(float(width), x1 + side * face.width + shift),
        min(float(height), y1 + HEAD_BOTTOM * face.height),
    )


def coarse_tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Half-overlapping square tiles, COARSE_FRACTION of the short side, for short-range detection; none
    for small images (searched whole only)."""
    short = min(width, height)
    if short < MIN_TILED_SIDE:
        return []
    side = int(short * COARSE_FRACTION)
    return grid(width, height, side, side // 2)


def fine_tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Square tiles of FINE_SIDE pixels overlapping by a quarter (a small face is whole in one of them), or
    larger where that would make more than FINE_MAX_TILES; none when the image is not much larger than one."""
    if min(width, height) < 1.5 * FINE_SIDE:
        return []
    side = FINE_SIDE
    while len(grid(width, height, side, side // 4)) > FINE_MAX_TILES:
        side = int(side * 1.1) + 1
    return grid(width, height, side, side // 4)


def grid(width: int, height: int, side: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Square tiles (x0, y0, x1, y1) of `side` covering the image, neighbours sharing `overlap` pixels, the
    last row and column flush with the image's edges."""
    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        return sorted(set(range(0, length - side, side - overlap)) | {length - side})

    return [(x, y, min(width, x + side), min(height, y + side)) for y in starts(height) for x in starts(width)]


def crop(rgb: np.ndarray, tile: tuple[int, int, int, int]) -> np.ndarray:
    """The tile's view of `rgb` (the detector samples views as they are)."""
    x0, y0, x1, y1 = tile
    return rgb[y0:y1, x0:x1]


def preview(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """`rgb` shrunk (by area) to at most PREVIEW_SIDE, and the factor from its pixels to the image's."""
    height, width = rgb.shape[:2]
    if max(height, width) <= PREVIEW_SIDE:
        return rgb, 1.0
    from PIL import Image

    ratio = PREVIEW_SIDE / max(height, width)
    size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
    small = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX))
    return small, width / size[0]


def detect(detector: Detector, rgb: np.ndarray, dx: int, dy: int, scale: float = 1.0) -> list[Face]:
    """Faces a detector (`tflite.FaceDetector`) finds in `rgb`, in the coordinates of the image it was cut from
    (at `dx`, `dy`) or shrunk from (by `scale`)."""
    height, width = rgb.shape[0] * scale, rgb.shape[1] * scale
    faces = []
    for detection in detector.process(rgb):
        left, top, right, bottom = detection.box
        x0 = max(0.0, left * width) + dx
        y0 = max(0.0, top * height) + dy
        x1 = min(float(width), right * width) + dx
        y1 = min(float(height), bottom * height) + dy
        keypoints = detection.keypoints
        nose = (keypoints[NOSE][0] * width + dx, keypoints[NOSE][1] * height + dy) if len(keypoints) > NOSE else None
        if x1 - x0 >= 4 and y1 - y0 >= 4:
            faces.append(Face((x0, y0, x1, y1), detection.score, nose))
    return faces


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(faces: list[Face]) -> list[Face]:
    """Keep the best-scoring face of every group that overlaps by more than NMS_IOU or that are nested (a
    face centred inside another is a fragment of it, or the same face boxed by another detector)."""
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: f.score, reverse=True):
        if not any(same_face(face, other) for other in kept):
            kept.append(face)
    return kept


def same_face(a: Face, b: Face) -> bool:
    """Two finds of one face: they overlap by more than NMS_IOU, or are nested."""
    return iou(a.box, b.box) > NMS_IOU or nested(a, b)


def nested(a: Face, b: Face) -> bool:
    """Either face's centre lies inside the other's box."""
    return inside(a.centre, b.box) or inside(b.centre, a.box)


def inside(point: tuple[float, float], box: tuple[float, float, float, float]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def one_per_head(faces: list[Face], width: int, height: int) -> list[Face]:
    """Drop a face centred inside a surer face's head box: the back of a head in profile, or an ear, found
    as a second face."""
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: f.score, reverse=True):
        if not any(inside(face.centre, head_box(other, width, height)) for other in kept):
            kept.append(face)
    return kept
