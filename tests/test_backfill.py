"""Backfill and replay: the real oss2 and fc2 SDKs against fake OSS and fake FC servers."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from headseg.backfill import Journal, Summary, hand_over, items_from, pending
from headseg.cli import main
from headseg.credentials import Credentials
from headseg.errors import RetriableError
from headseg.events import ObjectCreated, parse_event
from headseg.invoker import FcInvoker
from headseg.ratelimit import RateLimiter
from headseg.layout import Layout
from headseg.sidecar import ErrorRecord, HeadRecord, Sidecar, Source
from headseg.storage.oss import OssStorage
from tests.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, BUCKET, SECURITY_TOKEN, Cloud
from tests.fakes.fc import FakeFc  # noqa: F401 (the fixture's type)


@pytest.fixture
def ops(cloud: Cloud, fake_fc: FakeFc, monkeypatch, tmp_path):
    """The tooling's environment: keys in the environment, the function's prefixes, a journal path."""
    cloud.configure(
        ALIBABA_CLOUD_ACCESS_KEY_ID=ACCESS_KEY_ID,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=ACCESS_KEY_SECRET,
        ALIBABA_CLOUD_SECURITY_TOKEN=SECURITY_TOKEN,
    )
    return cloud


def cli(fake_fc: FakeFc, cloud: Cloud, *args: str) -> int:
    target = ["--bucket", BUCKET, "--oss-endpoint", cloud.oss.url, "--fc-endpoint", fake_fc.url, "--quiet"]
    return main([args[0], *target, *args[1:]])


def write_sidecar(cloud: Cloud, key: str, etag: str) -> None:
    layout = Layout("heads/", key)
    sidecar = Sidecar(Source(BUCKET, key, etag, 1), "r", None, "cloud", [HeadRecord(0, layout.cutout(0, etag), 1, 1, 1, 1)])
    cloud.oss.put(BUCKET, layout.sidecar, sidecar.to_json())


def invoked(fake_fc: FakeFc) -> list[ObjectCreated]:
    return [record for inv in fake_fc.invocations for record in parse_event(inv.payload)]


def test_backfill_pages_through_every_object_and_skips_what_is_done(ops, fake_fc, tmp_path, capsys):
    etags = {f"incoming/old/{i:04d}.jpg": ops.upload(f"incoming/old/{i:04d}.jpg", f"photo {i}".encode()) for i in range(1050)}
    keys = sorted(etags)
    for key in keys[:50]:  # done for their current eTag
        write_sidecar(ops, key, etags[key])
    for key in keys[50:60]:  # done for an older upload: to do again
        write_sidecar(ops, key, "0" * 32)
    for key in keys[60:65]:  # failed permanently for this eTag: not again
        record = ErrorRecord(Source(BUCKET, key, etags[key], 1), "InvalidImage.Corrupt", "corrupt", False)
        ops.oss.put(BUCKET, Layout("heads/", key).error, record.to_json())

    status = cli(fake_fc, ops, "backfill", "--prefix", "incoming/old/", "--qps", "500", "--concurrency", "8", "--journal", str(tmp_path / "j"))

    assert status == 0
    records = invoked(fake_fc)
    assert sorted(r.key for r in records) == keys[50:60] + keys[65:]  # each exactly once
    assert all(r.etag == etags[r.key] and r.bucket == BUCKET for r in records)
    assert all(inv.invocation_type == "Async" and inv.function == "headseg" for inv in fake_fc.invocations)
    listings = ops.oss.logged(lambda r: r.method == "GET" and r.param("list-type") == "2" and r.param("prefix") == "incoming/old/")
    assert len(listings) == 2  # 1 050 objects: two pages of at most 1 000
    assert "1050 listed: 55 done already, 0 handed over by an earlier run, 0 not inputs; 995 queued (" in capsys.readouterr().out


def test_dry_run_hands_over_nothing(ops, fake_fc, capsys):
    for i in range(5):
        ops.upload(f"incoming/d/{i}.jpg", b"x")
    assert cli(fake_fc, ops, "backfill", "--prefix", "incoming/d/", "--dry-run") == 0
    assert fake_fc.invocations == [] and "5 listed: 0 done already, 0 handed over by an earlier run, 0 not inputs; 5 would be queued, 0 failed" in capsys.readouterr().out


def test_the_rate_limit_is_obeyed_counted_not_timed():
    clock = [0.0]
    stamps: list[float] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:  # a thread "waits" by being handed its slot's time
        with lock:
            stamps.append(clock[0] + seconds)

    limiter = RateLimiter(2.0, clock=lambda: clock[0], sleep=sleep)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: limiter.acquire(), range(41)))
    slots = sorted([0.0] + stamps)  # the first acquisition needs no wait
    assert len(slots) == 41 and slots[-1] == pytest.approx(20.0)
    assert all(b - a == pytest.approx(0.5) for a, b in zip(slots, slots[1:]))  # never two within 0.5 s


def test_an_interrupted_backfill_resumes_without_queueing_twice(ops, fake_fc, tmp_path):
    for i in range(120):
        ops.upload(f"incoming/r/{i:03d}.jpg", b"x")
    storage = OssStorage(BUCKET, endpoint=ops.oss.url, credentials=Credentials(ACCESS_KEY_ID, ACCESS_KEY_SECRET, SECURITY_TOKEN), region="cn-shanghai")
    invoker = FcInvoker(fake_fc.url, Credentials(ACCESS_KEY_ID, ACCESS_KEY_SECRET, SECURITY_TOKEN), "default", "headseg")
    from headseg.config import Config

    config = Config(input_prefix="incoming/", output_prefix="heads/")
    stop = threading.Event()
    fake_fc.on_invoke = lambda inv: len(fake_fc.invocations) >= 40 and stop.set()  # Ctrl-C after 40

    first = Summary()
    hand_over(items_from(pending(storage, "incoming/r/", config, first), BUCKET), invoker, RateLimiter(1000), Journal(tmp_path / "j"), first, 4, stop)
    assert first.interrupted and 40 <= len(fake_fc.invocations) < 120

    fake_fc.on_invoke = None
    second = Summary()
    hand_over(items_from(pending(storage, "incoming/r/", config, second), BUCKET), invoker, RateLimiter(1000), Journal(tmp_path / "j"), second, 4)
    keys = [r.key for r in invoked(fake_fc)]
    assert len(keys) == len(set(keys)) == 120  # every object once, across the two runs
    assert second.in_journal == first.handed_over and not second.interrupted


def test_throttled_invocations_are_retried(ops, fake_fc, tmp_path):
    ops.upload("incoming/t/a.jpg", b"x")
    fake_fc.throttle(times=2)
    assert cli(fake_fc, ops, "backfill", "--prefix", "incoming/t/", "--journal", str(tmp_path / "j")) == 0
    assert [r.key for r in invoked(fake_fc)] == ["incoming/t/a.jpg"]
    assert len(fake_fc.logged()) == 3


def test_backfill_through_the_deployed_function_then_nothing_is_left(ops, fake_fc, tmp_path, capsys):
    import index

    for i in range(4):
        ops.upload_portrait(f"incoming/e2e/{i}.jpg", [(40, 50, 60, 80)])
    fake_fc.on_invoke = lambda inv: index.handler(inv.payload, None)  # "FC" runs the real handler

    assert cli(fake_fc, ops, "backfill", "--prefix", "incoming/e2e/", "--journal", str(tmp_path / "j1")) == 0
    assert [len(ops.read_json(f"heads/incoming/e2e/{i}.jpg/heads.json")["heads"]) for i in range(4)] == [1, 1, 1, 1]
    fake_fc.invocations.clear()
    assert cli(fake_fc, ops, "backfill", "--prefix", "incoming/e2e/", "--journal", str(tmp_path / "j2")) == 0
    assert fake_fc.invocations == [] and "4 done already" in capsys.readouterr().out


def test_backfill_local_processes_in_this_process(ops, fake_fc, tmp_path, capsys):
    ops.upload_portrait("incoming/l/a.jpg", [(40, 50, 60, 80)])
    assert cli(fake_fc, ops, "backfill", "--prefix", "incoming/l/", "--local", "--journal", str(tmp_path / "j")) == 0
    assert fake_fc.invocations == [] and ops.read_json("heads/incoming/l/a.jpg/heads.json")["heads"]
    assert "1 processed" in capsys.readouterr().out


def test_replay_hands_over_retriable_failures_only(ops, fake_fc):
    import index

    ops.imageseg.throttle(times=1000)
    transient = ops.upload_portrait("incoming/f/throttled.jpg", [(40, 50, 60, 80)])
    with pytest.raises(RetriableError):
        ops.invoke_key("incoming/f/throttled.jpg", transient, timeout=3)
    ops.imageseg.clear_faults()
    broken = ops.upload("incoming/f/broken.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 30)
    ops.invoke_key("incoming/f/broken.jpg", broken)
    fake_fc.on_invoke = lambda inv: index.handler(inv.payload, None)

    assert cli(fake_fc, ops, "replay", "--prefix", "incoming/f/") == 0

    assert [r.key for r in invoked(fake_fc)] == ["incoming/f/throttled.jpg"]
    assert ops.read_json("heads/incoming/f/throttled.jpg/heads.json")["source"]["etag"] == transient
    assert ops.read("heads/incoming/f/throttled.jpg/error.json") is None  # cleared by the success
    assert ops.read_json("heads/incoming/f/broken.jpg/error.json")["retriable"] is False


def test_replay_of_events_from_the_on_failure_destination(ops, fake_fc, tmp_path):
    event = {"events": [json.loads(Path("events/put.json").read_text())["events"][0]]}
    destination_record = {
        "timestamp": 1795000000000,
        "requestContext": {"requestId": "abc", "functionArn": "acs:fc:cn-shanghai:1:functions/headseg", "condition": "RetriesExhausted", "approximateInvokeCount": 4},
        "requestPayload": json.dumps(event),
        "responseContext": {"statusCode": 200, "functionError": "UnhandledInvocationError"},
        "responsePayload": "{}",
    }
    dump = tmp_path / "failures.jsonl"
    dump.write_text("\n".join([json.dumps(event), json.dumps(destination_record), "not json at all", ""]))

    assert cli(fake_fc, ops, "replay", "--events", str(dump)) == 0

    assert [json.loads(inv.payload) for inv in fake_fc.invocations] == [event, event]
