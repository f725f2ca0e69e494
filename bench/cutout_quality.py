"""Offline engine's cutouts on the evaluation set, against heads outlined by hand (`bench/evalset/heads.json`).

- **Kept**: the share of a head's outline (hair and hat included, cut at the jaw line) that its cutout holds.
  Goal ≥ 0.97.
- **Neighbour**: the share of a cutout's opaque pixels inside another head's outline. Goal ≤ 0.02.
- **Beyond**: the share of a cutout's opaque pixels outside every outline (background, neck, shoulders).

Opaque means alpha ≥ 0.5. Outlines are drawn by eye to within a few pixels: a head's kept share counts its
outline shrunk by TOLERANCE, the other two count the outlines grown by it. `python -m bench.cutout_quality
--sheet PATH` also draws every photo of the set with its cutouts (outside git: the photos' licences are the
packages').
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import evalset

OPAQUE = 0.5
TOLERANCE = 2  # pixels


def outline_mask(outline: list[list[int]], shape: tuple[int, int], grow: int) -> np.ndarray:
    """The outline filled, grown (grow > 0) or shrunk (grow < 0) by `grow` pixels."""
    from PIL import Image, ImageDraw, ImageFilter

    image = Image.new("L", (shape[1], shape[0]), 0)
    ImageDraw.Draw(image).polygon([tuple(point) for point in outline], fill=255)
    if grow:
        image = image.filter((ImageFilter.MaxFilter if grow > 0 else ImageFilter.MinFilter)(2 * abs(grow) + 1))
    return np.asarray(image) > 0


@dataclass(frozen=True)
class Heads:
    """One photo's outlines as masks: filled as drawn, shrunk by TOLERANCE (sure) and grown by it (loose)."""

    filled: list[np.ndarray]
    sure: list[np.ndarray]
    loose: list[np.ndarray]

    @classmethod
    def of(cls, outlines: list[list[list[int]]], shape: tuple[int, int]) -> Heads:
        return cls(*([outline_mask(o, shape, grow) for o in outlines] for grow in (0, -TOLERANCE, TOLERANCE)))


def shares(cut: Any, heads: Heads) -> tuple[int, float, float, float]:
    """(the outline the cutout holds most of, kept, neighbour, beyond) for one cutout."""
    sure, loose = heads.sure, heads.loose
    opaque = np.zeros(sure[0].shape, dtype=bool)
    opaque[cut.y : cut.y + cut.height, cut.x : cut.x + cut.width] = cut.alpha >= OPAQUE
    own = max(range(len(sure)), key=lambda i: (opaque & sure[i]).sum())
    others = np.zeros_like(opaque)
    for i, mask in enumerate(loose):
        if i != own:
            others |= mask & ~loose[own]
    count = max(1, opaque.sum())
    kept = float((opaque & sure[own]).sum() / max(1, sure[own].sum()))
    beyond = float((opaque & ~np.logical_or.reduce(loose)).sum() / count)
    return own, kept, float((opaque & others).sum() / count), beyond


def measure(sheet: Path | None = None) -> tuple[list[str], dict[str, float]]:
    from headseg.local.headcut import HeadCutter

    outlines = {k: v for k, v in json.loads((evalset.HERE / "heads.json").read_text()).items() if not k.startswith("_")}
    cutter = HeadCutter()
    rows, kept, neighbour, beyond, drawn = [], [], [], [], []
    for photo in evalset.photos():
        if photo.id not in outlines and sheet is None:
            continue
        rgb = np.asarray(evalset.upright(photo))
        cuts = cutter.cut(rgb)
        drawn.append((photo.id, rgb, cuts))
        if photo.id not in outlines:
            continue
        heads = Heads.of(outlines[photo.id], rgb.shape[:2])
        held: dict[int, tuple[float, float, float]] = {}
        for cut in cuts:
            window = (slice(cut.y, cut.y + cut.height), slice(cut.x, cut.x + cut.width))
            if any(mask[window].any() for mask in heads.filled):
                own, *figures = shares(cut, heads)
                held[own] = max(held.get(own, (0.0, 0.0, 0.0)), tuple(figures))  # type: ignore[arg-type]
        for i in range(len(outlines[photo.id])):
            k, n, b = held.get(i, (0.0, 0.0, 0.0))  # a head without a cutout keeps nothing
            kept.append(k)
            neighbour.append(n)
            beyond.append(b)
            rows.append(f"| {photo.id} | {i + 1} | {k:.3f} | {n:.3f} | {b:.3f} |")
    if sheet is not None:
        draw_sheet(drawn, sheet)
    figures = {
        "kept": statistics.mean(kept), "kept_worst": min(kept), "neighbour": statistics.mean(neighbour),
        "neighbour_worst": max(neighbour), "beyond": statistics.mean(beyond),
    }
    return rows, figures


def draw_sheet(drawn: list[tuple[str, np.ndarray, list[Any]]], path: Path) -> None:
    """`headseg sheet`'s rows, from the cuts in memory: each photo with its boxes, then its cutouts."""
    from PIL import Image

    from headseg.cli.sheet import draw_row, stack
    from headseg.local.segmenter import picture

    rows = []
    for name, rgb, cuts in drawn:
        heads = [((cut.x, cut.y, cut.width, cut.height), picture(rgb, cut, None), index) for index, cut in enumerate(cuts)]
        rows.append(draw_row(Image.fromarray(rgb), heads, f"{name}: {len(cuts)} head(s)"))
    stack(rows).save(path)


def run() -> list[str]:
    return report(*measure())


def report(rows: list[str], f: dict[str, float]) -> list[str]:
    return [
        "| photo | head | kept | neighbour | beyond |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        f"\nCutouts: kept {f['kept']:.3f} of the outlined head (worst {f['kept_worst']:.3f}; goal ≥ 0.97); "
        f"{f['neighbour']:.3f} of opaque pixels in a neighbour's head (worst {f['neighbour_worst']:.3f}; goal ≤ 0.02); "
        f"{f['beyond']:.3f} beyond every head.",
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.cutout_quality", description=__doc__.splitlines()[0])
    parser.add_argument("--sheet", type=Path, help="also draw every photo's cutouts here (PNG)")
    args = parser.parse_args()
    print("\n".join(report(*measure(args.sheet))))
