"""P7 deadline: the worst overrun past the work deadline under stalled and trickling servers ÷ TIME_MARGIN.
Goal ≤ 1: the invocation ends before Function Compute's timeout.

The real handler (`index.handler`) against the wire-level fakes, with a 6 s function (its context's
function.timeout) and TIME_MARGIN=2: the work has until 4 s, the error record until 4 s + 0.75 × the margin.
Each scenario makes one call never answer (a stall, after the request's signature checked out), answer one
byte at a time, or fail every time (5xx); the handler must give up, write the retriable error record and raise
RetriableError. Overrun = the handler's wall time − (timeout − TIME_MARGIN); also whether heads/<key>/error.json
was written, with its code. A warm-up invocation first, as on a warm instance.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from bench._fakes import fake_cloud

TIMEOUT = 6  # seconds: the function's timeout, as FC's context says it
MARGIN = 2.0  # TIME_MARGIN
BUCKET, KEY = "bench", "incoming/a.jpg"
HEADS = [(40, 50, 60, 80), (170, 40, 70, 90)]

Inject = Callable[[Any, Any], object]  # (oss, imageseg) -> the fault injected


def _scenarios() -> list[tuple[str, Inject]]:
    from tests.fakes.imageseg import is_result_download
    from tests.fakes.oss import FakeOss

    match = FakeOss.match
    sidecar, source = match("PUT", key=f"heads/{KEY}/heads.json"), match("GET", key=KEY)

    def cutout(request: Any) -> bool:  # heads/<key>/head-<i>-<hash>.png
        return request.method == "PUT" and unquote(request.path).startswith(f"/{BUCKET}/heads/{KEY}/head-")

    return [
        ("stalled sidecar PUT", lambda oss, seg: oss.stall(math.inf, times=100, match=sidecar)),
        ("stalled SegmentHead (after auth)", lambda oss, seg: seg.stall(math.inf, times=100)),
        ("trickling cutout download (1 B / 0.5 s)",
         lambda oss, seg: seg.trickle(0.5, chunk=1, times=100, match=is_result_download)),
        ("trickling object GET (16 B / 0.5 s)", lambda oss, seg: oss.trickle(0.5, chunk=16, times=100, match=source)),
        ("stalled object GET", lambda oss, seg: oss.stall(math.inf, times=100, match=source)),
        ("5xx storm on SegmentHead", lambda oss, seg: seg.server_error(times=1000)),
        ("trickling SegmentHead answer (1 B / 0.5 s)", lambda oss, seg: seg.trickle(0.5, chunk=1, times=100)),
        ("stalled cutout PUT", lambda oss, seg: oss.stall(math.inf, times=100, match=cutout)),
        ("every PUT stalled (the error record too)", lambda oss, seg: oss.stall(math.inf, times=1000, match=match("PUT"))),
    ]


def scenario(inject: Inject) -> tuple[float, str, str]:
    """(the handler's wall time, how it ended, the error record's code or "not written") in a fresh cloud."""
    from headseg.cli.invoke import FunctionMeta, LocalContext
    from headseg.errors import RetriableError
    from headseg.events import object_created_event
    from tests.fakes.images import portrait

    with fake_cloud() as (oss, imageseg, _fc):
        import index

        def invoke(key: str, etag: str) -> str:
            event = json.dumps(object_created_event(BUCKET, key, etag)).encode()
            context = LocalContext(request_id=f"bench-{key}", function=FunctionMeta(timeout=TIMEOUT))
            return index.handler(event, context)

        image = portrait(400, 300, HEADS)
        invoke("incoming/warm.jpg", oss.put(BUCKET, "incoming/warm.jpg", image))  # connections, lazy imports
        etag = oss.put(BUCKET, KEY, image)
        inject(oss, imageseg)
        started = time.monotonic()
        try:
            ended = "returned " + ",".join(o["outcome"] for o in json.loads(invoke(KEY, etag))["outcomes"])
        except RetriableError:
            ended = "RetriableError"
        elapsed = time.monotonic() - started
        oss.clear_faults()
        record = oss.get(BUCKET, f"heads/{KEY}/error.json")
        written = json.loads(record)["code"] if record is not None else "not written"
    return elapsed, ended, written


def run() -> list[str]:
    saved, quiet = os.environ.get("TIME_MARGIN"), logging.getLogger("headseg")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # every scenario ends in an ERROR line: expected here
    os.environ["TIME_MARGIN"] = str(MARGIN)
    try:
        results = [(name, *scenario(inject)) for name, inject in _scenarios()]
    finally:
        quiet.setLevel(level)
        if saved is None:
            os.environ.pop("TIME_MARGIN", None)
        else:
            os.environ["TIME_MARGIN"] = saved
    work = TIMEOUT - MARGIN
    rows = [
        "| scenario | handler s | overrun past the work deadline s | ÷ TIME_MARGIN | ended | error record |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, elapsed, ended, written in results:
        overrun = elapsed - work
        rows.append(f"| {name} | {elapsed:.2f} | {overrun:+.2f} | {overrun / MARGIN:.2f} | {ended} | {written} |")
    name, elapsed, _, _ = max(results, key=lambda result: result[1])
    worst = elapsed - work
    over = [result[0] for result in results if result[1] >= TIMEOUT]
    timeout = (
        f"the function's timeout ({TIMEOUT} s) was never exceeded (longest: {elapsed:.2f} s, {name})"
        if not over
        else f"the function's timeout ({TIMEOUT} s) was exceeded by: {', '.join(over)}"
    )
    rows.append(
        f"\nP7 worst overrun past the work deadline: {worst:.2f} s ÷ TIME_MARGIN {MARGIN:g} s = {worst / MARGIN:.2f} "
        f"(goal ≤ 1); {timeout}."
    )
    return rows


if __name__ == "__main__":
    print("\n".join(run()))
