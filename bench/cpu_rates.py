"""CPU rates: what each unit `headseg.function.cputime` counts costs `normalize` on this machine, beside the rate it
assumes; then each CPU bomb of tests/corpus.py, its estimate beside its measured CPU time.

A unit's cost is measured by difference: the same kind of input with few and with many of the unit (scans,
markers, chunks, frames, directories, tiles, pixels), `normalize` timed in CPU seconds (the fastest of 3 runs),
the difference divided by the difference in units. `cputime.RATES` takes half of it (so a core twice as fast
still needs at least the estimate). The estimate is a lower bound when measured ÷ estimate ≥ 1 for every input.
Not part of `python -m bench` (it takes minutes): run `python -m bench.cpu_rates`.
"""

from __future__ import annotations

import time
from typing import Callable

from PIL import Image

import bench._fakes  # noqa: F401  (src/ and the repository first on sys.path, as for every benchmark)
from headseg.function import cputime, images
from headseg.function.errors import InvalidImage
from headseg.function.normalize import Limits, normalize
from tests import corpus

LIMITS = Limits()
Make = Callable[[int], bytes]


def grey(fmt: str, mode: str = "L") -> Make:
    """A flat image n px wide (3:4) in `fmt`, one byte a pixel where the format has it: the cheapest pixels."""
    return lambda width: corpus.encode(Image.new(mode, (width, width * 3 // 4), 128 if mode == "L" else (128,) * len(mode)), fmt)


def heic(width: int) -> bytes:
    return corpus.heic(Image.new("RGB", (width, width * 3 // 4), (128, 128, 128)))


#: unit -> (make(n), the two n)
UNITS: dict[str, tuple[Make, tuple[int, int]]] = {
    "jpeg block": (lambda n: corpus.many_scans(copies=n, scan=1), (50, 550)),
    "jpeg band coefficient": (lambda n: corpus.many_scans(copies=n), (20, 220)),
    "jpeg marker": (corpus.many_markers, (10_000, 310_000)),
    "jpeg stray byte": (corpus.stray_bytes, (0, 3_000_000)),
    "png chunk": (corpus.png_chunks, (10_000, 310_000)),
    "gif frame": (corpus.gif_frames, (10_000, 310_000)),
    "tiff directory": (corpus.tiff_directories, (100, 2_100)),
    "tiff stored strip": (lambda n: corpus.tiff_tiles((4096, 4096), tile=n, compression=1), (256, 16)),  # same pixels
    "tiff strip": (lambda n: corpus.tiff_tiles((4096, 4096), tile=n), (256, 16)),
    "pixel JPEG": (grey("JPEG"), (2000, 3800)),  # both decoded at full size (a draft would reduce 4000)
    "pixel PNG": (grey("PNG"), (2000, 8000)),
    "pixel GIF": (grey("GIF"), (2000, 8000)),
    "pixel TIFF": (grey("TIFF"), (2000, 8000)),
    "pixel BMP": (grey("BMP"), (2000, 8000)),
    "pixel WEBP": (grey("WEBP", "RGB"), (2000, 8000)),
    "pixel HEIF": (heic, (2000, 6000)),
}

#: the bombs, at sizes that take a few seconds here
BOMBS: list[tuple[str, Callable[[], bytes]]] = [
    ("JPEG, 1500 refinement scans", lambda: corpus.many_scans(copies=1500)),
    ("JPEG, 5000 first AC scans", lambda: corpus.many_scans(copies=5000, scan=1)),
    ("JPEG, 1M comment markers", lambda: corpus.many_markers(1_000_000)),
    ("JPEG, 20 MB of stray bytes", lambda: corpus.stray_bytes(20_000_000)),
    ("PNG, 1M chunks before IDAT", lambda: corpus.png_chunks(1_000_000)),
    ("PNG, 576k IDAT chunks", lambda: corpus.png_chunks(1_000_000, "idat")),
    ("PNG, 1M chunks after IDAT", lambda: corpus.png_chunks(1_000_000, "after")),
    ("GIF, 1M frames", lambda: corpus.gif_frames(1_000_000)),
    ("TIFF, 10k directories", lambda: corpus.tiff_directories(10_000)),
    ("TIFF, 390k deflated tiles", lambda: corpus.tiff_tiles()),
    ("TIFF, 390k stored tiles", lambda: corpus.tiff_tiles(compression=1)),
]


def cpu_seconds(data: bytes, runs: int = 3) -> float:
    """The fastest CPU time of `normalize(data)` (a refusal counts: it is what the work ends in)."""
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        try:
            normalize(data, LIMITS)
        except InvalidImage:
            pass
        best = min(best, time.process_time() - started)
    return best


def units(data: bytes, unit: str) -> int:
    info = images.read_header(data, complete=True)
    return cputime.add_pixels(cputime.count(data, info.format), info, LIMITS.max_side).counts.get(unit, 0)


def estimate(data: bytes) -> tuple[float, str]:
    info = images.read_header(data, complete=True)
    tally = cputime.add_pixels(cputime.count(data, info.format), info, LIMITS.max_side)
    return tally.seconds, cputime.describe(info, tally)


def run() -> list[str]:
    rows = ["| unit | measured s per unit | RATES | measured ÷ RATES |", "| --- | --- | --- | --- |"]
    for unit, (make, sizes) in UNITS.items():
        few, many = (make(n) for n in sizes)
        per_unit = (cpu_seconds(many) - cpu_seconds(few)) / (units(many, unit) - units(few, unit))
        rate = cputime.RATES[unit]
        rows.append(f"| {unit} | {per_unit:.3g} | {rate:.3g} | {f'{per_unit / rate:.2f}' if rate else '-'} |")
    rows += ["", "| input | bytes | estimate s | measured s | measured ÷ estimate |", "| --- | --- | --- | --- | --- |"]
    ratios = []
    for name, make in BOMBS:
        data = make()
        seconds, what = estimate(data)
        measured = cpu_seconds(data, runs=1)
        ratios.append(measured / seconds)
        rows.append(f"| {name}: {what} | {len(data)} | {seconds:.2f} | {measured:.2f} | {measured / seconds:.2f} |")
    rows.append(f"\nmeasured ÷ estimate: {min(ratios):.2f} to {max(ratios):.2f} (≥ 1: the estimate is a lower bound).")
    return rows


if __name__ == "__main__":
    print("\n".join(run()))
