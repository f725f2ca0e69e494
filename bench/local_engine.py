"""Local engine: time per image ÷ the time of the mediapipe model calls alone (goal ≤ 1.5), and heads found.

Side by side in one run: the engine cuts each sample while a recorder notes every model call it makes (the
exact input arrays); then the same model calls are replayed alone. What the engine adds on top (decoding,
tiling, NMS, mattes, PNG encoding) is the difference.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "samples"
REPEATS = 7


@dataclass
class Recorder:
    """Forwards `process` to a mediapipe graph, keeping each input for the replay."""

    graph: Any
    calls: list[np.ndarray] = field(default_factory=list)

    def process(self, image: np.ndarray) -> Any:
        self.calls.append(image.copy())
        return self.graph.process(image)


def run() -> list[str]:
    import json

    from headseg.local.segmenter import LocalSegmenter

    labels = {k: v for k, v in json.loads((SAMPLES / "labels.json").read_text()).items() if not k.startswith("_")}
    segmenter = LocalSegmenter()
    cutter = segmenter._engine()
    rows = ["| sample | size | heads found / labelled | engine ms | model calls ms | ratio |", "| --- | --- | --- | --- | --- | --- |"]
    ratios = []
    for name in sorted(labels):
        data = (SAMPLES / name).read_bytes()
        segmenter.cut(data, None)  # warm up
        graphs = {"_full": cutter._full, "_short": cutter._short, "_segmenter": cutter._segmenter}
        recorders = {attr: Recorder(graph) for attr, graph in graphs.items()}
        for attr, recorder in recorders.items():
            setattr(cutter, attr, recorder)
        try:
            heads = segmenter.cut(data, None)
        finally:
            for attr, graph in graphs.items():
                setattr(cutter, attr, graph)
        engine_times, model_times = [], []
        for _ in range(REPEATS):  # interleaved, so both see the same machine
            started = time.perf_counter()
            segmenter.cut(data, None)
            engine_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            for attr, recorder in recorders.items():
                for image in recorder.calls:
                    graphs[attr].process(image)
            model_times.append(time.perf_counter() - started)
        engine, model = statistics.median(engine_times) * 1000, statistics.median(model_times) * 1000
        ratios.append(engine / model)
        size = "x".join(map(str, _size(data)))
        rows.append(f"| {name} | {size} | {len(heads)} / {len(labels[name])} | {engine:.1f} | {model:.1f} | {engine / model:.2f} |")
    rows.append(f"\nLocal engine ÷ its model calls: worst {max(ratios):.2f} (goal ≤ 1.5); median of {REPEATS} runs each.")
    return rows


def _size(data: bytes) -> tuple[int, int]:
    import io

    from PIL import Image

    return Image.open(io.BytesIO(data)).size


if __name__ == "__main__":
    print("\n".join(run()))
