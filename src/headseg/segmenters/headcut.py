"""The offline engine: find every head and cut out head and hair, with the models mediapipe's wheel ships.

1. Faces: full-range detection on the whole image, on fine tiles (small heads: the detector sees a tile of
   about FINE_SIDE pixels at its own resolution) and short-range detection on coarser tiles (faces too
   turned or too low for full-range); overlapping candidates merged (NMS). A fine-tile face must score
   FINE_MIN_SCORE; a short-range one must be found again by full-range detection on a padded crop around it
   (tiles alone see faces in poker chips and headlights). A face centred inside another, or inside a surer
   face's head box, is a fragment of it (a tile's cut, the back of a head in profile).
2. Per face, a head box: the face box grown upwards for hair and sideways for ears, cut just below the chin.
3. Per head, person segmentation on a crop around it decides the outline: kept within the farthest hair
   may reach (a rounded box around the face), above the jaw line and, below the face's middle, over the
   jaw's width; where heads touch, each pixel goes to the head whose middle is nearest (in head sizes);
   edges softened. A dark image is segmented lifted, as it is searched.
4. Low light: in a dark image the tiles are searched under a gamma curve that lifts its shadows (the
   whole-image pass and the orientation search see it as it is).
5. Orientation: unless full-range detection is convinced by a face in the image as it is, it also looks at
   the image turned a quarter either way and half; where it is convinced and clearly surer (TURN_MARGIN),
   steps 1-3 run on that turned copy and every box and matte is turned back onto the image's own pixels.

Everything here works on numpy arrays; mediapipe is imported when the engine is built.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

FULL_RANGE_MIN_SCORE = 0.5
TILE_MIN_SCORE = 0.6
VERIFY_MIN_SCORE = 0.5
FINE_MIN_SCORE = 0.7  # a face only fine tiles see (no other pass confirms it) must be this sure
FINE_SIDE = 256  # fine tiles' side in pixels: the full-range detector (192 px) sees them at 3/4 scale
FINE_MAX_TILES = 24  # on larger images fine tiles grow so that there are at most this many
NMS_IOU = 0.3
PREVIEW_SIDE = 1024  # the orientation search (and the whole-image pass) look at the image shrunk to this
DARK_MEAN = 80  # an image darker than this (mean luminance, 0-255) is brightened before detection
LIFTED_MEAN = 115  # to about this mean
MIN_GAMMA = 0.4  # the strongest lift (noise in a near-black image is not a face)
TURNS = (1, 3, 2)  # quarter turns (counter-clockwise) looked at when the image as it is is not convincing
CONVINCING = 0.8  # a full-range face this sure in the image as it is: no turned copy is looked at
TURN_MARGIN = 0.15  # a turned copy wins when convinced and its surest face is this much surer than the image's own
COARSE_FRACTION = 0.5  # short-range tiles' side as a fraction of the image's short side
MIN_TILED_SIDE = 400  # smaller images are searched whole only
HEAD_TOP = 0.75  # hair above the face box, in face heights
HEAD_BOTTOM = 0.08  # below the face box (the chin), in face heights
HEAD_SIDE = 0.3  # ears and hair each side, in face widths
YAW_SHIFT = 1.0  # a turned face's head lies behind it: shift the head box away from the nose by this much
JAW_SIDE = 0.12  # below the face's middle only the face itself (plus this, in face widths) is head
REACH_TOP = 0.85  # hair may reach this far above the face box, in face heights
REACH_SIDE = 0.4  # and this far each side of it, in face widths
ROUNDNESS = 2.5  # the reach's corners: 2 is an ellipse, larger is closer to the box
CONTEXT = 1.5  # the segmentation crop is the reach box grown by this factor
SPLIT_SHARPNESS = 20.0  # the split between neighbours fades over 1/20 of a head size
ALPHA_FLOOR = 0.08  # alpha below this is background
MIN_OPAQUE = 0.5  # a matte with fewer opaque pixels than this share of its face box's falls back to the head's shape


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


@dataclass(frozen=True)
class HeadCut:
    """One head: its box in the image (x, y, width, height) and its alpha matte over that box (0..1)."""

    x: int
    y: int
    width: int
    height: int
    alpha: np.ndarray  # float32, shape (height, width)


class HeadCutter:
    """Finds heads and cuts them out. Holds mediapipe graphs: one instance, used by one thread at a time."""

    def __init__(self) -> None:
        from mediapipe.python.solutions import face_detection, selfie_segmentation

        self._full = face_detection.FaceDetection(model_selection=1, min_detection_confidence=FULL_RANGE_MIN_SCORE)
        self._short = face_detection.FaceDetection(model_selection=0, min_detection_confidence=TILE_MIN_SCORE)
        self._segmenter = selfie_segmentation.SelfieSegmentation(model_selection=0)
        self._lock = threading.Lock()

    def cut(self, rgb: np.ndarray) -> list[HeadCut]:
        """All heads in an RGB uint8 image, left to right, in its own pixels (however it was turned)."""
        with self._lock:
            turns, whole = self._orientation(rgb)
            if turns == 0:
                return self._cut_all(rgb, whole)
            height, width = rgb.shape[:2]
            image = np.ascontiguousarray(np.rot90(rgb, turns))
            faces = _nms(whole)  # turned copies are searched whole: tiles there add false faces
            found = [turn_back(self._cut_head(image, face, faces), turns, (height, width)) for face in faces]
            return sorted(found, key=lambda cut: cut.x)

    def _orientation(self, rgb: np.ndarray) -> tuple[int, list[Face]]:
        """(quarter turns, the full-range faces of the image so turned) in which full-range detection is
        surest: 0 turns unless a turn is convinced and surer by TURN_MARGIN (one full-range pass per turn, only
        when the image as it is is not convincing). The passes look at a preview no larger than PREVIEW_SIDE
        (the detector sees 192 pixels anyway); faces come back in the full image's pixels."""
        preview, scale = _preview(rgb)
        whole = _detect(self._full, preview, 0, 0, scale)
        own = max((face.score for face in whole), default=0.0)
        if own >= CONVINCING:
            return 0, whole
        needed, surest = max(CONVINCING, own + TURN_MARGIN), 0.0
        chosen: tuple[int, list[Face]] = (0, whole)
        for turns in TURNS:
            faces = _detect(self._full, np.ascontiguousarray(np.rot90(preview, turns)), 0, 0, scale)
            score = max((face.score for face in faces), default=0.0)
            if score >= needed and score > surest:
                chosen, surest = (turns, faces), score
        return chosen

    def _cut_all(self, rgb: np.ndarray, whole: list[Face]) -> list[HeadCut]:
        lifted = brightened(rgb)  # a dark image is searched and segmented lifted (cutouts keep its pixels)
        faces = self.find_faces(lifted, whole)
        return [self._cut_head(lifted, face, faces) for face in faces]

    # -- faces -----------------------------------------------------------------------------------------------
    def find_faces(self, rgb: np.ndarray, whole: list[Face]) -> list[Face]:
        """Every face: `whole` (full-range detection's on the whole image), full-range detection's on fine
        tiles and short-range detection's on coarse tiles, merged and each confirmed."""
        height, width = rgb.shape[:2]
        fine = [
            face
            for tile in fine_tiles(width, height)
            for face in _detect(self._full, _crop(rgb, tile), tile[0], tile[1])
            if face.score >= FINE_MIN_SCORE
        ]
        coarse = [face for tile in coarse_tiles(width, height) for face in _detect(self._short, _crop(rgb, tile), tile[0], tile[1])]
        seen = whole + fine
        confirmed = [
            face
            for face in _nms(seen + coarse)
            if any(_iou(face.box, other.box) > NMS_IOU or _nested(face, other) for other in seen) or self._verify(rgb, face)
        ]
        return sorted(_one_per_head(confirmed, width, height), key=lambda face: face.box[0])

    def _verify(self, rgb: np.ndarray, face: Face) -> bool:
        """Full-range detection on a padded crop around a tile-only candidate must find it again."""
        height, width = rgb.shape[:2]
        pad = 1.5 * max(face.width, face.height)
        x0, y0 = max(0, int(face.box[0] - pad)), max(0, int(face.box[1] - pad))
        x1, y1 = min(width, int(face.box[2] + pad)), min(height, int(face.box[3] + pad))
        found = _detect(self._full, rgb[y0:y1, x0:x1], x0, y0)
        return any(_iou(face.box, other.box) > NMS_IOU and other.score >= VERIFY_MIN_SCORE for other in found)

    # -- heads -----------------------------------------------------------------------------------------------
    def _cut_head(self, rgb: np.ndarray, face: Face, faces: list[Face]) -> HeadCut:
        height, width = rgb.shape[:2]
        reach = reach_box(face, width, height)
        cw, ch = (reach[2] - reach[0]) * CONTEXT, (reach[3] - reach[1]) * CONTEXT
        cx0, cy0 = max(0, int((reach[0] + reach[2] - cw) / 2)), max(0, int((reach[1] + reach[3] - ch) / 2))
        cx1, cy1 = min(width, int((reach[0] + reach[2] + cw) / 2)), min(height, int((reach[1] + reach[3] + ch) / 2) + 1)
        crop = np.ascontiguousarray(rgb[cy0:cy1, cx0:cx1])
        person = self._segmenter.process(crop).segmentation_mask  # float32 0..1, the crop's size
        ys, xs = np.mgrid[cy0:cy1, cx0:cx1].astype(np.float32)
        region = _head_region(face, reach, xs, ys)
        neighbours = [other for other in faces if other is not face and _overlaps(reach_box(other, width, height), (cx0, cy0, cx1, cy1))]
        own = _nearest_head(face, neighbours, xs, ys, width, height) if neighbours else 1.0
        alpha = _soften(np.minimum(np.minimum(person, region), own))  # soft masks joined: the least of them
        alpha[alpha < ALPHA_FLOOR] = 0.0
        rows, cols = np.nonzero(alpha)
        if (alpha >= 0.5).sum() < MIN_OPAQUE * face.width * face.height:
            # segmentation saw (almost) no person here, or a neighbour took it: the head's expected shape
            alpha = _soften(_head_region(face, head_box(face, width, height), xs, ys))
            rows, cols = np.nonzero(alpha >= ALPHA_FLOOR)
        top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        return HeadCut(int(cx0 + left), int(cy0 + top), int(right - left), int(bottom - top), alpha[top:bottom, left:right])


def brightened(rgb: np.ndarray) -> np.ndarray:
    """A dark image (mean luminance under DARK_MEAN) under the gamma curve that lifts its mean to LIFTED_MEAN,
    for the detectors and the segmenter (faces in a dim bar are lost in the shadows); others as they are."""
    from PIL import Image, ImageStat

    # luminance is linear in the channels: its mean is the channels' means (from their histograms) weighted
    mean = float(np.dot(ImageStat.Stat(Image.fromarray(rgb)).mean, [0.299, 0.587, 0.114])) if rgb.size else 255.0
    if mean >= DARK_MEAN or mean < 1.0:
        return rgb
    gamma = max(MIN_GAMMA, np.log(LIFTED_MEAN / 255.0) / np.log(mean / 255.0))
    curve = np.round(255.0 * (np.arange(256) / 255.0) ** gamma).astype(np.uint8)
    return curve[rgb]


def head_box(face: Face, width: int, height: int) -> tuple[float, float, float, float]:
    """The box a head (with hair, without neck) occupies around a face box, clipped to the image.

    In a turned face the nose sits off the box's middle and the back of the head is on the other side, so
    the box shifts away from the nose.
    """
    x0, y0, x1, y1 = face.box
    shift = -YAW_SHIFT * (face.nose[0] - face.centre[0]) if face.nose else 0.0
    return (
        max(0.0, x0 - HEAD_SIDE * face.width + shift),
        max(0.0, y0 - HEAD_TOP * face.height),
        min(float(width), x1 + HEAD_SIDE * face.width + shift),
        min(float(height), y1 + HEAD_BOTTOM * face.height),
    )


def reach_box(face: Face, width: int, height: int) -> tuple[float, float, float, float]:
    """The farthest a head's hair may reach around a face box (big hair, a hat), cut at the jaw: the
    segmentation decides how much of it is head."""
    x0, y0, x1, y1 = face.box
    shift = -YAW_SHIFT * (face.nose[0] - face.centre[0]) if face.nose else 0.0
    return (
        max(0.0, x0 - REACH_SIDE * face.width + shift),
        max(0.0, y0 - REACH_TOP * face.height),
        min(float(width), x1 + REACH_SIDE * face.width + shift),
        min(float(height), y1 + HEAD_BOTTOM * face.height),
    )


def _head_region(face: Face, box: tuple[float, float, float, float], xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """1 inside the rounded box `box`, above the jaw line and, below the face's middle, within the jaw's width
    (collars and shoulders are not head); falls off softly over a few pixels."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    rx, ry = max(1.0, (x1 - x0) / 2), max(1.0, (y1 - y0) / 2)
    distance = (np.abs((xs - cx) / rx) ** ROUNDNESS + np.abs((ys - cy) / ry) ** ROUNDNESS) ** (1.0 / ROUNDNESS)
    feather = 3.0 / min(rx, ry)
    inside = np.clip((1.0 + feather - distance) / (2 * feather), 0.0, 1.0)
    jaw = face.box[3] + HEAD_BOTTOM * face.height
    above_jaw = np.clip((jaw - ys) / 3.0 + 0.5, 0.0, 1.0)
    fx, fy = face.centre
    half_jaw = face.width * (0.5 + JAW_SIDE)
    beside_jaw = np.clip((half_jaw - np.abs(xs - fx)) / 3.0 + 0.5, 0.0, 1.0)
    lower = np.clip((ys - fy) / 3.0 + 0.5, 0.0, 1.0)  # 0 above the face's middle, 1 below it
    return (inside * above_jaw * (1.0 - lower * (1.0 - beside_jaw))).astype(np.float32)


def _nearest_head(face: Face, neighbours: list[Face], xs: np.ndarray, ys: np.ndarray, width: int, height: int) -> np.ndarray:
    """1 where `face`'s head is the nearest, 0 where a neighbour's is, fading over a few pixels. Distances
    run from the middle of each head box in head sizes: a head's hair is nearer its own middle than a
    neighbour's, even beside a larger face (distances from the faces in face sizes gave it to the larger)."""
    def distance(other: Face) -> np.ndarray:
        x0, y0, x1, y1 = head_box(other, width, height)
        return np.hypot((xs - (x0 + x1) / 2) / max(1.0, x1 - x0), (ys - (y0 + y1) / 2) / max(1.0, y1 - y0))

    own = distance(face)
    closest = np.min([distance(other) for other in neighbours], axis=0)
    return np.clip((closest - own) * SPLIT_SHARPNESS + 0.5, 0.0, 1.0).astype(np.float32)


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _soften(alpha: np.ndarray) -> np.ndarray:
    """Smooth the matte's edge (a one-pixel Gaussian) without growing it."""
    from PIL import Image, ImageFilter

    image = Image.fromarray(np.clip(alpha * 255.0, 0, 255).astype(np.uint8), "L")
    return np.asarray(image.filter(ImageFilter.GaussianBlur(1.0)), dtype=np.float32) / 255.0 * (alpha > 0)


def coarse_tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Half-overlapping square tiles, COARSE_FRACTION of the short side, for short-range detection; none
    for small images (searched whole only)."""
    short = min(width, height)
    if short < MIN_TILED_SIDE:
        return []
    side = int(short * COARSE_FRACTION)
    return _grid(width, height, side, side // 2)


def fine_tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Square tiles of FINE_SIDE pixels overlapping by a quarter (a small face is whole in one of them), or
    larger where that would make more than FINE_MAX_TILES; none when the image is not much larger than one."""
    if min(width, height) < 1.5 * FINE_SIDE:
        return []
    side = FINE_SIDE
    while len(_grid(width, height, side, side // 4)) > FINE_MAX_TILES:
        side = int(side * 1.1) + 1
    return _grid(width, height, side, side // 4)


def _grid(width: int, height: int, side: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Square tiles (x0, y0, x1, y1) of `side` covering the image, neighbours sharing `overlap` pixels, the
    last row and column flush with the image's edges."""
    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        return sorted(set(range(0, length - side, side - overlap)) | {length - side})

    return [(x, y, min(width, x + side), min(height, y + side)) for y in starts(height) for x in starts(width)]


def _crop(rgb: np.ndarray, tile: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = tile
    return np.ascontiguousarray(rgb[y0:y1, x0:x1])


def _preview(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """`rgb` shrunk (by area) to at most PREVIEW_SIDE, and the factor from its pixels to the image's."""
    height, width = rgb.shape[:2]
    if max(height, width) <= PREVIEW_SIDE:
        return rgb, 1.0
    from PIL import Image

    ratio = PREVIEW_SIDE / max(height, width)
    size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
    small = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX))
    return small, width / size[0]


def _detect(detector: Any, rgb: np.ndarray, dx: int, dy: int, scale: float = 1.0) -> list[Face]:
    """Faces found by a mediapipe detector in `rgb`, in the coordinates of the image it was cut from (at
    `dx`, `dy`) or shrunk from (by `scale`)."""
    height, width = rgb.shape[0] * scale, rgb.shape[1] * scale
    result = detector.process(np.ascontiguousarray(rgb))
    faces = []
    for detection in result.detections or []:
        box = detection.location_data.relative_bounding_box
        x0 = max(0.0, box.xmin * width) + dx
        y0 = max(0.0, box.ymin * height) + dy
        x1 = min(float(width), (box.xmin + box.width) * width) + dx
        y1 = min(float(height), (box.ymin + box.height) * height) + dy
        keypoints = detection.location_data.relative_keypoints
        nose = (keypoints[2].x * width + dx, keypoints[2].y * height + dy) if len(keypoints) > 2 else None
        if x1 - x0 >= 4 and y1 - y0 >= 4:
            faces.append(Face((x0, y0, x1, y1), float(detection.score[0]), nose))
    return faces


def turn_back(cut: HeadCut, turns: int, shape: tuple[int, int]) -> HeadCut:
    """`cut`, found in the image turned `turns` quarter turns counter-clockwise (`np.rot90`), on the image of
    `shape` (height, width) itself."""
    x, y, width, height, alpha = cut.x, cut.y, cut.width, cut.height, cut.alpha
    for step in range(turns, 0, -1):
        columns = shape[1] if (step - 1) % 2 == 0 else shape[0]  # of the image before this quarter turn
        x, y, width, height = columns - y - height, x, height, width
        alpha = np.rot90(alpha, -1)
    return HeadCut(x, y, width, height, np.ascontiguousarray(alpha))


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _nms(faces: list[Face]) -> list[Face]:
    """Keep the best-scoring face of every group that overlaps by more than NMS_IOU or that are nested (a
    face centred inside another is a fragment of it, or the same face boxed by another detector)."""
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: f.score, reverse=True):
        if all(_iou(face.box, other.box) <= NMS_IOU and not _nested(face, other) for other in kept):
            kept.append(face)
    return kept


def _one_per_head(faces: list[Face], width: int, height: int) -> list[Face]:
    """Drop a face centred inside a surer face's head box: the back of a head in profile, or an ear, found
    as a second face."""
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: f.score, reverse=True):
        if not any(_inside(face.centre, head_box(other, width, height)) for other in kept):
            kept.append(face)
    return kept


def _inside(point: tuple[float, float], box: tuple[float, float, float, float]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def _nested(a: Face, b: Face) -> bool:
    """Either face's centre lies inside the other's box."""
    return _inside(a.centre, b.box) or _inside(b.centre, a.box)
