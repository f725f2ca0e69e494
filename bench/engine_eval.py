"""Offline engine on the evaluation set (bench/evalset.py): recall, false boxes and seconds per image, by kind.

Each photo goes through the same path as `headseg segment` (the pipeline, normalization included, a directory
bucket), on one core. A labelled head is found when a box of the sidecar contains its centre; each box finds
at most one head (the nearest centre). A box that finds no required head and holds no optional centre is a
false box. Goals: recall ≥ 0.90 over every required head, no kind below 0.60, at most 1 false box per 20
images, median ≤ 0.3 s per image.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench import evalset

Box = tuple[float, float, float, float]  # x, y, width, height
Point = tuple[float, float]


def score(boxes: list[Box], heads: tuple[Point, ...], optional: tuple[Point, ...]) -> tuple[int, int]:
    """(required heads found, false boxes) for one photo."""
    unmatched = list(range(len(boxes)))
    found = 0
    for x, y in heads:
        containing = [i for i in unmatched if _inside((x, y), boxes[i])]
        if containing:
            unmatched.remove(min(containing, key=lambda i: _distance((x, y), boxes[i])))
            found += 1
    false = [i for i in unmatched if not any(_inside(p, boxes[i]) for p in (*optional, *heads))]
    return found, len(false)


def interval(found: float, total: float, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95 % by default) for a recall of `found` of `total`: with a few dozen
    heads, one head is several points of recall, and the interval says how far the figure can be trusted."""
    if total <= 0:
        return 0.0, 1.0
    share = found / total
    centre = (share + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def _inside(point: Point, box: Box) -> bool:
    x, y, w, h = box
    return x <= point[0] <= x + w and y <= point[1] <= y + h


def _distance(point: Point, box: Box) -> float:
    x, y, w, h = box
    return (point[0] - (x + w / 2)) ** 2 + (point[1] - (y + h / 2)) ** 2


def run() -> list[str]:
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})  # one core, as the goal says (restored after)
    try:
        return _evaluate()
    finally:
        os.sched_setaffinity(0, cores)


def _evaluate() -> list[str]:
    from headseg.local.wiring import local_app
    from headseg.function.config import Config, Engine
    from headseg.function.events import ObjectCreated
    from headseg.function.retry import Budget
    from headseg.local.directory import DirectoryStorage

    photos = evalset.photos()
    rows: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    seconds: list[float] = []
    with tempfile.TemporaryDirectory() as bucket_dir:
        config = Config(input_prefix="incoming/", output_prefix="heads/", engine=Engine.LOCAL, bucket_dir=bucket_dir)
        storage, app = DirectoryStorage(bucket_dir, "eval"), local_app(config)
        pipeline = app.pipeline(None)
        pipeline.segmenter.warm()
        try:
            for photo in photos:
                key = f"incoming/{photo.id}"
                storage.put(key, evalset.fetch(photo), "application/octet-stream")
                started = time.perf_counter()
                pipeline.process(ObjectCreated("ObjectCreated:PutObject", "eval", key), Budget.seconds(120))
                seconds.append(time.perf_counter() - started)
                sidecar = json.loads(Path(bucket_dir, "heads", key, "heads.json").read_text())
                boxes = [(h["x"], h["y"], h["width"], h["height"]) for h in sidecar["heads"]]
                found, false = score(boxes, photo.heads, photo.optional)
                for kind in ("all", *photo.kinds):
                    row = rows[kind]
                    row["images"] += 1
                    row["heads"] += len(photo.heads)
                    row["found"] += found
                    row["false"] += false
                    row["seconds"] += seconds[-1]
        finally:
            app.close()
    table = ["| kind | images | required heads | found | recall | false boxes | s / image |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for kind in ["all", *sorted(k for k in rows if k != "all")]:
        r = rows[kind]
        recall = f"{r['found'] / r['heads']:.3f}" if r["heads"] else "-"
        table.append(
            f"| {kind} | {r['images']:.0f} | {r['heads']:.0f} | {r['found']:.0f} | {recall} | {r['false']:.0f} | "
            f"{r['seconds'] / r['images']:.2f} |"
        )
    total = rows["all"]
    low, high = interval(total["found"], total["heads"])
    table.append(
        f"\nEvaluation set: recall {total['found'] / max(total['heads'], 1):.3f} ({total['found']:.0f} of "
        f"{total['heads']:.0f} heads, 95 % interval {low:.2f}–{high:.2f}; goal ≥ 0.90), "
        f"{total['false'] / total['images'] * 20:.1f} false boxes per 20 images (goal ≤ 1), "
        f"median {statistics.median(seconds):.2f} s per image on one core (goal ≤ 0.3); {len(photos)} photos."
    )
    return table


if __name__ == "__main__":
    print("\n".join(run()))
