"""P2 cold start and P5 CRC cost, on the package `headseg.ops.package` builds, in fresh `python3.10 -I -S -B`
interpreters (no site-packages, no environment, no bytecode written: FC's `/code` is read-only).

Each fresh interpreter imports `index`, runs the initializer (`index.initialize`), then handles one 1 MP
portrait event (the first event) and further ones (warm events) against the wire fakes, then the same warm
events with oss2's CRC64 turned off. Median over the fresh interpreters.

- **P2** = the first event ÷ a warm event (goal ≤ 1.5). Beside it: the floor, a bare
  `import oss2, alibabacloud_imageseg20191230.client` from the same package (and the same once
  `headseg.function.defer` is installed), and the whole cold start (import + initializer + first event).
- **P5** = a warm event's CPU ÷ the same event's CPU without CRC (goal ≤ 1.2).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench._fakes import KEY_ID, SECRET, TOKEN, fake_cloud
from headseg.ops import package

ROOT = Path(__file__).resolve().parent.parent
CHILD = ROOT / "tests" / "instance.py"
VERSION = "3.10"
INSTANCES = 7  # fresh interpreters
WARM = 8  # warm events per interpreter, with CRC and again without
FLOOR = "import oss2, alibabacloud_imageseg20191230.client"


def run() -> list[str]:
    python = package.find_python(VERSION)
    if python is None:
        return [f"P2/P5 skipped: no python{VERSION} on this machine"]
    with tempfile.TemporaryDirectory() as tmp:
        code = Path(tmp) / "code"  # the code directory as `s deploy` ships it, built by the pre-deploy step
        shutil.copytree(ROOT / "src", code, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "python"))
        package.install(code / "python", VERSION, code)
        samples = [instance(python, code) for _ in range(INSTANCES)]
        floors = [floor(python, code, deferred=False) for _ in range(INSTANCES)]
        deferred = [floor(python, code, deferred=True) for _ in range(INSTANCES)]
    median = lambda values: statistics.median(values) * 1000  # noqa: E731
    warm = median([statistics.median(w for w, _ in s["warm"]) for s in samples])
    cpu = median([statistics.median(c for _, c in s["warm"]) for s in samples])
    cpu_no_crc = median([statistics.median(c for _, c in s["no_crc"]) for s in samples])
    first = median([s["first"] for s in samples])
    cold = median([s["import"] + s["initialize"] + s["first"] for s in samples])
    return [
        "| python3.10 -I -S -B, built package | median ms |",
        "| --- | --- |",
        f"| `import index` | {median([s['import'] for s in samples]):.0f} |",
        f"| initializer (`index.initialize`) | {median([s['initialize'] for s in samples]):.0f} |",
        f"| first event | {first:.0f} |",
        f"| warm event | {warm:.0f} |",
        f"| cold start: import + initializer + first event | {cold:.0f} |",
        f"| floor: `{FLOOR}` (what index.py defers runs too, uncompiled: the package compiles what the function runs) | {median(floors):.0f} |",
        f"| the same after `headseg.function.defer.install()` (as index.py does) | {median(deferred):.0f} |",
        f"| warm event CPU | {cpu:.1f} |",
        f"| warm event CPU, oss2 CRC off | {cpu_no_crc:.1f} |",
        f"\nP2 cold start: first event ÷ warm event {first / warm:.2f} (goal ≤ 1.5); {INSTANCES} fresh interpreters.",
        f"P5 CRC cost: warm CPU ÷ warm CPU without CRC {cpu / cpu_no_crc:.2f} (goal ≤ 1.2); a 1 MP JPEG, one head.",
    ]


def instance(python: str, code: Path) -> dict:  # type: ignore[type-arg]
    """One fresh interpreter's timings, against fresh fakes."""
    from tests.fakes.images import portrait

    image = portrait(1200, 850, [(500, 200, 220, 280)])
    with fake_cloud() as (oss, _imageseg, _fc):
        keys = [f"incoming/cold-{i}.jpg" for i in range(1 + 2 * WARM)]
        plan = {
            "bucket": "bench", "events": [[key, oss.put("bench", key, image)] for key in keys], "warm": WARM,
            "key_id": KEY_ID, "secret": SECRET, "token": TOKEN,
        }
        env = {name: value for name, value in os.environ.items() if not name.startswith("ALIBABA_CLOUD_")}
        result = subprocess.run(
            [python, "-I", "-S", "-B", str(CHILD), str(code / "python"), str(code), json.dumps(plan)],
            capture_output=True, text=True, env=env, check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"cold-start child failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def floor(python: str, code: Path, deferred: bool) -> float:
    """Seconds a fresh interpreter takes to import the two SDKs from the built package (with headseg's deferral)."""
    setup = "from headseg.function import defer; defer.install(); " if deferred else ""
    statement = f"import sys, time; sys.path[:0] = [{str(code)!r}, {str(code / 'python')!r}]; {setup}t = time.perf_counter(); {FLOOR}; print(time.perf_counter() - t)"
    result = subprocess.run([python, "-I", "-S", "-B", "-c", statement], capture_output=True, text=True, check=True)
    return float(result.stdout)


if __name__ == "__main__":
    print("\n".join(run()))
