"""P2 cold start: importing `index` plus everything its first invocation imports, in fresh interpreters, ÷
importing `oss2` and the imageseg client alone (the floor any implementation pays). Median of 10 each. Goal ≤ 1.2."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
RUNS = 10
#: `import index`, then what the first invocation imports lazily (storage, segmenter, SDK models, Pillow).
HEADSEG = (
    "import index, headseg.storage.oss, headseg.segmenters.cloud, headseg.normalize, "
    "alibabacloud_imageseg20191230.client, alibabacloud_imageseg20191230.models, alibabacloud_tea_openapi.models, "
    "alibabacloud_tea_util.models, PIL.Image, requests"
)
FLOOR = "import oss2, alibabacloud_imageseg20191230.client"


def timed_import(statement: str) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=SRC, check=True)
    return float(result.stdout.strip())


def run() -> list[str]:
    headseg, floor = [], []
    for _ in range(RUNS):  # interleaved, so both see the same machine
        headseg.append(timed_import(HEADSEG))
        floor.append(timed_import(FLOOR))
    h, f = statistics.median(headseg) * 1000, statistics.median(floor) * 1000
    only_index = statistics.median(timed_import("import index") for _ in range(RUNS)) * 1000
    return [
        "| import | median ms |",
        "| --- | --- |",
        f"| `import index` alone (SDKs load on first use) | {only_index:.0f} |",
        f"| index + what the first invocation imports | {h:.0f} |",
        f"| oss2 + imageseg client (floor) | {f:.0f} |",
        f"\nP2 cold start ratio: {h / f:.2f} (goal ≤ 1.2); median of {RUNS} fresh interpreters each.",
    ]


if __name__ == "__main__":
    print("\n".join(run()))
