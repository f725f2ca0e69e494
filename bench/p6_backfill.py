"""P6 backfill: achieved invocation rate ÷ configured QPS against the fake FC, while "FC" runs the real
handler on every invocation and the fake imageseg enforces SegmentHead's 2 QPS quota. Goal ≥ 0.95, and no
event lost to throttling (throttled calls are retried, never given up)."""

from __future__ import annotations

import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench._fakes import fake_cloud, function_instance

QPS = 2.0
OBJECTS = 24


def run() -> list[str]:
    from tests.fakes.images import portrait

    with fake_cloud(log_level="ERROR") as (oss, imageseg, fc), function_instance() as function:
        imageseg.qps_limit = QPS
        for i in range(OBJECTS):
            oss.put("bench", f"incoming/p6/{i:03d}.jpg", portrait(200, 150, [(60, 30, 60, 80)]))
        from headseg.cli import main

        outcomes: list[str] = []
        functions = ThreadPoolExecutor(8)  # FC's instances: the async invocations run while backfill goes on

        def execute(invocation) -> None:  # type: ignore[no-untyped-def]
            try:
                result = json.loads(function.handler(invocation.payload, None))
                outcomes.extend(o["outcome"] for o in result["outcomes"])
            except Exception as exc:  # a raise would be FC's retry: count it as not done (yet)
                outcomes.append(type(exc).__name__)

        fc.on_invoke = lambda invocation: functions.submit(execute, invocation)
        with tempfile.TemporaryDirectory() as tmp:
            args = ["backfill", "--bucket", "bench", "--prefix", "incoming/p6/", "--oss-endpoint", oss.url, "--fc-endpoint", fc.url,
                    "--api", "fc2", "--service", "default",  # bench._fakes runs the FC 2.0 fake
                    "--qps", str(QPS), "--quiet", "--journal", str(Path(tmp) / "j")]
            main(args)
        functions.shutdown(wait=True)
        stamps = sorted(entry_time for entry_time in fc.times)
    achieved = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    done = outcomes.count("done")
    return [
        "| invocations | achieved rate | configured | SegmentHead served / throttled | done / lost |",
        "| --- | --- | --- | --- | --- |",
        f"| {len(stamps)} | {achieved:.3f}/s | {QPS:.1f}/s | {imageseg.served} / {imageseg.throttled} | {done} / {OBJECTS - done} |",
        f"\nP6 backfill: achieved ÷ configured {achieved / QPS:.3f} (goal ≥ 0.95); events lost to throttling: {OBJECTS - done}.",
    ]


if __name__ == "__main__":
    print("\n".join(run()))
