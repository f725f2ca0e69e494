"""Soak: 1 000+ deliveries through the fakes under random faults; nothing lost, duplicated or half-written.

Faults on every hop (throttling, 5xx, dropped connections, slow replies, stalls, trickling bodies, expired
cutout URLs, bodies corrupted or cut off in transfer, SegmentHead replies that are not JSON or carry a box that is
null), duplicate deliveries (some concurrent, some of images that need normalizing), new uploads of the
same key racing runs in flight, images too costly to decode, and FC's async retry of every event the handler
raised for. Every invocation ends within its timeout. Bounded: a fixed number of events, each redelivered at
most MAX_DELIVERIES times.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from headseg.function.errors import RetriableError
from tests.conftest import Cloud, fc_context, oss_event
from tests.fakes._server import Fault, Request, Response
from tests.corpus import png_claiming
from tests.fakes.images import portrait
from tests.fakes.imageseg import is_result_download, is_segment_call

OBJECTS = 600
CORRUPT_EVERY = 20  # every 20th object is a corrupt JPEG: a permanent error, recorded
REUPLOAD_EVERY = 9  # every 9th object is uploaded again (new eTag) after its first event
NORMALIZE_EVERY = 11  # every 11th object is too large for SegmentHead as it is: a normalized copy each run
COSTLY_EVERY = 50  # every 50th object claims 10000x10000 px: too costly to decode at 512 MB, a permanent error
RACE_EVERY = 13  # every 13th object is uploaded again while its first runs are in flight
TIMEOUT = 10  # seconds: the function's timeout
MAX_DELIVERIES = 9  # the first delivery plus FC's async retries (maxAsyncRetryAttempts is 0-8)
WORKERS = 8
SEED = 20261124


class Chaos:
    """Probabilistic fault matchers, counted per kind, reproducible from a seed."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def sometimes(self, kind: str, probability: float, match=lambda request: True):
        def matcher(request: Request) -> bool:
            if not match(request):
                return False
            with self._lock:
                hit = self._random.random() < probability
                self.counts[kind] += hit
            return hit

        return matcher


def _json_error(status: int, code: str) -> Response:
    return Response(status, json.dumps({"RequestId": "X", "Code": code, "Message": "chaos"}).encode(), {"Content-Type": "application/json"})


@pytest.mark.timeout(900)  # ~45 s idle; a loaded 2-core machine takes several times that
def test_soak_nothing_lost_duplicated_or_half_written(cloud: Cloud, caplog):
    cloud.configure(RETRY_BASE="0.005", MAX_ATTEMPTS="4", DOWNLOAD_WORKERS="4")
    chaos = Chaos(SEED)
    forever = 10**9
    imageseg, oss = cloud.imageseg, cloud.oss
    imageseg.inject(Fault("status", chaos.sometimes("SegmentHead throttled", 0.06, is_segment_call), forever, _json_error(400, "Throttling.User")))
    imageseg.inject(Fault("status", chaos.sometimes("SegmentHead 503", 0.03, is_segment_call), forever, _json_error(503, "ServiceUnavailable")))
    imageseg.inject(Fault("drop", chaos.sometimes("SegmentHead dropped", 0.02, is_segment_call), forever))
    imageseg.inject(Fault("delay", chaos.sometimes("SegmentHead slow", 0.02, is_segment_call), forever, seconds=0.05))
    expired = Response(403, b"<Error><Code>AccessDenied</Code><Message>Request has expired.</Message></Error>")
    imageseg.inject(Fault("status", chaos.sometimes("cutout URL expired", 0.03, is_result_download), forever, expired))
    oss_500 = Response(500, b"<Error><Code>InternalError</Code><Message>chaos</Message></Error>", {"Content-Type": "application/xml"})
    oss.inject(Fault("status", chaos.sometimes("OSS 500", 0.015), forever, oss_500))
    oss.inject(Fault("drop", chaos.sometimes("OSS dropped", 0.01), forever))
    oss.inject(Fault("delay", chaos.sometimes("OSS slow", 0.01), forever, seconds=0.03))
    oss.inject(Fault("stall", chaos.sometimes("OSS stalled", 0.004), forever, seconds=0.3, after_auth=True))
    oss.inject(Fault("stall", chaos.sometimes("OSS stalled for good", 0.0005), forever, seconds=math.inf, after_auth=True))
    oss.inject(Fault("trickle", chaos.sometimes("OSS trickling", 0.005), forever, seconds=0.002, chunk=512))
    oss.inject(Fault("corrupt", chaos.sometimes("OSS body corrupted", 0.01, _get), forever))
    oss.inject(Fault("cut", chaos.sometimes("OSS body cut off", 0.01, _get), forever, chunk=100))
    not_json = Response(200, b"<html>502 Bad Gateway</html>", {"Content-Type": "text/html"})
    imageseg.inject(Fault("status", chaos.sometimes("SegmentHead not JSON", 0.01, is_segment_call), forever, not_json))
    null_box = {"RequestId": "X", "Data": {"Elements": [{"X": None, "Y": 0, "Width": 9, "Height": 9, "ImageURL": "u"}]}}
    null_box_reply = Response(200, json.dumps(null_box).encode(), {"Content-Type": "application/json"})
    imageseg.inject(Fault("status", chaos.sometimes("SegmentHead null box", 0.01, is_segment_call), forever, null_box_reply))
    imageseg.inject(Fault("trickle", chaos.sometimes("cutout trickling", 0.02, is_result_download), forever, seconds=0.002, chunk=512))

    # Given objects with 0-2 heads, some corrupt
    expected: dict[str, int | None] = {}  # key -> head count, None for corrupt
    etags: dict[str, str] = {}
    rng = random.Random(SEED)
    for i in range(OBJECTS):
        key = f"incoming/soak/{i:04d}.jpg"
        if i % CORRUPT_EVERY == 7:
            etags[key], expected[key] = cloud.upload(key, b"\xff\xd8\xff\xe0" + rng.randbytes(60)), None
        elif i % COSTLY_EVERY == 13:
            etags[key], expected[key] = cloud.upload(key, png_claiming(10_000, 10_000), "image/png"), None
        elif i % NORMALIZE_EVERY == 4:
            etags[key], expected[key] = cloud.upload(key, portrait(2100, 300, [(40, 40, 200, 220)])), 1
        else:
            heads = [(8 + 40 * h, 10, 30, 36) for h in range(rng.randint(0, 2))]
            etags[key], expected[key] = cloud.upload(key, portrait(96, 64, heads)), len(heads)

    deliveries: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    slowest = [0.0]
    lock = threading.Lock()

    def deliver(key: str, etag: str) -> None:
        """One event through FC: the handler, retried while it raises, up to MAX_DELIVERIES times."""
        for _ in range(MAX_DELIVERIES):
            with lock:
                deliveries[key] += 1
            started = time.monotonic()
            try:
                result = json.loads(cloud.function.handler(oss_event((key, etag)), fc_context(timeout=TIMEOUT)))
            except RetriableError:
                continue
            finally:
                with lock:
                    slowest[0] = max(slowest[0], time.monotonic() - started)
            with lock:
                outcomes.update(o["outcome"] for o in result["outcomes"])
            return
        with lock:
            outcomes["gave up"] += 1

    def reupload_and_deliver(key: str, heads: list[tuple[int, int, int, int]]) -> None:
        with lock:
            etags[key], expected[key] = cloud.upload(key, portrait(96, 64, heads)), len(heads)
            etag = etags[key]
        deliver(key, etag)

    started = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        # When: every event is delivered at least once, duplicates right behind (often concurrently)
        futures = []
        for i, key in enumerate(expected):
            futures += [pool.submit(deliver, key, etags[key]) for _ in range(1 + (i % 3 == 0) + (i % 7 == 0))]
            if i % RACE_EVERY == 5 and expected[key] is not None:  # a new version lands while those run
                futures.append(pool.submit(reupload_and_deliver, key, [(30, 12, 30, 40)]))
        [f.result() for f in futures]
        # and some keys are uploaded again, their new event and a stale redelivery of the old one racing
        futures = []
        for i, key in enumerate(expected):
            if i % REUPLOAD_EVERY == 0 and expected[key] is not None:
                heads = [(20, 12, 34, 40)]
                old = etags[key]
                etags[key], expected[key] = cloud.upload(key, portrait(96, 64, heads)), 1
                futures += [pool.submit(deliver, key, etags[key]), pool.submit(deliver, key, old)]
        [f.result() for f in futures]
    elapsed = time.monotonic() - started

    # Then: every object ends with a correct sidecar or a recorded permanent error
    lost, duplicated, half_written, wrong, outlived = [], [], [], [], []
    for key, heads in expected.items():
        folder = f"heads/{key}/"
        files = set(cloud.outputs(folder))
        sidecar = cloud.read_json(folder + "heads.json")
        error = cloud.read_json(folder + "error.json")
        cutouts = {f for f in files if f.endswith(".png")}
        if heads is None:
            if not (error and error["retriable"] is False and error["source"]["etag"] == etags[key]) or sidecar:
                lost.append(key)
            continue
        if sidecar is None:
            (half_written if cutouts else lost).append(key)
            continue
        listed = {h["key"] for h in sidecar["heads"]}
        if not listed <= files:
            half_written.append(key)
        if cutouts - listed:
            duplicated.append(key)
        if sidecar["source"]["etag"] != etags[key] or len(sidecar["heads"]) != heads:
            wrong.append(key)
        if error is not None:  # an error record beside the success that settled its source
            outlived.append(key)
    leftovers = cloud.outputs("heads/.scratch/")
    events = sum(deliveries.values())
    print(
        f"\nsoak: {len(expected)} objects, {events} deliveries ({events - len(expected)} duplicates or retries) "
        f"in {elapsed:.1f}s; outcomes {dict(outcomes)}; SegmentHead calls {imageseg.calls} "
        f"(served {imageseg.served}); faults injected {dict(chaos.counts)}; "
        f"lost {len(lost)}, duplicated {len(duplicated)}, half-written {len(half_written)}, wrong {len(wrong)}, "
        f"records outliving a success {len(outlived)}; "
        f"slowest invocation {slowest[0]:.2f}s of {TIMEOUT}s"
    )
    for key in lost + duplicated + half_written + wrong + outlived:
        print("  ", key, expected[key], sorted(cloud.outputs(f"heads/{key}/")), cloud.read(f"heads/{key}/error.json"), deliveries[key])
    assert events >= 1000
    assert sum(chaos.counts.values()) >= 100  # the faults really happened
    assert (lost, duplicated, half_written, wrong, outlived, leftovers) == ([], [], [], [], [], [])
    assert outcomes["gave up"] == 0
    assert slowest[0] < TIMEOUT  # no invocation ran past the function's timeout
    from tests.conftest import ACCESS_KEY_SECRET, SECURITY_TOKEN

    logged = caplog.text  # thousands of lines, retries and failures included: no secret, no signature
    assert ACCESS_KEY_SECRET not in logged and SECURITY_TOKEN not in logged
    assert "signature=" not in logged.lower().replace("signature=***", "")


def _get(request: Request) -> bool:
    """A GET of the function's own (oss2's), not SegmentHead's read of the signed URL: the service's side of the
    wire is not headseg's to verify, and a bit flipped there would change what it finds."""
    return request.method == "GET" and request.header("user-agent").startswith("aliyun-sdk-python")
