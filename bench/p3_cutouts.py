"""P3's cutout rows: the function's peak while it downloads and stores the largest cutouts SegmentHead returns,
at the most DOWNLOAD_WORKERS the configuration allows.

The real handler runs in a fresh process against the wire-level fakes (served from this one, so their memory is
not counted). The fake SegmentHead is made to find `heads` heads, each the whole 1999x1999 image, so every
cutout is an uncompressed 1999x1999 RGBA PNG (16 MB), the largest a box can give. A warm-up invocation on a
small image first, with as many (small) heads, as on a warm instance: connections, lazy imports and the pool's
threads, which an instance keeps (MEMORY_RESERVED_MB covers them). Then /proc/self/clear_refs restarts VmHWM,
and the big invocation's own peak is VmHWM less what the process held before it. That is compared with what
the in-flight budget (MEMORY_FRACTION / 2 of the function's memory) counts for the downloads it lets run at
once.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from typing import Any
from unittest import mock

from bench._fakes import ROOT, fake_cloud

BUCKET = "bench"
SIDE = 1999  # SegmentHead's largest input side: its largest cutout

CHILD = r"""
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import index
from headseg.cli.invoke import FunctionMeta, LocalContext
from headseg.function.events import object_created_event
def status(field):
    line = next(line for line in open("/proc/self/status") if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024
def invoke(key, etag):
    event = json.dumps(object_created_event("bench", key, etag)).encode()
    context = LocalContext(function=FunctionMeta(memory=int(sys.argv[3]), timeout=120))
    return json.loads(index.handler(event, context))["outcomes"][0]
invoke(sys.argv[4], sys.argv[5])  # the warm-up
before, start = status("VmHWM"), status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")
outcome = invoke(sys.argv[6], sys.argv[7])
print(json.dumps({"peak": max(before, status("VmHWM")), "own": status("VmHWM") - start, "outcome": outcome}))
"""


@dataclasses.dataclass(frozen=True)
class CutoutPeak:
    heads: int
    workers: int
    cutout_bytes: int  # each one's PNG
    budget: int  # what the in-flight budget lets be held at once
    peak: int  # the whole process's VmHWM
    own: int  # the big invocation's peak over what the process held before it
    outcome: dict[str, Any]


def measure(heads: int, workers: int, memory_mb: int, side: int = SIDE) -> CutoutPeak:
    """The handler's peak for a 1999x1999 image in which SegmentHead finds `heads` heads, each `side` px square
    (uncompressed RGBA cutouts)."""
    from PIL import Image

    import tests.fakes.imageseg as fake_segmenthead
    from headseg.function.config import Config
    from tests.fakes.images import portrait

    def every_head(image: Any) -> tuple[Any, list[tuple[int, int, int, int]]]:
        return Image.new("L", image.size, 255), [(0, 0, side, side)] * heads

    with fake_cloud() as (oss, imageseg, _fc), mock.patch.object(fake_segmenthead, "find_heads", every_head):
        warm = oss.put(BUCKET, "incoming/warm.jpg", portrait(400, 300, [(40, 50, 60, 80)]))
        etag = oss.put(BUCKET, "incoming/big.jpg", portrait(SIDE, SIDE, [(600, 400, 700, 900)]))
        env = {**os.environ, "DOWNLOAD_WORKERS": str(workers), "LOG_LEVEL": "ERROR"}
        argv = [sys.executable, "-c", CHILD, str(ROOT / "src"), str(ROOT), str(memory_mb)]
        argv += ["incoming/warm.jpg", warm, "incoming/big.jpg", etag]
        result = subprocess.run(argv, capture_output=True, text=True, check=True, env=env)
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        sizes = {len(png) for png in imageseg.results.values()}
    config = Config.from_env({**env, "MEMORY_MB": str(memory_mb)})
    budget = int(memory_mb * 2**20 * config.memory_fraction / 2)  # as the pipeline sets it
    return CutoutPeak(heads, workers, max(sizes), budget, figures["peak"], figures["own"], figures["outcome"])


def rows(memory_mb: int, max_workers: int) -> tuple[list[str], tuple[float, str]]:
    """P3's cutout rows, and the worst peak of them with its name: the largest cutouts at the default and at
    the most DOWNLOAD_WORKERS, and small ones at the most (where the workers' own memory shows)."""
    from headseg.function.config import Config
    from headseg.function.cutouts import TRANSFER_BYTES

    table = [
        (
            f"| cutouts | DOWNLOAD_WORKERS | each PNG | in-flight budget | counted at once | peak (whole process) | "
            f"peak ÷ {memory_mb} MB | the invocation's own peak ÷ counted at once |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    worst: tuple[float, str] = (0.0, "")
    default = Config.download_workers
    runs = ((2 * default, default, SIDE), (max_workers, max_workers, SIDE), (2 * max_workers, max_workers, 200))
    for heads, workers, side in runs:
        peak = measure(heads, workers, memory_mb, side)
        if peak.outcome.get("outcome") != "done" or peak.outcome.get("heads") != heads:
            raise RuntimeError(f"the cutout run did not end as expected: {peak.outcome}")
        counted = _bound(side) + TRANSFER_BYTES
        at_once = min(workers, heads, max(1, peak.budget // counted)) * counted
        name = f"{heads} of {side}x{side} px at {workers} workers"
        table.append(
            f"| {heads} × {side}x{side} RGBA | {workers} | {_mb(peak.cutout_bytes, 1)} | {_mb(peak.budget)} | "
            f"{_mb(at_once)} | {_mb(peak.peak)} | {peak.peak / (memory_mb * 2**20):.2f} | {peak.own / at_once:.2f} |"
        )
        worst = max(worst, (peak.peak, f"cutout run ({name})"))
    return table, worst


def _bound(side: int) -> int:
    from headseg.function.segmenters import Head, max_cutout_bytes

    return max_cutout_bytes(Head(0, 0, side, side))


def _mb(count: float, decimals: int = 0) -> str:
    return f"{count / 2**20:.{decimals}f} MB"


if __name__ == "__main__":
    from headseg.function.config import MAX_DOWNLOAD_WORKERS

    print("\n".join(rows(512, MAX_DOWNLOAD_WORKERS)[0]))
