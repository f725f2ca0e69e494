"""Local engine: time per image ÷ the time of its LiteRT model calls alone (goal ≤ 1.5), and heads found.

Side by side in one run: the engine cuts each sample while a recorder notes every model call it makes (the
exact input tensors); then the same model calls are replayed alone (set the input, invoke, read the outputs).
What the engine adds on top (decoding, sampling the models' inputs, decoding their outputs, tiling, NMS,
mattes, PNG encoding) is the difference.
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
    """Forwards `run` to a model (`tflite.Model`), keeping each input tensor for the replay."""

    model: Any
    calls: list[np.ndarray] = field(default_factory=list)

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        self.calls.append(tensor.copy())
        return self.model.run(tensor)


def run() -> list[str]:
    import json

    from headseg.local.segmenter import LocalSegmenter

    labels = {k: v for k, v in json.loads((SAMPLES / "labels.json").read_text()).items() if not k.startswith("_")}
    segmenter = LocalSegmenter()
    cutter = segmenter._engine()
    holders = [cutter._full, cutter._short, cutter._segmenter]  # each holds its interpreter as `model`
    rows = ["| sample | size | heads found / labelled | engine ms | model calls ms | ratio |", "| --- | --- | --- | --- | --- | --- |"]
    ratios = []
    for name in sorted(labels):
        data = (SAMPLES / name).read_bytes()
        segmenter.cut(data, None)  # warm up
        models = [holder.model for holder in holders]
        recorders = [Recorder(model) for model in models]
        for holder, recorder in zip(holders, recorders):
            holder.model = recorder
        try:
            heads = segmenter.cut(data, None)
        finally:
            for holder, model in zip(holders, models):
                holder.model = model
        engine_times, model_times = [], []
        for _ in range(REPEATS):  # interleaved, so both see the same machine
            started = time.perf_counter()
            segmenter.cut(data, None)
            engine_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            for model, recorder in zip(models, recorders):
                for tensor in recorder.calls:
                    model.run(tensor)
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
