"""The offline engine's models on LiteRT (the TFLite runtime, `ai-edge-litert`): mediapipe 0.10.21's face
detectors (short and full range) and person segmenter, vendored in `models/` (origin and checksums in
`models/SOURCES.md`), with the pre- and post-processing mediapipe's legacy solutions wrap around them,
reproduced step for step so that the engine finds what it found on mediapipe: scores within 2e-4, boxes
within 5e-5 of the image's size, masks within 2e-4 (mean 1e-7). Where OpenCV's own rounding of its transform
puts samples across a 1/32-pixel step (an image stretched 2.5 times one way, 1.17 the other), some input
pixels differ by a few levels and the mask by up to 0.05 at a person's edge. `tests/unit/test_tflite.py`
holds mediapipe's outputs on the samples.

- Face detection: the image letterboxed into a centred square of side max(width, height), sampled bilinearly
  (OpenCV's fixed-point arithmetic, black outside) to the model's side, scaled to [-1, 1]; SSD anchors;
  boxes and six keypoints decoded; scores through a sigmoid; weighted non-maximum suppression at IoU 0.3;
  boxes projected back onto the image, relative to its width and height.
- Person segmentation: the image stretched to 256 x 256, scaled to [0, 1]; the mask (already a probability)
  resized back bilinearly with half-pixel centres.

The interpreters keep LiteRT's default op resolver: the segmenter's custom op (Convolution2DTransposeBias)
runs only through its XNNPACK delegate. Importing LiteRT prints an "INFO: Created TensorFlow Lite XNNPACK
delegate" line on fd 2 (the command line's `_quiet` keeps it off the terminal). A model object is not
thread-safe: the engine uses it from one thread at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODELS = Path(__file__).resolve().parent / "models"
NMS_IOU = 0.3  # mediapipe's weighted NMS for both detectors
KEYPOINTS = 6  # eyes, nose tip, mouth, ears
NOSE = 2  # index of the nose tip among them
# a pixel's value (0..255) as the models take it: the detectors in [-1, 1], the segmenter in [0, 1]
SIGNED = np.arange(256, dtype=np.float32) * np.float32(2 / 255) - 1
UNIT = np.arange(256, dtype=np.float32) * np.float32(1 / 255)


@dataclass(frozen=True)
class DetectorSpec:
    """One BlazeFace model as mediapipe's graph for it runs it."""

    file: str
    side: int  # the model's input is side x side
    strides: tuple[int, ...]  # SSD layers; each distinct stride's grid holds anchors_per_cell per cell
    anchors_per_cell: int
    min_score: float


# The score thresholds are the ones mediapipe 0.10.21's graphs apply (0.5 short range, 0.6 full range): its
# Python solution's `min_detection_confidence` no longer reaches them in that release, so the engine always
# decoded with these, whatever it asked for. Kept as they were, so the engine finds what it found.
SHORT_RANGE = DetectorSpec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2, 0.5)
FULL_RANGE = DetectorSpec("face_detection_full_range_sparse.tflite", 192, (4,), 1, 0.6)
SEGMENTER_FILE = "selfie_segmentation.tflite"


@dataclass(frozen=True)
class Detection:
    """A face: its score, box (x0, y0, x1, y1) and keypoints (x, y), relative to the image's width and height
    (a box may reach past the image's edges)."""

    score: float
    box: tuple[float, float, float, float]
    keypoints: tuple[tuple[float, float], ...]


class Model:
    """One .tflite model on its own interpreter: one input tensor in, every output tensor out."""

    def __init__(self, file: str) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=str(MODELS / file), num_threads=1)
        self._interpreter.allocate_tensors()
        [source] = self._interpreter.get_input_details()
        self._input, self.input_shape = source["index"], tuple(int(n) for n in source["shape"])
        self.outputs = [(int(d["index"]), tuple(int(n) for n in d["shape"])) for d in self._interpreter.get_output_details()]

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        """The model's outputs for `tensor` (float32, of `input_shape`), copied out of the interpreter."""
        self._interpreter.set_tensor(self._input, tensor)
        self._interpreter.invoke()
        return [self._interpreter.get_tensor(index) for index, _ in self.outputs]


class FaceDetector:
    """Faces in an RGB uint8 image, as mediapipe's FaceDetection solution finds them."""

    def __init__(self, spec: DetectorSpec) -> None:
        self.spec = spec
        self.model = Model(spec.file)
        self._anchors = anchors(spec)
        shapes = [shape for _, shape in self.model.outputs]
        self._boxes = next(i for i, shape in enumerate(shapes) if shape[-1] == 4 + 2 * KEYPOINTS)
        self._scores = next(i for i, shape in enumerate(shapes) if shape[-1] == 1)
        self._min_logit = np.log(spec.min_score / (1 - spec.min_score)) - 0.01  # a margin for rounding

    def process(self, rgb: np.ndarray) -> list[Detection]:
        height, width = rgb.shape[:2]
        side, size = max(width, height), self.spec.side
        left, top = (width - side) / 2, (height - side) / 2  # the letterbox: a square centred on the image
        pixels = warp(rgb, left, top, side / size, side / size, size, size)
        outputs = self.model.run(SIGNED.take(pixels)[None])
        logits = outputs[self._scores][0, :, 0]
        chosen = np.flatnonzero(logits >= self._min_logit)  # decode only what may pass (the sigmoid is monotonic)
        raw, anchor = outputs[self._boxes][0, chosen], self._anchors[chosen]
        scores = 1 / (1 + np.exp(-np.clip(logits[chosen].astype(np.float64), -100, 100)))
        centres = raw[:, :2] / size + anchor
        halves = raw[:, 2:4] / size / 2
        keep = (scores >= self.spec.min_score) & (halves >= 0).all(axis=1)
        boxes = np.concatenate([centres - halves, centres + halves], axis=1)[keep]
        points = raw[keep, 4:].reshape(-1, KEYPOINTS, 2) / size + anchor[keep, None, :]
        found = []
        for score, box, keypoints in weighted_nms(scores[keep], boxes, points):
            # from the letterboxed square back onto the image, relative to its width and height
            x0, y0, x1, y1 = map(float, (box * side + [left, top, left, top]) / [width, height, width, height])
            keypoints = (keypoints * side + [left, top]) / [width, height]
            found.append(Detection(score, (x0, y0, x1, y1), tuple((float(x), float(y)) for x, y in keypoints)))
        return found


class PersonSegmenter:
    """How much each pixel of an RGB uint8 image is person (0..1, float32, the image's size), as mediapipe's
    SelfieSegmentation solution (general model) says."""

    def __init__(self) -> None:
        self.model = Model(SEGMENTER_FILE)
        _, self._height, self._width, _ = self.model.input_shape

    def process(self, rgb: np.ndarray) -> np.ndarray:
        height, width = rgb.shape[:2]
        pixels = warp(rgb, 0.0, 0.0, width / self._width, height / self._height, self._width, self._height)
        [mask] = self.model.run(UNIT.take(pixels)[None])
        return resized(mask[0, :, :, 0], width, height)


def anchors(spec: DetectorSpec) -> np.ndarray:
    """SSD anchor centres (x, y), relative, as mediapipe's SsdAnchorsCalculator makes them for BlazeFace (fixed
    size, offset 0.5): each run of equal strides is one grid, anchors_per_cell per cell per layer."""
    centres: list[tuple[float, float]] = []
    strides = list(spec.strides)
    while strides:
        stride, layers = strides[0], 0
        while strides and strides[0] == stride:
            strides.pop(0)
            layers += 1
        cells = -(-spec.side // stride)
        for y in range(cells):
            for x in range(cells):
                centres += [((x + 0.5) / cells, (y + 0.5) / cells)] * (layers * spec.anchors_per_cell)
    return np.array(centres, np.float32)


def weighted_nms(scores: np.ndarray, boxes: np.ndarray, points: np.ndarray) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """mediapipe's weighted non-maximum suppression: the surest detection and all that overlap it by more than
    NMS_IOU become one, with the surest's score and their score-weighted mean box and keypoints; repeated on
    the rest."""
    order = np.argsort(-scores, kind="stable")
    found = []
    while order.size:
        overlapping = iou(boxes[order[0]], boxes[order]) > NMS_IOU
        group = order[overlapping]
        weights = scores[group].astype(np.float64)
        box = (boxes[group] * weights[:, None]).sum(axis=0) / weights.sum()
        keypoints = (points[group] * weights[:, None, None]).sum(axis=0) / weights.sum()
        found.append((float(scores[order[0]]), box, keypoints))
        order = order[~overlapping]
    return found


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one box (x0, y0, x1, y1) with each of `boxes`."""
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = width * height
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def warp(rgb: np.ndarray, x0: float, y0: float, sx: float, sy: float, width: int, height: int) -> np.ndarray:
    """`width` x `height` pixels sampled from `rgb` at (x0 + u * sx, y0 + v * sy), bilinearly and black outside
    the image, with OpenCV's fixed-point arithmetic (warpPerspective, INTER_LINEAR: positions on a 1/32 pixel
    grid, integer weights, rounded once), which mediapipe's image-to-tensor step uses. Rows are worked on as
    (width x channels) runs of bytes: numpy is several times faster on them than on (width, 3) pixels."""
    rows, below, top, bottom = _taps(y0, sy, height, rgb.shape[0])
    cols, beside, left, right = _taps(x0, sx, width, rgb.shape[1])
    channels = rgb.shape[2]
    picked = rgb.take(np.concatenate([rows, below]), axis=0).reshape(2 * height, -1)  # the rows sampled

    def across(index: np.ndarray, weights: np.ndarray) -> np.ndarray:  # one tap of each output column, weighted
        values = picked.take((index[:, None] * channels + np.arange(channels)).ravel(), axis=1)
        return values.astype(np.uint16) * np.repeat(weights, channels).astype(np.uint16)  # at most 255 x 32

    both = across(cols, left)
    both += across(beside, right)
    total = both[:height].astype(np.uint32) * top.astype(np.uint32)[:, None]  # weights summing to 32 x 32
    total += both[height:].astype(np.uint32) * bottom.astype(np.uint32)[:, None]
    total += 512
    total >>= 10
    return total.astype(np.uint8).reshape(height, width, channels)


def _taps(start: float, step: float, count: int, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Along one axis, for each output: the two source indices it lies between (clipped into the image) and
    their integer weights (out of 32), zero for a tap outside the image (the black border)."""
    fixed = np.rint((start + np.arange(count, dtype=np.float64) * step) * 32).astype(np.int64)
    index, fraction = fixed >> 5, (fixed & 31).astype(np.int32)
    first = np.where((index >= 0) & (index < length), 32 - fraction, 0).astype(np.int32)
    second = np.where((index + 1 >= 0) & (index + 1 < length), fraction, 0).astype(np.int32)
    return np.clip(index, 0, length - 1), np.clip(index + 1, 0, length - 1), first, second


def resized(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """A float32 map resized bilinearly with half-pixel centres and clamped edges (OpenCV's resize, INTER_LINEAR),
    rows first, then columns."""
    def taps(out: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        position = (np.arange(out, dtype=np.float32) + 0.5) * np.float32(size / out) - 0.5
        index = np.floor(position).astype(np.int64)
        fraction = (position - index).astype(np.float32)
        fraction[(index < 0) | (index >= size - 1)] = 0
        index = np.clip(index, 0, size - 1)
        return index, np.minimum(index + 1, size - 1), fraction

    x0, x1, fx = taps(width, mask.shape[1])
    y0, y1, fy = taps(height, mask.shape[0])
    across = mask[:, x0] * (1 - fx) + mask[:, x1] * fx
    return (across[y0] * (1 - fy)[:, None] + across[y1] * fy[:, None]).astype(np.float32)
