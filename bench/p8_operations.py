"""P8 operations at bucket scale: `headseg status --json` and `headseg backfill --qps 1e6` run as programs against
the fake OSS and FC 3.0 (the real oss2 and FC 3.0 SDKs over HTTP, every signature checked), 30 ms added to every
request, on a bucket of N objects: 70 % done, 10 % pending, 5 % each stale, failed (three codes), retriable and
orphaned (so 0.95 N sources), the classes interleaved in key order.

Wall is the program's, start-up included; CPU (user + system) and peak RSS are its own process's (`os.wait4`), so
the fakes, which serve from threads of this process, are not in them (their CPU is the last column). Requests are
the fakes' logs: OSS LIST pages, GET, HEAD, PUT; FC 3.0 invocations. Growth is the least-squares line through the
sizes run, per 1 000 objects; the 100k and 10M figures are measured where run, else read off that line
(`python -m bench.p8_operations --sizes 1000,10000,100000` runs 100k). Goals (issue 24): OSS requests ≤ 2 × N/1000
+ the sampled reads (10 per failure code, for its reasons); peak RSS at 100k within 1.2 × 1k's; status on 100k
under 30 s of wall; 10M under 15 minutes of wall.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench._fakes import KEY_ID, ROOT, SECRET, TOKEN

if TYPE_CHECKING:
    from tests.fakes.fc3 import FakeFc3
    from tests.fakes.oss import FakeOss

SIZES = (1000, 10000)
LATENCY = 0.03  # seconds added to every request: an in-region round trip
BUCKET = "bench"
SAMPLE = 10  # reads per failure code a person may need (its reasons): what the request goal allows beyond listings
CLASSES = ("done",) * 14 + ("pending",) * 2 + ("stale", "failed", "retriable", "orphan")  # 20 slots: 70/10/5/5/5/5 %
CODES = [("InvalidImage.NotImage", "not an image: the first bytes match no image format", False),
         ("InvalidImage.Resolution", "the image is 20x20 px, below SegmentHead's 32x32", False),
         ("ObjectNotFound", "the object is gone", False)]  # fmt: skip
COMMANDS = ("status", "backfill")
GOAL_RSS_RATIO, GOAL_STATUS_100K, GOAL_10M = 1.2, 30.0, 15 * 60.0


@dataclass(frozen=True)
class Run:
    """One command on one bucket: what it cost and what it asked of the fakes."""

    command: str
    objects: int
    wall: float  # seconds
    cpu: float  # seconds of the command's process
    fakes_cpu: float  # seconds of this process (the fakes' threads) meanwhile
    rss_mb: float  # the command's peak RSS
    requests: dict[str, int]  # kind -> count

    @property
    def oss_requests(self) -> int:
        return sum(n for kind, n in self.requests.items() if kind != "invocations")


@dataclass(frozen=True)
class Line:
    """y = intercept + per_1000 × objects / 1000, fitted by least squares."""

    intercept: float
    per_1000: float

    def at(self, objects: int) -> float:
        return self.intercept + self.per_1000 * objects / 1000


def fit(points: list[tuple[int, float]]) -> Line:
    """The least-squares line through (objects, value); two or more sizes."""
    slope, intercept = statistics.linear_regression([n / 1000 for n, _ in points], [v for _, v in points])
    return Line(intercept, slope)


def value_at(runs: list[Run], objects: int, metric: str) -> tuple[float, bool]:
    """The metric at `objects` objects: measured (True) if that size ran, else read off the fitted line."""
    for run in runs:
        if run.objects == objects:
            return getattr(run, metric), True
    return fit([(run.objects, getattr(run, metric)) for run in runs]).at(objects), False


def goals(runs: list[Run]) -> list[tuple[str, str, bool]]:
    """(goal, what this run shows, met) for each of issue 24's goals, for the runs of one command."""
    command = runs[0].command
    budget = {run.objects: 2 * run.objects / 1000 + SAMPLE * len(CODES) for run in runs}
    worst = max(runs, key=lambda run: run.oss_requests / budget[run.objects])
    base = min(runs, key=lambda run: run.objects)
    rss, measured = value_at(runs, 100_000, "rss_mb")
    verdicts = [
        (f"{command}: OSS requests ≤ 2 × N/1000 + {SAMPLE * len(CODES)} sampled reads",
         f"{worst.oss_requests} at {worst.objects} (allowed {budget[worst.objects]:.0f})",
         all(run.oss_requests <= budget[run.objects] for run in runs)),
        (f"{command}: peak RSS at 100k ≤ {GOAL_RSS_RATIO} × at {base.objects}",
         f"{rss:.0f} MB{'' if measured else ' (fitted)'} ÷ {base.rss_mb:.0f} MB = {rss / base.rss_mb:.2f}",
         rss <= GOAL_RSS_RATIO * base.rss_mb),
    ]  # fmt: skip
    if command == "status":
        wall, measured = value_at(runs, 100_000, "wall")
        verdicts.append((f"status: wall at 100k < {GOAL_STATUS_100K:.0f} s", f"{wall:.0f} s{'' if measured else ' (fitted)'}", wall < GOAL_STATUS_100K))
    wall = fit([(run.objects, run.wall) for run in runs]).at(10_000_000)
    verdicts.append((f"{command}: wall at 10M (extrapolated) < {GOAL_10M / 60:.0f} min", f"{wall / 60:.0f} min", wall < GOAL_10M))
    return verdicts


# -- the bucket ----------------------------------------------------------------------------------------------------
def seed(oss: FakeOss, objects: int) -> dict[str, int]:
    """`objects` objects of the mix, straight into the fake's state (no requests); the expected counts."""
    from headseg.function.sidecar import ErrorRecord, HeadRecord, Sidecar, Source
    from tests.fakes.oss import StoredObject

    now, put = int(time.time()), oss.state.put
    oss.create_bucket(BUCKET)

    def store(key: str, data: bytes) -> str:
        obj = StoredObject(key, data, "image/jpeg" if key.endswith(".jpg") else "application/octet-stream", now)
        put(BUCKET, obj)
        return obj.etag

    def sidecar(key: str, etag: str) -> bytes:
        heads = [HeadRecord(0, f"heads/{key}/head-0-{etag[:8].lower()}.png", 1, 2, 30, 40)]
        return Sidecar(Source(BUCKET, key, etag, 9), "req", None, "cloud", heads, created_at="2026-12-01T00:00:00Z").to_json()

    counts = dict.fromkeys(("done", "pending", "stale", "failed", "retriable", "orphans"), 0)
    for i in range(objects):
        kind, key = CLASSES[i % len(CLASSES)], f"incoming/{i:08d}.jpg"
        counts["orphans" if kind == "orphan" else kind] += 1
        etag = "1" * 32 if kind == "orphan" else store(key, f"image {i}".encode())
        if kind in ("done", "orphan"):
            store(f"heads/{key}/head-0-{etag[:8].lower()}.png", b"png")
            store(f"heads/{key}/heads.json", sidecar(key, etag))
        elif kind == "pending" and i % 3 == 0:  # a run that died before its sidecar: cutouts alone
            store(f"heads/{key}/head-0-{etag[:8].lower()}.png", b"png")
        elif kind == "stale":
            store(f"heads/{key}/heads.json", sidecar(key, "0" * 32))
        elif kind in ("failed", "retriable"):
            code, reason, retriable = CODES[i // len(CLASSES) % len(CODES)] if kind == "failed" else ("Throttling", "throttled", True)
            store(f"heads/{key}/error.json", ErrorRecord(Source(BUCKET, key, etag, 9), code, reason, retriable).to_json())
    return counts


# -- the commands --------------------------------------------------------------------------------------------------
def _environment() -> dict[str, str]:
    """This environment without proxies (the SDKs would send 127.0.0.1 through them) or headseg's settings, plus
    the fakes' keys and the source tree of this checkout."""
    drop = {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"}
    env = {name: value for name, value in os.environ.items() if name.upper() not in drop}
    for name in ("INPUT_PREFIX", "OUTPUT_PREFIX", "RETURN_FORM", "FC_API", "FC_SERVICE", "FC_QUALIFIER", "BUCKET_DIR"):
        env.pop(name, None)
    return {**env, "PYTHONPATH": str(ROOT / "src"), "LOG_LEVEL": "WARNING", "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET, "ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN}  # fmt: skip


def measure(command: str, objects: int, args: list[str], oss: FakeOss, fc: FakeFc3, out: Path) -> Run:
    """Run `headseg <args>` as a program, its stdout into `out`; what it cost and asked of the fakes."""
    oss.requests.clear()
    fc.requests.clear()
    fc.invocations.clear()
    fakes_before, started = time.process_time(), time.monotonic()
    with out.open("wb") as stdout:
        process = subprocess.Popen([sys.executable, "-m", "headseg", *args], stdout=stdout, env=_environment())
        _, status, usage = os.wait4(process.pid, 0)
    wall, fakes_cpu = time.monotonic() - started, time.process_time() - fakes_before
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"headseg {command} exited {process.returncode}: {out.read_text()[-2000:]}")
    return Run(command, objects, wall, usage.ru_utime + usage.ru_stime, fakes_cpu, usage.ru_maxrss / 1024,
               {**_oss_requests(oss), "invocations": len(fc.invocations)})


def _oss_requests(oss: FakeOss) -> dict[str, int]:
    counted = oss.requests_by_kind()
    kinds = {kind: counted.pop(kind, 0) for kind in ("LIST", "GET", "HEAD", "PUT")}
    return {**kinds, "other": sum(counted.values())}


def one_size(objects: int) -> list[Run]:
    """Status, then backfill, on a fresh bucket of `objects` objects; each checked against the mix it was given."""
    from tests.fakes.fc3 import FakeFc3
    from tests.fakes.oss import FakeOss

    credentials, tokens = {KEY_ID: SECRET}, {KEY_ID: TOKEN}
    with FakeOss(credentials, tokens) as oss, FakeFc3(credentials, tokens) as fc, tempfile.TemporaryDirectory() as tmp:
        fc.add_function("headseg")
        expected = seed(oss, objects)
        oss.latency = fc.latency = LATENCY
        target = ["--bucket", BUCKET, "--prefix", "incoming/", "--oss-endpoint", oss.url, "--quiet"]
        status = measure("status", objects, ["status", *target, "--json"], oss, fc, Path(tmp) / "status.json")
        counts = json.loads((Path(tmp) / "status.json").read_text())["counts"]
        if counts != {**expected, "errors": 0}:
            raise RuntimeError(f"status counted {counts}, the bucket holds {expected}")
        backfill = measure("backfill", objects, ["backfill", *target, "--fc-endpoint", fc.url, "--qps", "1e6",
                                                  "--journal", str(Path(tmp) / "journal")], oss, fc, Path(tmp) / "backfill.txt")  # fmt: skip
        if backfill.requests["invocations"] != expected["pending"] + expected["stale"] + expected["retriable"]:
            raise RuntimeError(f"backfill handed over {backfill.requests['invocations']}, expected {expected}")
    return [status, backfill]


# -- the report ----------------------------------------------------------------------------------------------------
def rows(runs: list[Run]) -> list[str]:
    lines = [
        "| objects (sources) | command | wall s | CPU s | peak RSS MB | LIST | GET | HEAD | PUT | invocations | fakes' CPU s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        r = run.requests
        lines.append(f"| {run.objects} ({run.objects * 19 // 20}) | {run.command} | {run.wall:.1f} | {run.cpu:.1f} | {run.rss_mb:.0f} | "
                     f"{r['LIST']} | {r['GET']} | {r['HEAD']} | {r['PUT']} | {r['invocations']} | {run.fakes_cpu:.1f} |")  # fmt: skip
    if len({run.objects for run in runs}) < 2:
        return lines
    lines += ["", "| growth per 1 000 objects | wall s | CPU s | peak RSS MB | OSS requests | at 10M: wall / CPU / peak RSS |",
              "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    verdicts = []
    for command in COMMANDS:
        mine = [run for run in runs if run.command == command]
        wall, cpu, rss, requests = (fit([(run.objects, float(getattr(run, m))) for run in mine])
                                    for m in ("wall", "cpu", "rss_mb", "oss_requests"))  # fmt: skip
        at = 10_000_000
        lines.append(f"| {command} | {wall.per_1000:.2f} | {cpu.per_1000:.2f} | {rss.per_1000:.2f} | {requests.per_1000:.0f} | "
                     f"{wall.at(at) / 3600:.1f} h / {cpu.at(at) / 3600:.1f} h / {rss.at(at) / 1024:.1f} GB |")  # fmt: skip
        verdicts += goals(mine)
    met = [goal for goal, _, ok in verdicts if ok]
    lines += ["", *(f"- {'met' if ok else 'NOT met'}: {goal}: {shown}" for goal, shown, ok in verdicts),
              f"\nP8 operations: {len(met)} of {len(verdicts)} goals met; {LATENCY * 1000:.0f} ms per request."]  # fmt: skip
    return lines


def run(sizes: tuple[int, ...] = SIZES) -> list[str]:
    return rows([r for objects in sizes for r in one_size(objects)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.p8_operations", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="bucket sizes in objects, multiples of 20")
    sizes = tuple(int(n) for n in parser.parse_args(argv).sizes.split(","))
    if any(n % len(CLASSES) for n in sizes):
        parser.error(f"every size must be a multiple of {len(CLASSES)} (the mix)")
    print("\n".join(run(sizes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
