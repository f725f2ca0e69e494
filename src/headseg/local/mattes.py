"""Mattes for the offline engine: the region a head may occupy around its face, the split between touching
heads, soft edges, and a matte found in a turned image brought back onto the image's own pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from headseg.local.faces import HEAD_BOTTOM, Face, head_box

JAW_SIDE = 0.12  # at the jaw line only the face itself (plus this, in face widths) is head
JAW_TAPER = 0.3  # at the face's middle this much more each side (long hair beside the cheeks), narrowing downwards
ROUNDNESS = 2.5  # the reach's corners: 2 is an ellipse, larger is closer to the box
SPLIT_SHARPNESS = 20.0  # the split between neighbours fades over 1/20 of a head size
ALPHA_FLOOR = 0.08  # alpha below this is background
BODY_HEAD = 0.9  # a head on a body: its box is at least this much person,
BODY_ABOVE = 0.3  # the band above it (0.75-1.5 face sizes up) at most this much,
BODY_BELOW = 0.75  # and the band below it (0.5-1.5 face sizes down, half a face size wider each side) at least this


@dataclass(frozen=True)
class HeadCut:
    """One head: its box in the image (x, y, width, height) and its alpha matte over that box (0..1)."""

    x: int
    y: int
    width: int
    height: int
    alpha: np.ndarray  # float32, shape (height, width)


def head_region(face: Face, box: tuple[float, float, float, float], xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """1 inside the rounded box `box`, above the jaw line and, below the face's middle, within a width that
    narrows from the cheeks' (hair hangs there) to the jaw's at the jaw line (collars and shoulders are not
    head); falls off softly over a few pixels."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    rx, ry = max(1.0, (x1 - x0) / 2), max(1.0, (y1 - y0) / 2)
    distance = (np.abs((xs - cx) / rx) ** ROUNDNESS + np.abs((ys - cy) / ry) ** ROUNDNESS) ** (1.0 / ROUNDNESS)
    feather = 3.0 / min(rx, ry)
    inside = np.clip((1.0 + feather - distance) / (2 * feather), 0.0, 1.0)
    jaw = face.box[3] + HEAD_BOTTOM * face.height
    above_jaw = np.clip((jaw - ys) / 3.0 + 0.5, 0.0, 1.0)
    fx, fy = face.centre
    down = np.clip((ys - fy) / max(1.0, jaw - fy), 0.0, 1.0)  # 0 at the face's middle, 1 at the jaw line
    half_jaw = face.width * (0.5 + JAW_SIDE + JAW_TAPER * (1.0 - down))
    beside_jaw = np.clip((half_jaw - np.abs(xs - fx)) / 3.0 + 0.5, 0.0, 1.0)
    lower = np.clip((ys - fy) / 3.0 + 0.5, 0.0, 1.0)  # 0 above the face's middle, 1 below it
    return (inside * above_jaw * (1.0 - lower * (1.0 - beside_jaw))).astype(np.float32)


def nearest_head(face: Face, neighbours: list[Face], xs: np.ndarray, ys: np.ndarray, width: int, height: int) -> np.ndarray:
    """1 where `face`'s head is the nearest, 0 where a neighbour's is, fading over a few pixels. Distances
    run from the middle of each head box in head sizes: a head's hair is nearer its own middle than a
    neighbour's, even beside a larger face (distances from the faces in face sizes gave it to the larger)."""
    def distance(other: Face) -> np.ndarray:
        x0, y0, x1, y1 = head_box(other, width, height)
        return np.hypot((xs - (x0 + x1) / 2) / max(1.0, x1 - x0), (ys - (y0 + y1) / 2) / max(1.0, y1 - y0))

    own = distance(face)
    closest = np.min([distance(other) for other in neighbours], axis=0)
    return np.clip((closest - own) * SPLIT_SHARPNESS + 0.5, 0.0, 1.0).astype(np.float32)


def on_body(face: Face, person: np.ndarray, x0: int, y0: int) -> bool:
    """Whether `face` sits like a head on a body in `person` (a person mask whose top left is at `x0`, `y0` in
    the image): it is person, with no person above it (or the mask's top edge) and a body below it."""
    size = max(face.width, face.height)
    fx0, fy0, fx1, fy1 = face.box

    def share(left: float, top: float, right: float, bottom: float) -> float | None:
        """The mean of `person` over a box in image pixels, None where the box is outside the mask."""
        left, top = max(0, int(left) - x0), max(0, int(top) - y0)
        right, bottom = min(person.shape[1], int(right) - x0), min(person.shape[0], int(bottom) - y0)
        return float(person[top:bottom, left:right].mean()) if right > left and bottom > top else None

    head = share(fx0, fy0, fx1, fy1)
    above = share(fx0 - 0.25 * size, fy0 - 1.5 * size, fx1 + 0.25 * size, fy0 - 0.75 * size)
    below = share(fx0 - 0.5 * size, fy1 + 0.5 * size, fx1 + 0.5 * size, fy1 + 1.5 * size)
    return (
        head is not None and head >= BODY_HEAD
        and (above is None or above <= BODY_ABOVE)
        and below is not None and below >= BODY_BELOW
    )


def overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def soften(alpha: np.ndarray) -> np.ndarray:
    """Smooth the matte's edge (a one-pixel Gaussian) without growing it."""
    from PIL import Image, ImageFilter

    image = Image.fromarray(np.clip(alpha * 255.0, 0, 255).astype(np.uint8), "L")
    return np.asarray(image.filter(ImageFilter.GaussianBlur(1.0)), dtype=np.float32) / 255.0 * (alpha > 0)


def turn_back(cut: HeadCut, turns: int, shape: tuple[int, int]) -> HeadCut:
    """`cut`, found in the image turned `turns` quarter turns counter-clockwise (`np.rot90`), on the image of
    `shape` (height, width) itself."""
    x, y, width, height, alpha = cut.x, cut.y, cut.width, cut.height, cut.alpha
    for step in range(turns, 0, -1):
        columns = shape[1] if (step - 1) % 2 == 0 else shape[0]  # of the image before this quarter turn
        x, y, width, height = columns - y - height, x, height, width
        alpha = np.rot90(alpha, -1)
    return HeadCut(x, y, width, height, np.ascontiguousarray(alpha))
