"""Crash consistency, proven (issue 21, deliverable 9): an instance SIGKILLed at any request boundary of a normal
run, then the event redelivered (FC's async retry) to a fresh instance, leaves the bucket exactly as a clean run.

Each scenario starts from a fixed bucket state and is first run clean, in a fresh instance (a process forked by
tests/instance_fork.py, so the kill takes the whole process as on FC), with a `Tripwire` numbering the
function's requests to both fakes in arrival order (SegmentHead's own fetch of the signed image URL is the
service's, not the function's). Then, for every request k of that run and both sides of it, the bucket is put
back, a fresh instance runs the event and is SIGKILLed at the boundary:
    before #k   request k arrived and is held unserved; the instance is killed, k never takes effect (nor does
                anything sent after it);
    after #k    request k was served and its reply sent; the instance is killed before anything later is served.
A new instance then gets the same event, and the bucket must equal the clean run's: same keys, same cutout
bytes, same sidecar (`VOLATILE` fields aside), so no error record, stale cutout or scratch copy stays behind.

DOWNLOAD_WORKERS=1 makes the order of a run's requests the same every time (only the first reads, the source
and its previous records, race each other, and reads change nothing), so boundary k is the same point in every
run. Every boundary of a scenario runs in one test, which lists all the boundaries that failed and what each
left. A boundary is a fork, a run to the boundary, a kill and a whole redelivery: 0.3 s for a small image, 0.8 s
for the one normalized, so ~45 s for the file on 2 busy cores (load 4); the instances import `index` only once.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote

import pytest

from tests.conftest import _OUR_VARIABLES, ACCESS_KEY_ID, ACCESS_KEY_SECRET, BUCKET, SECURITY_TOKEN, oss_event
from tests.fakes._server import FakeServer, Fault, Request
from tests.fakes.images import portrait
from tests.fakes.imageseg import RESULT_PREFIX, FakeImageseg
from tests.fakes.oss import FakeOss, StoredObject

ROOT = Path(__file__).resolve().parents[2]
INSTANCE_FORK = ROOT / "tests" / "instance_fork.py"
INPUT_PREFIX, OUTPUT_PREFIX = "incoming/", "heads/"
VOLATILE = ("timings_ms", "created_at", "request_id")  # sidecar fields that differ between two clean runs
RUN_TIMEOUT = 60.0  # seconds an instance may take to reach a boundary or to end (generous: a loaded machine)
HELD_TIMEOUT = 60.0  # seconds a held request waits for the test to kill the instance and release it

Bucket = dict[str, StoredObject]


# -- numbering the function's requests, and stopping a run at one -------------------------------------------------
@dataclass(frozen=True)
class Boundary:
    """The `index`-th request the function makes (from 1): killed before it is served, or after."""

    index: int
    after: bool

    def __str__(self) -> str:
        return f"{'after' if self.after else 'before'} #{self.index}"


class Tripwire:
    """Numbers the function's requests to the fakes it is armed on, in one order of arrival across them, and
    stops the run at `boundary`: from then on nothing the function sends is served. `tripped` is set once the
    run stands at the boundary (kill the instance then)."""

    def __init__(self, boundary: Boundary | None = None) -> None:
        self.boundary = boundary
        self.arrivals: list[str] = []
        self.tripped = threading.Event()
        self._released = threading.Event()
        self._closed = False  # the boundary was reached: later arrivals are held, then dropped
        self._trigger: Request | None = None  # the request whose reply trips an "after" boundary
        self._lock = threading.Lock()
        self._armed: list[FakeServer] = []

    def arm(self, oss: FakeOss, imageseg: FakeImageseg) -> None:
        for server, match in ((oss, is_the_functions), (imageseg, lambda request: True)):
            server.inject(Fault("hook", match, sys.maxsize, hook=self._arrived, replied=self._replied))
            self._armed.append(server)

    def release(self) -> None:
        """Let the held requests go, unserved. Once tripped, anything still read from the dead instance's
        connections (a request its last reply let it send) is dropped too, until `disarm()`."""
        self._released.set()

    def disarm(self) -> None:
        """Later requests are served as usual."""
        for server in self._armed:
            server.clear_faults()

    def _arrived(self, request: Request) -> bool:
        with self._lock:
            self.arrivals.append(describe(request))
            hold = self._closed
            if self.boundary is not None and len(self.arrivals) == self.boundary.index:
                self._closed = True
                if self.boundary.after:
                    self._trigger = request
                else:
                    hold = True
                    self.tripped.set()
        if hold:
            self._released.wait(HELD_TIMEOUT)
        return not hold

    def _replied(self, request: Request) -> None:
        if request is self._trigger:
            self.tripped.set()
            self._released.wait(HELD_TIMEOUT)


def is_the_functions(request: Request) -> bool:
    """An OSS request the function made: not SegmentHead fetching the presigned image URL (V1 or V4)."""
    return request.param("Signature") is None and request.param("x-oss-signature") is None


def describe(request: Request) -> str:
    """A request in a few words: `PUT heads/a.jpg/heads.json`, `SegmentHead`, `GET ?prefix=heads/&list-type=2`."""
    if request.path == "/":
        return "SegmentHead"
    if request.path.startswith(RESULT_PREFIX):
        return "GET cutout from SegmentHead"
    key = unquote(request.path).partition(f"/{BUCKET}")[2].lstrip("/")
    if not key:  # a bucket-level request: a listing, a multiple delete
        key = "?" + "&".join(f"{name}={value}" if value else name for name, value in request.query)
    return f"{request.method} {key}" + (" (first bytes)" if request.header("range") else "")


# -- fresh instances, forked on demand ------------------------------------------------------------------------------
class Instances:
    """tests/instance_fork.py: one process that imported `index` forks a fresh FC instance per event."""

    def __init__(self, env: dict[str, str], log: IO[str]) -> None:
        plan = {"key_id": ACCESS_KEY_ID, "secret": ACCESS_KEY_SECRET, "token": SECURITY_TOKEN}
        self._process = subprocess.Popen(
            [sys.executable, str(INSTANCE_FORK), str(ROOT / "src"), json.dumps(plan)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env, text=True,
        )  # fmt: skip
        self._answers: queue.Queue[dict[str, int]] = queue.Queue()
        self._running: int | None = None  # the instance forked last, until it ended
        threading.Thread(target=self._read, name="instance-fork answers", daemon=True).start()

    def start(self, event: bytes, env: dict[str, str] | None = None) -> int:
        """Fork an instance handling `event` (with `env` set first); its pid."""
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps({"event": event.decode("utf-8"), "env": env or {}}) + "\n")
        self._process.stdin.flush()
        self._running = self._answer(RUN_TIMEOUT)["pid"]
        return self._running

    def ended(self, timeout: float) -> int | None:
        """The instance's exit code (minus the signal that killed it), or None if it is still running."""
        try:
            status = self._answer(timeout)["status"]
        except queue.Empty:
            return None
        self._running = None
        return status

    def kill(self, pid: int) -> int:
        """SIGKILL the instance, and wait for its end (an instance that just ended by itself is not killed)."""
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        status = self.ended(RUN_TIMEOUT)
        assert status is not None, f"instance {pid} did not die"
        return status

    def close(self) -> None:
        """End the forking process, first killing an instance a failed test left running."""
        assert self._process.stdin is not None
        if self._running is not None:
            self.kill(self._running)
        self._process.stdin.close()
        try:
            self._process.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            raise

    def _answer(self, timeout: float) -> dict[str, int]:
        answer = self._answers.get(timeout=timeout)
        if "error" in answer:
            raise AssertionError("tests/instance_fork.py ended; see its log")
        return answer

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._answers.put(json.loads(line))
        self._answers.put({"error": 1})


@dataclass
class Prepared:
    """A scenario ready to crash: its event, the bucket it starts from, and its clean run."""

    event: bytes
    start: Bucket  # the bucket before the run
    requests: list[str]  # the clean run's requests, in order
    clean: Bucket  # the bucket after the clean run


# -- the lab: the fakes, the instances, the bucket --------------------------------------------------------------------
@dataclass
class Result:
    """What a run at a boundary did: how the killed instance ended, the redelivery's exit and requests, and
    what the bucket held afterwards."""

    killed: int | None
    redelivery: int
    redelivery_requests: list[str]
    bucket: Bucket


@dataclass
class Lab:
    oss: FakeOss
    imageseg: FakeImageseg
    instances: Instances
    log: Path  # what the instances logged
    prepared: dict[str, Prepared] = field(default_factory=dict)  # by scenario name

    def run(self, event: bytes, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
        """One fresh instance runs `event` to its end: its exit code and the function's requests, in order."""
        tripwire = Tripwire()
        tripwire.arm(self.oss, self.imageseg)
        try:
            self.instances.start(event, env)
            status = self.instances.ended(RUN_TIMEOUT)
            assert status is not None, "the instance did not end"
        finally:
            tripwire.release()
            self.quiesce()
            tripwire.disarm()
        return status, tripwire.arrivals

    def crash(self, event: bytes, boundary: Boundary) -> int | None:
        """A fresh instance runs `event` and is SIGKILLed at `boundary`: how it ended (None: it ended before)."""
        tripwire = Tripwire(boundary)
        tripwire.arm(self.oss, self.imageseg)
        try:
            pid = self.instances.start(event)
            deadline = time.monotonic() + RUN_TIMEOUT
            while not tripwire.tripped.wait(0.01):
                if self.instances.ended(0) is not None:
                    return None  # the run made fewer requests than the boundary's number
                assert time.monotonic() < deadline, f"the instance reached neither {boundary} nor its end"
            return self.instances.kill(pid)
        finally:
            tripwire.release()
            self.quiesce()
            tripwire.disarm()

    def crash_then_redeliver(self, event: bytes, boundary: Boundary, start: Bucket) -> Result:
        self.restore(start)
        killed = self.crash(event, boundary)
        status, requests = self.run(event)
        return Result(killed, status, requests, self.snapshot())

    def snapshot(self) -> Bucket:
        return {key: obj for key in self.oss.keys(BUCKET) if (obj := self.oss.object(BUCKET, key)) is not None}

    def restore(self, bucket: Bucket) -> None:
        """Put the bucket back as it was, objects and all (their Last-Modified too). The cutouts SegmentHead
        made for earlier runs are dropped: no run reads them again, and they add up (~4 MB a boundary)."""
        self.imageseg.results.clear()
        for key in self.oss.keys(BUCKET):
            self.oss.delete(BUCKET, key)
        for obj in bucket.values():
            self.oss.state.put(BUCKET, obj)

    def quiesce(self) -> None:
        """Wait until neither fake serves anything: the dead instance's connections ended, held requests gone."""
        deadline = time.monotonic() + RUN_TIMEOUT
        while self.oss.open_connections or self.imageseg.open_connections:
            assert time.monotonic() < deadline, "the fakes still serve connections of a dead instance"
            time.sleep(0.005)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    oss = FakeOss({ACCESS_KEY_ID: ACCESS_KEY_SECRET}, tokens={ACCESS_KEY_ID: SECURITY_TOKEN})
    oss.create_bucket(BUCKET)
    imageseg = FakeImageseg({ACCESS_KEY_ID: ACCESS_KEY_SECRET}, tokens={ACCESS_KEY_ID: SECURITY_TOKEN})
    log_path = tmp_path_factory.mktemp("crash") / "instances.log"
    with oss, imageseg, open(log_path, "w") as log:
        env = {name: value for name, value in os.environ.items() if name not in _OUR_VARIABLES}
        env.update(
            INPUT_PREFIX=INPUT_PREFIX, OUTPUT_PREFIX=OUTPUT_PREFIX, OSS_ENDPOINT=oss.url, OSS_PUBLIC_ENDPOINT=oss.url,
            IMAGESEG_ENDPOINT=imageseg.url, TIME_MARGIN="1", DOWNLOAD_WORKERS="1",
        )  # fmt: skip
        instances = Instances(env, log)
        try:
            yield Lab(oss, imageseg, instances, log_path)
        finally:
            instances.close()


# -- the scenarios ----------------------------------------------------------------------------------------------------
TWO_HEADS = [(60, 50, 90, 110), (250, 50, 90, 110)]
LARGE_HEADS = [(300, 300, 500, 600), (1300, 300, 500, 600)]


@dataclass(frozen=True)
class Scenario:
    """A source, the bucket state it starts from (`prepare` builds it in an empty bucket and returns the event),
    and what the clean run must leave (`expect(bucket)` asserts it)."""

    name: str
    key: str
    prepare: Callable[[Lab], bytes]
    expect: Callable[[Bucket], None]


def upload(lab: Lab, key: str, data: bytes) -> bytes:
    return oss_event((key, lab.oss.put(BUCKET, key, data, content_type="image/jpeg")))


def prepare_reupload(lab: Lab) -> bytes:
    """Version 1 with three heads done; version 2 (two heads) uploaded, and its first attempt failed transiently
    (SegmentHead answered 500 once, MAX_ATTEMPTS=1), leaving a retriable error record: the event redelivered is
    version 2's."""
    key = "incoming/again.jpg"
    three_heads = portrait(500, 300, [(40, 50, 80, 100), (210, 50, 80, 100), (380, 50, 80, 100)])
    assert lab.run(upload(lab, key, three_heads))[0] == 0
    event = upload(lab, key, portrait(400, 300, TWO_HEADS))
    lab.imageseg.server_error(times=1)
    assert lab.run(event, {"MAX_ATTEMPTS": "1"})[0] == 1
    lab.imageseg.clear_faults()
    assert json.loads(lab.oss.get(BUCKET, f"heads/{key}/error.json") or b"{}").get("retriable") is True
    assert len(lab.oss.keys(BUCKET, f"heads/{key}/head-")) == 3
    return event


def expect_result(key: str, heads: int, normalized: bool = False) -> Callable[[Bucket], None]:
    """Only the sidecar of the current version, its cutouts and its mark, nothing else beside the source."""

    def check(bucket: Bucket) -> None:
        etag = bucket[key].etag
        sidecar = json.loads(bucket[f"heads/{key}/heads.json"].data)
        assert sidecar["source"]["etag"] == etag and len(sidecar["heads"]) == heads
        assert (sidecar["normalization"] is not None) == normalized
        cutouts = [f"heads/{key}/head-{i}-{etag[:8].lower()}.png" for i in range(heads)]
        assert [head["key"] for head in sidecar["heads"]] == cutouts
        mark = f"heads/.settled/{key}/done.{etag}.{int(bucket[key].last_modified)}.{heads}.-"
        assert sorted(bucket) == sorted([key, f"heads/{key}/heads.json", *cutouts, mark])

    return check


SCENARIOS = [
    Scenario(
        "plain", "incoming/plain.jpg",
        lambda lab: upload(lab, "incoming/plain.jpg", portrait(400, 300, TWO_HEADS)),
        expect_result("incoming/plain.jpg", 2),
    ),
    Scenario(  # 2100 px: normalized, so a scratch copy is written for SegmentHead and removed after
        "normalized", "incoming/large.jpg",
        lambda lab: upload(lab, "incoming/large.jpg", portrait(2100, 1400, LARGE_HEADS)),
        expect_result("incoming/large.jpg", 2, normalized=True),
    ),
    Scenario(  # three old cutouts and an error record to remove once the new sidecar stands
        "reupload", "incoming/again.jpg", prepare_reupload, expect_result("incoming/again.jpg", 2),
    ),
]  # fmt: skip


def prepared(lab: Lab, scenario: Scenario) -> Prepared:
    """The scenario's start state and clean run, made once a module."""
    if scenario.name not in lab.prepared:
        lab.restore({})
        event = scenario.prepare(lab)
        start = lab.snapshot()
        status, requests = lab.run(event)
        assert status == 0, f"the clean run failed: see {lab.log}"
        lab.prepared[scenario.name] = Prepared(event, start, requests, lab.snapshot())
    return lab.prepared[scenario.name]


# -- comparing buckets ------------------------------------------------------------------------------------------------
def outputs(bucket: Bucket, source: str) -> dict[str, Any]:
    """Every key but the source's, with what must not differ from a clean run: a JSON record's fields less the
    volatile ones, other objects' bytes (a digest)."""
    return {key: comparable(key, obj.data) for key, obj in bucket.items() if key != source}


def comparable(key: str, data: bytes) -> Any:
    if key.endswith(".json"):
        try:
            record = json.loads(data)
            return {name: value for name, value in record.items() if name not in VOLATILE}
        except (ValueError, AttributeError):
            pass
    return f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}"


def differences(clean: dict[str, Any], got: dict[str, Any]) -> list[str]:
    return (
        [f"left {key}" for key in sorted(got.keys() - clean.keys())]
        + [f"missing {key}" for key in sorted(clean.keys() - got.keys())]
        + [f"changed {key}" for key in sorted(clean.keys() & got.keys()) if clean[key] != got[key]]
    )


# -- the tests --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_a_clean_run_leaves_the_result_and_nothing_else(lab: Lab, scenario: Scenario) -> None:
    run = prepared(lab, scenario)
    scenario.expect(run.clean)
    assert "SegmentHead" in run.requests and f"PUT heads/{scenario.key}/heads.json" in run.requests


@pytest.mark.timeout(600)  # every kill point of a scenario in one test: ~20 s idle, far more on a loaded machine
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_a_kill_at_any_request_boundary_then_a_redelivery_ends_as_the_clean_run(lab: Lab, scenario: Scenario) -> None:
    run = prepared(lab, scenario)
    clean = outputs(run.clean, scenario.key)
    boundaries = [Boundary(k, after) for k in range(1, len(run.requests) + 1) for after in (False, True)]
    failures, lines = [], []
    for boundary in boundaries:
        result = lab.crash_then_redeliver(run.event, boundary, run.start)
        problems = differences(clean, outputs(result.bucket, scenario.key))
        if result.killed is None:
            problems.append("the run ended before this boundary")
        elif result.killed != -signal.SIGKILL and boundary != boundaries[-1]:  # the last: the kill may come late
            problems.append(f"the instance ended by itself before the kill (exit {result.killed})")
        if result.redelivery != 0:
            problems.append(f"the redelivery raised (exit {result.redelivery})")
        line = f"{boundary} {run.requests[boundary.index - 1]}: " + ("; ".join(problems) or "ok")
        if problems:
            line += f" [redelivery made {len(result.redelivery_requests)} requests]"
            failures.append(line)
        lines.append(line)
    print(f"\n{scenario.name}: {len(boundaries) - len(failures)} of {len(boundaries)} boundaries end clean")
    print("\n".join(lines))
    assert not failures, (
        f"{len(failures)} of {len(boundaries)} boundaries do not end as the clean run; its requests: "
        + ", ".join(f"#{i} {r}" for i, r in enumerate(run.requests, 1))
        + f"; the instances' log: {lab.log}\n"
        + "\n".join(failures)
    )
