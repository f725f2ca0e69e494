"""The offline engine: find every head and cut out head and hair, with mediapipe 0.10.21's face detection and
person segmentation models, run on LiteRT as that release ran them (`tflite`).

1. Faces: full-range detection on the whole image, on fine tiles (small heads: the detector sees a tile of
   about FINE_SIDE pixels at its own resolution) and short-range detection on coarser tiles (faces too
   turned or too low for full-range); overlapping candidates merged (NMS). A fine-tile face must score
   FINE_MIN_SCORE; a short-range one must be found again by full-range detection on a padded crop around it
   (tiles alone see faces in poker chips and headlights), or sit like a head on a body in person
   segmentation (a head seen from behind, or looking down, that full-range detection does not take for a
   face: person below it, none above; a shirt's pattern has person above, a hand or a sheep no body below).
   A face centred inside another, or inside a surer face's head box, is a fragment of it (a tile's cut, the
   back of a head in profile).
2. Per face, a head box: the face box grown upwards for hair and sideways for ears, cut just below the chin.
3. Per head, person segmentation on a crop around it decides the outline: kept within the farthest hair
   may reach (a rounded box around the face), above the jaw line and, below the face's middle, within a
   width narrowing from the cheeks' (long hair) to the jaw's; where heads touch, each pixel goes to the head
   whose middle is nearest (in head sizes); edges softened. A dark image is segmented lifted, as it is
   searched.
4. Low light: in a dark image the tiles are searched under a gamma curve that lifts its shadows (the
   whole-image pass and the orientation search see it as it is).
5. Orientation: unless full-range detection is convinced by a face in the image as it is, it also looks at
   the image turned a quarter either way and half; where it is convinced, clearly surer (TURN_MARGIN) and
   finds its surest face again on a crop around it, steps 1-3 run on that turned copy and every box and
   matte is turned back onto the image's own pixels.

Everything here works on numpy arrays; LiteRT is imported when the engine is built.
"""

from __future__ import annotations

import threading

import numpy as np

from headseg.local.faces import (
    NMS_IOU, Face, coarse_tiles, crop, detect, fine_tiles, head_box, iou, nms, one_per_head, preview, reach_box,
    same_face,
)
from headseg.local.mattes import (
    ALPHA_FLOOR, HeadCut, head_region, nearest_head, on_body, overlaps, soften, turn_back,
)
from headseg.local.tflite import FULL_RANGE, SHORT_RANGE, FaceDetector, PersonSegmenter

VERIFY_MIN_SCORE = 0.5
FINE_MIN_SCORE = 0.7  # a face only fine tiles see (no other pass confirms it) must be this sure
DARK_MEAN = 80  # an image darker than this (mean luminance, 0-255) is brightened before detection
LIFTED_MEAN = 115  # to about this mean
MIN_GAMMA = 0.4  # the strongest lift (noise in a near-black image is not a face)
TURNS = (1, 3, 2)  # quarter turns (counter-clockwise) looked at when the image as it is is not convincing
CONVINCING = 0.8  # a full-range face this sure in the image as it is: no turned copy is looked at
TURN_MARGIN = 0.15  # a turned copy wins when convinced and its surest face is this much surer than the image's own
BODY_MIN_SCORE = 0.6  # a candidate only person segmentation confirms (a head on a body) must score this
BODY_CONTEXT = 2.5  # a candidate's body is looked for in a crop this many face sizes around its middle
CONTEXT = 1.5  # the segmentation crop is the reach box grown by this factor
MIN_OPAQUE = 0.5  # a matte with fewer opaque pixels than this share of its face box's falls back to the head's shape


class HeadCutter:
    """Finds heads and cuts them out. Holds LiteRT interpreters: one instance, used by one thread at a time.
    Full-range detection keeps faces scoring 0.6, short-range 0.5 (`tflite.FULL_RANGE`, `tflite.SHORT_RANGE`)."""

    def __init__(self) -> None:
        self._full = FaceDetector(FULL_RANGE)
        self._short = FaceDetector(SHORT_RANGE)
        self._segmenter = PersonSegmenter()
        self._lock = threading.Lock()

    def cut(self, rgb: np.ndarray) -> list[HeadCut]:
        """All heads in an RGB uint8 image, left to right, in its own pixels (however it was turned)."""
        with self._lock:
            turns, whole = self._orientation(rgb)
            if turns == 0:
                return self._cut_all(rgb, whole)
            height, width = rgb.shape[:2]
            image = brightened(np.ascontiguousarray(np.rot90(rgb, turns)))  # segmented lifted, as upright
            faces = nms(whole)  # turned copies are searched whole: tiles there add false faces
            found = [turn_back(self._cut_head(image, face, faces), turns, (height, width)) for face in faces]
            return sorted(found, key=lambda cut: cut.x)

    def _orientation(self, rgb: np.ndarray) -> tuple[int, list[Face]]:
        """(quarter turns, the full-range faces of the image so turned) in which full-range detection is
        surest: 0 turns unless a turn is convinced and surer by TURN_MARGIN, and its surest face is found again
        on a crop around it (an eye in a close-up, turned, looks like a small face to the whole-image pass but
        not up close). One full-range pass per turn, only when the image as it is is not convincing; the passes
        look at a preview no larger than PREVIEW_SIDE (the detector sees 192 pixels anyway); faces come back
        in the full image's pixels."""
        small, scale = preview(rgb)
        whole = detect(self._full, small, 0, 0, scale)
        own = max((face.score for face in whole), default=0.0)
        if own >= CONVINCING:
            return 0, whole
        needed, surest = max(CONVINCING, own + TURN_MARGIN), 0.0
        chosen: tuple[int, list[Face]] = (0, whole)
        for turns in TURNS:
            faces = detect(self._full, np.rot90(small, turns), 0, 0, scale)
            if not faces:
                continue
            best = max(faces, key=lambda face: face.score)
            if best.score >= needed and best.score > surest and self._verify(np.rot90(rgb, turns), best):
                chosen, surest = (turns, faces), best.score
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
            for face in detect(self._full, crop(rgb, tile), tile[0], tile[1])
            if face.score >= FINE_MIN_SCORE
        ]
        coarse = [face for tile in coarse_tiles(width, height) for face in detect(self._short, crop(rgb, tile), tile[0], tile[1])]
        seen = whole + fine
        confirmed = [
            face
            for face in nms(seen + coarse)
            if any(same_face(face, other) for other in seen)
            or self._verify(rgb, face) or (face.score >= BODY_MIN_SCORE and self._on_body(rgb, face))
        ]
        return sorted(one_per_head(confirmed, width, height), key=lambda face: face.box[0])

    def _verify(self, rgb: np.ndarray, face: Face) -> bool:
        """Full-range detection on a padded crop around a tile-only candidate must find it again."""
        height, width = rgb.shape[:2]
        pad = 1.5 * max(face.width, face.height)
        x0, y0 = max(0, int(face.box[0] - pad)), max(0, int(face.box[1] - pad))
        x1, y1 = min(width, int(face.box[2] + pad)), min(height, int(face.box[3] + pad))
        found = detect(self._full, rgb[y0:y1, x0:x1], x0, y0)
        return any(iou(face.box, other.box) > NMS_IOU and other.score >= VERIFY_MIN_SCORE for other in found)

    def _on_body(self, rgb: np.ndarray, face: Face) -> bool:
        """Person segmentation on a crop around a tile-only candidate finds it a head on a body."""
        height, width = rgb.shape[:2]
        size = max(face.width, face.height)
        (cx, cy), reach = face.centre, BODY_CONTEXT * size
        x0, y0 = max(0, int(cx - reach)), max(0, int(cy - reach))
        x1, y1 = min(width, int(cx + reach)), min(height, int(cy + reach + 0.5 * size))
        person = self._segmenter.process(rgb[y0:y1, x0:x1])
        return on_body(face, person, x0, y0)

    # -- heads -----------------------------------------------------------------------------------------------
    def _cut_head(self, rgb: np.ndarray, face: Face, faces: list[Face]) -> HeadCut:
        height, width = rgb.shape[:2]
        reach = reach_box(face, width, height)
        cw, ch = (reach[2] - reach[0]) * CONTEXT, (reach[3] - reach[1]) * CONTEXT
        cx0, cy0 = max(0, int((reach[0] + reach[2] - cw) / 2)), max(0, int((reach[1] + reach[3] - ch) / 2))
        cx1, cy1 = min(width, int((reach[0] + reach[2] + cw) / 2)), min(height, int((reach[1] + reach[3] + ch) / 2) + 1)
        person = self._segmenter.process(rgb[cy0:cy1, cx0:cx1])  # float32 0..1, the crop's size
        ys, xs = np.mgrid[cy0:cy1, cx0:cx1].astype(np.float32)
        region = head_region(face, reach, xs, ys)
        neighbours = [other for other in faces if other is not face and overlaps(reach_box(other, width, height), (cx0, cy0, cx1, cy1))]
        own = nearest_head(face, neighbours, xs, ys, width, height) if neighbours else 1.0
        alpha = soften(np.minimum(np.minimum(person, region), own))  # soft masks joined: the least of them
        if (alpha >= 0.5).sum() < MIN_OPAQUE * face.width * face.height:
            # segmentation saw (almost) no person here, or a neighbour took it: the head's expected shape
            alpha = soften(head_region(face, head_box(face, width, height), xs, ys))
        alpha[alpha < ALPHA_FLOOR] = 0.0
        rows, cols = np.nonzero(alpha)
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
