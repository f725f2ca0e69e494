"""P8 operations at bucket scale: `headseg status --json` and `headseg backfill --qps 1e6` run as programs against
the fake OSS and FC 3.0 (the real oss2 and FC 3.0 SDKs over HTTP, every signature checked), 30 ms added to every
request, on a bucket of N objects: 70 % done, 10 % pending, 5 % each stale, failed (three codes), retriable and
orphaned (so 0.95 N sources), the classes interleaved in key order. Results as 0.3 writes them (each with its
mark, the prefix stamped) at 1k, 10k and 100k objects; side by side at 1k, as 0.2 left them (records alone,
read one by one): the before ÷ after ratios.

Wall is the program's, start-up included; CPU (user + system, `os.wait4`) and peak RSS (of its process tree:
VmRSS summed every 20 ms, or its own VmHWM if larger) are the command's, so the fakes, which serve from threads
of this process, are not in them (their CPU is the last column). Requests are the fakes' logs: OSS LIST pages,
GET, HEAD, PUT; FC 3.0 invocations. Growth is the least-squares line through the sizes run, per 1 000 objects;
the 100k and 10M figures are measured where run, else read off that line. Goals (issue 24): OSS requests
≤ 2 × N/1000 + the reads (10 error records per failure code, for its reasons, and the stamp); peak RSS at 100k
within 1.2 × 1k's; status on 100k under 30 s of wall, and 10M under 15 minutes (backfill's wall is its
hand-overs', at whatever quota it is given: 16 at once here).
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

SIZES = (1000, 10000, 100000)
BEFORE = (1000,)  # the sizes also run on 0.2's layout (records read one by one), for the before ÷ after ratios
CONCURRENCY = 16  # backfill's hand-overs at once
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
    rss_mb: float  # the peak RSS of the command's process tree
    requests: dict[str, int]  # kind -> count
    layout: str = "marks"  # the results' layout: "marks" (0.3) or "records" (0.2, read one by one)

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
    """(goal, what this run shows, met) for each of issue 24's goals, for the runs of one command (marks layout).
    Wall goals are status's: backfill's wall is its hand-overs', at whatever quota it is given."""
    command = runs[0].command
    reads = SAMPLE * len(CODES) + 1  # the sampled reasons, and the stamp
    budget = {run.objects: 2 * run.objects / 1000 + reads for run in runs}
    worst = max(runs, key=lambda run: run.oss_requests / budget[run.objects])
    base = min(runs, key=lambda run: run.objects)
    rss, measured = value_at(runs, 100_000, "rss_mb")
    verdicts = [
        (f"{command}: OSS requests ≤ 2 × N/1000 + {reads} reads ({SAMPLE} reasons a failure code, the stamp)",
         f"{worst.oss_requests} at {worst.objects} (allowed {budget[worst.objects]:.0f})",
         all(run.oss_requests <= budget[run.objects] for run in runs)),
        (f"{command}: peak RSS at 100k ≤ {GOAL_RSS_RATIO} × at {base.objects}",
         f"{rss:.0f} MB{'' if measured else ' (fitted)'} ÷ {base.rss_mb:.0f} MB = {rss / base.rss_mb:.2f}",
         rss <= GOAL_RSS_RATIO * base.rss_mb),
    ]  # fmt: skip
    if command == "status":
        wall, measured = value_at(runs, 100_000, "wall")
        verdicts.append((f"status: wall at 100k < {GOAL_STATUS_100K:.0f} s", f"{wall:.1f} s{'' if measured else ' (fitted)'}", wall < GOAL_STATUS_100K))
        wall = fit([(run.objects, run.wall) for run in runs]).at(10_000_000)
        verdicts.append((f"status: wall at 10M (extrapolated) < {GOAL_10M / 60:.0f} min", f"{wall / 60:.1f} min", wall < GOAL_10M))
    return verdicts


# -- the bucket ----------------------------------------------------------------------------------------------------
def seed(oss: FakeOss, objects: int, layout: str = "marks") -> dict[str, int]:
    """`objects` objects of the mix, straight into the fake's state (no requests); the expected counts. `layout`
    "marks": results as 0.3 writes them (each record with its mark, the prefix stamped); "records": as 0.2 did."""
    from headseg.function.config import Config
    from headseg.function.results import done_mark, error_mark
    from headseg.function.sidecar import ErrorRecord, HeadRecord, Sidecar, Source
    from tests.fakes.oss import StoredObject

    now, put = int(time.time()), oss.state.put
    layouts = Config(input_prefix="incoming/", output_prefix="heads/").layout
    oss.create_bucket(BUCKET)

    def store(key: str, data: bytes) -> str:
        obj = StoredObject(key, data, "image/jpeg" if key.endswith(".jpg") else "application/octet-stream", now)
        put(BUCKET, obj)
        return obj.etag

    def record(key: str, written: Sidecar | ErrorRecord) -> None:
        folder = layouts(key)
        if isinstance(written, Sidecar):
            store(folder.sidecar, written.to_json())
        else:
            store(folder.error, written.to_json())
        if layout == "marks":
            mark = done_mark(written) if isinstance(written, Sidecar) else error_mark(written)
            store(folder.mark(mark), mark.body)

    def sidecar(key: str, etag: str) -> Sidecar:
        heads = [HeadRecord(0, f"heads/{key}/head-0-{etag[:8].lower()}.png", 1, 2, 30, 40)]
        return Sidecar(Source(BUCKET, key, etag, 9, last_modified=now), "req", None, "cloud", heads, created_at="2026-12-01T00:00:00Z")

    counts = dict.fromkeys(("done", "pending", "stale", "failed", "retriable", "orphans"), 0)
    for i in range(objects):
        kind, key = CLASSES[i % len(CLASSES)], f"incoming/{i:08d}.jpg"
        counts["orphans" if kind == "orphan" else kind] += 1
        etag = "1" * 32 if kind == "orphan" else store(key, f"image {i}".encode())
        if kind in ("done", "orphan"):
            store(f"heads/{key}/head-0-{etag[:8].lower()}.png", b"png")
            record(key, sidecar(key, etag))
        elif kind == "pending" and i % 3 == 0:  # a run that died before its sidecar: cutouts alone
            store(f"heads/{key}/head-0-{etag[:8].lower()}.png", b"png")
        elif kind == "stale":
            record(key, sidecar(key, "0" * 32))
        elif kind in ("failed", "retriable"):
            code, reason, retriable = CODES[i // len(CLASSES) % len(CODES)] if kind == "failed" else ("Throttling", "throttled", True)
            record(key, ErrorRecord(Source(BUCKET, key, etag, 9, last_modified=now), code, reason, retriable))
    if layout == "marks":
        store("heads/.settled.json", json.dumps({"prefixes": ["incoming/"]}).encode())  # as `headseg migrate` leaves it
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


# `headseg ARGS`, writing at exit the peak RSS (kB) of its process tree: its own VmHWM, or the largest sum of the
# tree's VmRSS seen every 20 ms (any process it starts counts too), whichever is larger. Not the rusage of a child:
# that counts the memory it was spawned from (Linux keeps the pre-exec high-water mark), here the fakes' bucket.
_PEAK = """
import atexit, os, runpy, sys, threading, time
path, peak = sys.argv.pop(1), [0]
def rss(pid, field="VmRSS:"):
    try:
        with open(f"/proc/{pid}/status") as status:
            return int(next(line for line in status if line.startswith(field)).split()[1])
    except (OSError, StopIteration):
        return 0
def tree(pid):
    kids = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            kids += [int(k) for k in open(f"/proc/{pid}/task/{task}/children").read().split()]
        except OSError:
            pass
    return [pid] + [p for kid in kids for p in tree(kid)]
def watch():
    while True:
        peak[0] = max(peak[0], sum(rss(pid) for pid in tree(os.getpid())))
        time.sleep(0.02)
threading.Thread(target=watch, daemon=True).start()
atexit.register(lambda: open(path, "w").write(str(max(peak[0], rss(os.getpid(), "VmHWM:")))))
sys.argv[0] = "headseg"
runpy.run_module("headseg", run_name="__main__", alter_sys=True)
"""


def measure(command: str, objects: int, args: list[str], oss: FakeOss, fc: FakeFc3, out: Path, layout: str) -> Run:
    """Run `headseg <args>` as a program, its stdout into `out`; what it cost and asked of the fakes."""
    oss.requests.clear()
    fc.requests.clear()
    fc.invocations.clear()
    fakes_before, started = time.process_time(), time.monotonic()
    peak = out.with_suffix(".hwm")
    with out.open("wb") as stdout:
        wrapped = [sys.executable, "-c", _PEAK, str(peak), *args]
        process = subprocess.Popen(wrapped, stdout=stdout, env=_environment())
        _, status, usage = os.wait4(process.pid, 0)
    wall, fakes_cpu = time.monotonic() - started, time.process_time() - fakes_before
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"headseg {command} exited {process.returncode}: {out.read_text()[-2000:]}")
    return Run(command, objects, wall, usage.ru_utime + usage.ru_stime, fakes_cpu, int(peak.read_text()) / 1024,
               {**_oss_requests(oss), "invocations": len(fc.invocations)}, layout)


def _oss_requests(oss: FakeOss) -> dict[str, int]:
    counted = oss.requests_by_kind()
    kinds = {kind: counted.pop(kind, 0) for kind in ("LIST", "GET", "HEAD", "PUT")}
    return {**kinds, "other": sum(counted.values())}


def one_size(objects: int, layout: str = "marks") -> list[Run]:
    """Status, then backfill, on a fresh bucket of `objects` objects in `layout`; each checked against the mix."""
    from tests.fakes.fc3 import FakeFc3
    from tests.fakes.oss import FakeOss

    credentials, tokens = {KEY_ID: SECRET}, {KEY_ID: TOKEN}
    with FakeOss(credentials, tokens) as oss, FakeFc3(credentials, tokens) as fc, tempfile.TemporaryDirectory() as tmp:
        fc.add_function("headseg")
        expected = seed(oss, objects, layout)
        oss.latency = fc.latency = LATENCY
        target = ["--bucket", BUCKET, "--prefix", "incoming/", "--oss-endpoint", oss.url, "--quiet"]
        status = measure("status", objects, ["status", *target, "--json"], oss, fc, Path(tmp) / "status.json", layout)
        counts = json.loads((Path(tmp) / "status.json").read_text().splitlines()[-1])["counts"]  # the summary line
        if counts != {**expected, "errors": 0}:
            raise RuntimeError(f"status counted {counts}, the bucket holds {expected}")
        backfill = measure("backfill", objects, ["backfill", *target, "--fc-endpoint", fc.url, "--qps", "1e6", "--concurrency",
                                                  str(CONCURRENCY), "--journal", str(Path(tmp) / "journal")],
                           oss, fc, Path(tmp) / "backfill.txt", layout)  # fmt: skip
        if backfill.requests["invocations"] != expected["pending"] + expected["stale"] + expected["retriable"]:
            raise RuntimeError(f"backfill handed over {backfill.requests['invocations']}, expected {expected}")
    return [status, backfill]


# -- the report ----------------------------------------------------------------------------------------------------
def rows(runs: list[Run]) -> list[str]:
    lines = [
        "| objects (sources) | results | command | wall s | CPU s | peak RSS MB | LIST | GET | HEAD | PUT | invocations | fakes' CPU s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        r = run.requests
        lines.append(f"| {run.objects} ({run.objects * 19 // 20}) | {run.layout} | {run.command} | {run.wall:.1f} | {run.cpu:.1f} | "
                     f"{run.rss_mb:.0f} | {r['LIST']} | {r['GET']} | {r['HEAD']} | {r['PUT']} | {r['invocations']} | {run.fakes_cpu:.1f} |")  # fmt: skip
    before = {(run.command, run.objects): run for run in runs if run.layout == "records"}
    pairs = [(before[run.command, run.objects], run) for run in runs if run.layout == "marks" and (run.command, run.objects) in before]
    if pairs:
        lines += ["", "| before ÷ after (0.2's records ÷ marks) | wall | CPU | OSS requests |", "| --- | --- | --- | --- |"]
        lines += [f"| {old.command} at {old.objects} | {old.wall / new.wall:.1f} | {old.cpu / new.cpu:.1f} | "
                  f"{old.oss_requests / new.oss_requests:.1f} |" for old, new in pairs]  # fmt: skip
    marks = [run for run in runs if run.layout == "marks"]
    if len({run.objects for run in marks}) < 2:
        return lines
    lines += ["", "| growth per 1 000 objects | wall s | CPU s | peak RSS MB | OSS requests | at 10M: wall / CPU / peak RSS |",
              "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    verdicts = []
    for command in COMMANDS:
        mine = [run for run in marks if run.command == command]
        wall, cpu, rss, requests = (fit([(run.objects, float(getattr(run, m))) for run in mine])
                                    for m in ("wall", "cpu", "rss_mb", "oss_requests"))  # fmt: skip
        at = 10_000_000
        lines.append(f"| {command} | {wall.per_1000:.3f} | {cpu.per_1000:.3f} | {rss.per_1000:.3f} | {requests.per_1000:.2f} | "
                     f"{wall.at(at) / 60:.1f} min / {cpu.at(at) / 60:.1f} min / {max(rss.at(at), 0):.0f} MB |")  # fmt: skip
        verdicts += goals(mine)
    met = [goal for goal, _, ok in verdicts if ok]
    lines += ["", *(f"- {'met' if ok else 'NOT met'}: {goal}: {shown}" for goal, shown, ok in verdicts),
              f"\nP8 operations: {len(met)} of {len(verdicts)} goals met; {LATENCY * 1000:.0f} ms per request."]  # fmt: skip
    return lines


def run(sizes: tuple[int, ...] = SIZES, before: tuple[int, ...] = BEFORE) -> list[str]:
    runs = [r for objects in before for r in one_size(objects, "records")]
    return rows(runs + [r for objects in sizes for r in one_size(objects)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.p8_operations", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="bucket sizes in objects, multiples of 20")
    parser.add_argument("--before", default=",".join(map(str, BEFORE)), help="sizes also run on 0.2's layout ('' for none)")
    args = parser.parse_args(argv)
    sizes, before = (tuple(int(n) for n in text.split(",") if n) for text in (args.sizes, args.before))
    if any(n % len(CLASSES) for n in sizes + before):
        parser.error(f"every size must be a multiple of {len(CLASSES)} (the mix)")
    print("\n".join(run(sizes, before)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
