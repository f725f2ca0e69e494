"""P6 backfill: achieved invocation rate ÷ configured QPS against the fake FC, while "FC" runs the real
handler on every invocation and the fake imageseg enforces SegmentHead's 2 QPS quota. Goal ≥ 0.95, and no
event lost to throttling (throttled calls are retried, never given up)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

QPS = 2.0
OBJECTS = 24
KEY_ID, SECRET, TOKEN = "STS.bench", "bench-secret", "bench-token"


def run() -> list[str]:
    from tests.fakes.fc import FakeFc
    from tests.fakes.images import portrait
    from tests.fakes.imageseg import FakeImageseg
    from tests.fakes.oss import FakeOss

    creds = {KEY_ID: SECRET}
    with FakeOss(creds, {KEY_ID: TOKEN}) as oss, FakeImageseg(creds, {KEY_ID: TOKEN}) as imageseg, FakeFc(creds, {KEY_ID: TOKEN}) as fc:
        fc.add_function("default", "headseg")
        imageseg.qps_limit = QPS
        os.environ.update(
            INPUT_PREFIX="incoming/", OUTPUT_PREFIX="heads/", OSS_ENDPOINT=oss.url, IMAGESEG_ENDPOINT=imageseg.url,
            ALIBABA_CLOUD_ACCESS_KEY_ID=KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET=SECRET,
            ALIBABA_CLOUD_SECURITY_TOKEN=TOKEN, LOG_LEVEL="ERROR",
        )
        for i in range(OBJECTS):
            oss.put("bench", f"incoming/p6/{i:03d}.jpg", portrait(200, 150, [(60, 30, 60, 80)]))
        import index
        from headseg import handler

        handler.reset()  # a fresh instance for this benchmark's environment
        from headseg.cli import main

        outcomes: list[str] = []
        functions = ThreadPoolExecutor(8)  # FC's instances: the async invocations run while backfill goes on

        def execute(invocation) -> None:  # type: ignore[no-untyped-def]
            try:
                result = json.loads(index.handler(invocation.payload, None))
                outcomes.extend(o["outcome"] for o in result["outcomes"])
            except Exception as exc:  # a raise would be FC's retry: count it as not done (yet)
                outcomes.append(type(exc).__name__)

        fc.on_invoke = lambda invocation: functions.submit(execute, invocation)
        with tempfile.TemporaryDirectory() as tmp:
            args = ["backfill", "--bucket", "bench", "--prefix", "incoming/p6/", "--oss-endpoint", oss.url, "--fc-endpoint", fc.url,
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
