"""Backfill and replay: the real oss2, alibabacloud_fc20230330 (FC 3.0) and fc2 (FC 2.0) SDKs against fake OSS
and fake FC servers."""

from __future__ import annotations

import json
import time
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from headseg.ops.backfill import Journal, Summary, hand_over, items_from, pending
from headseg.cli import main
from headseg.function.errors import AccessDenied, PermanentError, RetriableError
from headseg.function.events import parse_event
from headseg.ops.invoker import Fc3Invoker
from headseg.ops.ratelimit import RateLimiter
from headseg.ops.standing import classify
from headseg.function.layout import Layout
from headseg.function.retry import RetryPolicy
from headseg.function.sidecar import ErrorRecord, HeadRecord, Sidecar, Source
from headseg.function.storage.oss import OssStorage
from tests.conftest import ACCESS_KEY_ID, BUCKET, EVENTS, Cloud
from tests.tooling import CREDENTIALS, cli, invoked
from tests.fakes._server import Response

QUICK = RetryPolicy(max_attempts=3, base=0.01, cap=0.02)  # retries without the waits



def write_sidecar(cloud: Cloud, key: str, etag: str) -> None:
    layout = Layout("heads/", key)
    sidecar = Sidecar(Source(BUCKET, key, etag, 1), "r", None, "cloud", [HeadRecord(0, layout.cutout(0, etag), 1, 1, 1, 1)])
    cloud.oss.put(BUCKET, layout.sidecar, sidecar.to_json())


def test_backfill_pages_through_every_object_and_skips_what_is_done(ops, fc, tmp_path, capsys):
    etags = {f"incoming/old/{i:04d}.jpg": ops.upload(f"incoming/old/{i:04d}.jpg", f"photo {i}".encode()) for i in range(1050)}
    keys = sorted(etags)
    for key in keys[:50]:  # done for their current eTag
        write_sidecar(ops, key, etags[key])
    for key in keys[50:60]:  # done for an older upload: to do again
        write_sidecar(ops, key, "0" * 32)
    for key in keys[60:65]:  # failed permanently for this eTag: not again
        record = ErrorRecord(Source(BUCKET, key, etags[key], 1), "InvalidImage.Corrupt", "corrupt", False)
        ops.oss.put(BUCKET, Layout("heads/", key).error, record.to_json())

    status = cli(fc, ops, "backfill", "--prefix", "incoming/old/", "--qps", "500", "--concurrency", "8", "--journal", str(tmp_path / "j"))

    assert status == 0
    records = invoked(fc)
    assert sorted(r.key for r in records) == keys[50:60] + keys[65:]  # each exactly once
    assert all(r.etag == etags[r.key] and r.bucket == BUCKET for r in records)
    assert all(inv.invocation_type == "Async" and inv.function == "headseg" for inv in fc.fake.invocations)
    listings = ops.oss.logged(lambda r: r.method == "GET" and r.param("list-type") == "2" and r.param("prefix") == "incoming/old/")
    assert len(listings) == 2  # 1 050 objects: two pages of at most 1 000
    assert "1050 listed: 55 done already, 0 handed over by an earlier run, 0 not inputs; 995 queued (" in capsys.readouterr().out


def test_backfill_over_the_whole_bucket_hands_over_only_what_the_function_processes(ops, fc, tmp_path, capsys):
    """--prefix defaults to "": objects outside INPUT_PREFIX (which the function would only skip), folder markers,
    outputs and scratch copies are not inputs; one rule (`inputs.is_input`) decides for both."""
    inputs = {f"incoming/b/{i}.jpg": ops.upload(f"incoming/b/{i}.jpg", b"x") for i in range(3)}
    for key in ("elsewhere/a.jpg", "incoming-not/a.jpg", "incoming/b/folder/", "heads/incoming/x.jpg/heads.json", "heads/.scratch/incoming/x.jpg/0badc0de.jpg"):
        ops.upload(key, b"x")
    assert cli(fc, ops, "backfill", "--journal", str(tmp_path / "j")) == 0
    assert sorted(r.key for r in invoked(fc)) == sorted(inputs)
    assert "8 listed: 0 done already, 0 handed over by an earlier run, 5 not inputs; 3 queued" in capsys.readouterr().out


def test_dry_run_hands_over_nothing(ops, fc, capsys):
    for i in range(5):
        ops.upload(f"incoming/d/{i}.jpg", b"x")
    assert cli(fc, ops, "backfill", "--prefix", "incoming/d/", "--dry-run") == 0
    assert fc.fake.invocations == [] and "5 listed: 0 done already, 0 handed over by an earlier run, 0 not inputs; 5 would be queued, 0 failed" in capsys.readouterr().out


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


def test_an_interrupted_backfill_resumes_without_queueing_twice(ops, fc, tmp_path):
    for i in range(120):
        ops.upload(f"incoming/r/{i:03d}.jpg", b"x")
    storage = OssStorage(BUCKET, endpoint=ops.oss.url, credentials=CREDENTIALS, region="cn-shanghai")
    invoker = fc.invoker()
    from headseg.function.config import Config

    config = Config(input_prefix="incoming/", output_prefix="heads/")
    stop = threading.Event()
    fc.fake.on_invoke = lambda inv: len(fc.fake.invocations) >= 40 and stop.set()  # Ctrl-C after 40

    first = Summary()
    hand_over(items_from(pending(classify(storage, "incoming/r/", config), first), BUCKET), invoker, RateLimiter(1000), Journal(tmp_path / "j"), first, 4, stop)
    assert first.interrupted and 40 <= len(fc.fake.invocations) < 120

    fc.fake.on_invoke = None
    second = Summary()
    hand_over(items_from(pending(classify(storage, "incoming/r/", config), second), BUCKET), invoker, RateLimiter(1000), Journal(tmp_path / "j"), second, 4)
    keys = [r.key for r in invoked(fc)]
    assert len(keys) == len(set(keys)) == 120  # every object once, across the two runs
    assert second.in_journal == first.handed_over and not second.interrupted


def test_throttled_invocations_are_retried(ops, fc, tmp_path):
    ops.upload("incoming/t/a.jpg", b"x")
    fc.fake.throttle(times=2)
    assert cli(fc, ops, "backfill", "--prefix", "incoming/t/", "--journal", str(tmp_path / "j")) == 0
    assert [r.key for r in invoked(fc)] == ["incoming/t/a.jpg"]
    assert len(fc.fake.logged()) == 3


def test_backfill_through_the_deployed_function_then_nothing_is_left(ops, fc, tmp_path, capsys):
    for i in range(4):
        ops.upload_portrait(f"incoming/e2e/{i}.jpg", [(40, 50, 60, 80)])
    fc.fake.on_invoke = lambda inv: ops.function.handler(inv.payload, None)  # "FC" runs the real handler

    assert cli(fc, ops, "backfill", "--prefix", "incoming/e2e/", "--journal", str(tmp_path / "j1")) == 0
    assert [len(ops.read_json(f"heads/incoming/e2e/{i}.jpg/heads.json")["heads"]) for i in range(4)] == [1, 1, 1, 1]
    fc.fake.invocations.clear()
    assert cli(fc, ops, "backfill", "--prefix", "incoming/e2e/", "--journal", str(tmp_path / "j2")) == 0
    assert fc.fake.invocations == [] and "4 done already" in capsys.readouterr().out


def test_backfill_local_processes_in_this_process(ops, fc, tmp_path, capsys):
    ops.upload_portrait("incoming/l/a.jpg", [(40, 50, 60, 80)])
    assert cli(fc, ops, "backfill", "--prefix", "incoming/l/", "--local", "--journal", str(tmp_path / "j")) == 0
    assert fc.fake.invocations == [] and ops.read_json("heads/incoming/l/a.jpg/heads.json")["heads"]
    assert "1 processed" in capsys.readouterr().out


def test_replay_hands_over_retriable_failures_only(ops, fc):
    ops.imageseg.throttle(times=1000)
    transient = ops.upload_portrait("incoming/f/throttled.jpg", [(40, 50, 60, 80)])
    with pytest.raises(RetriableError):
        ops.invoke_key("incoming/f/throttled.jpg", transient, timeout=3)
    ops.imageseg.clear_faults()
    broken = ops.upload("incoming/f/broken.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 30)
    ops.invoke_key("incoming/f/broken.jpg", broken)
    fc.fake.on_invoke = lambda inv: ops.function.handler(inv.payload, None)

    assert cli(fc, ops, "replay", "--prefix", "incoming/f/") == 0

    assert [r.key for r in invoked(fc)] == ["incoming/f/throttled.jpg"]
    assert ops.read_json("heads/incoming/f/throttled.jpg/heads.json")["source"]["etag"] == transient
    assert ops.read("heads/incoming/f/throttled.jpg/error.json") is None  # cleared by the success
    assert ops.read_json("heads/incoming/f/broken.jpg/error.json")["retriable"] is False


def test_replay_passes_over_a_retriable_record_that_a_success_of_its_version_outlived(ops, fc):
    """A duplicate that failed after the other succeeded leaves a retriable record beside the sidecar: replay
    does not hand it over forever (the next delivery's tidying removes it)."""
    etag = ops.upload_portrait("incoming/o/a.jpg", [(40, 50, 60, 80)])
    ops.invoke_key("incoming/o/a.jpg", etag)
    source = ops.read_json("heads/incoming/o/a.jpg/heads.json")["source"]
    late = ErrorRecord(Source(**source), "BudgetExhausted", "gave up", True)
    ops.upload("heads/incoming/o/a.jpg/error.json", late.to_json(), "application/json")

    assert cli(fc, ops, "replay", "--prefix", "incoming/o/") == 0
    assert invoked(fc) == []


def test_replay_of_events_from_the_on_failure_destination(ops, fc, tmp_path):
    event = {"events": [json.loads((EVENTS / "put.json").read_text())["events"][0]]}
    failed = json.loads(json.dumps(event))
    failed["events"][0]["oss"]["object"]["key"] = "incoming/failed-four-times.jpg"
    destination_record = {
        "timestamp": 1795000000000,
        "requestContext": {"requestId": "abc", "functionArn": "acs:fc:cn-shanghai:1:functions/headseg", "condition": "RetriesExhausted", "approximateInvokeCount": 4},
        "requestPayload": json.dumps(failed),
        "responseContext": {"statusCode": 200, "functionError": "UnhandledInvocationError"},
        "responsePayload": "{}",
    }
    dump = tmp_path / "failures.jsonl"
    dump.write_text("\n".join([json.dumps(event), json.dumps(destination_record), "not json at all", ""]))

    assert cli(fc, ops, "replay", "--events", str(dump)) == 0

    assert [json.loads(inv.payload) for inv in fc.fake.invocations] == [event, failed]


# -- the API: FC 3.0 by default, FC 2.0 on request ---------------------------------------------------------------------
def test_backfill_queues_through_the_fc3_api_by_default(ops, fake_fc3, tmp_path, capsys):
    """The function s.yaml deploys is an FC 3.0 function: no --api, no --service, and the FC 2.0 route is never used
    (the fake FC 3.0 fails the test on it)."""
    etags = {f"incoming/v3/{i}.jpg": ops.upload(f"incoming/v3/{i}.jpg", b"x") for i in range(6)}
    fake_fc3.throttle(times=2)
    target = ["--bucket", BUCKET, "--oss-endpoint", ops.oss.url, "--fc-endpoint", fake_fc3.url, "--quiet"]

    assert main(["backfill", *target, "--prefix", "incoming/v3/", "--qps", "100", "--journal", str(tmp_path / "j")]) == 0

    records = [record for inv in fake_fc3.invocations for record in parse_event(inv.payload)]
    assert sorted((r.key, r.etag) for r in records) == sorted(etags.items())  # each exactly once
    assert all((inv.function, inv.invocation_type, inv.qualifier) == ("headseg", "Async", "") for inv in fake_fc3.invocations)
    entries = fake_fc3.logged()
    assert [e.status for e in entries].count(429) == 2 and [e.status for e in entries].count(202) == 6
    assert {e.request.path for e in entries} == {"/2023-03-30/functions/headseg/invocations"}
    assert all(e.request.header("authorization").startswith("ACS3-HMAC-SHA256 Credential=" + ACCESS_KEY_ID) for e in entries)
    assert "6 queued (" in capsys.readouterr().out


def test_the_qualifier_reaches_the_function(ops, fc, tmp_path):
    ops.upload("incoming/q/a.jpg", b"x")
    assert cli(fc, ops, "backfill", "--prefix", "incoming/q/", "--qualifier", "LATEST", "--journal", str(tmp_path / "j")) == 0
    assert [inv.qualifier for inv in fc.fake.invocations] == ["LATEST"]


def test_api_fc2_needs_a_service_and_fc3_takes_none(ops, fake_fc, fake_fc3, tmp_path):
    target = ["--bucket", BUCKET, "--oss-endpoint", ops.oss.url, "--journal", str(tmp_path / "j")]
    with pytest.raises(SystemExit, match=r"^headseg: --api fc2 needs --service \(FC_SERVICE\)"):
        main(["backfill", *target, "--api", "fc2", "--fc-endpoint", fake_fc.url])
    with pytest.raises(SystemExit, match=r"^headseg: --service \(FC_SERVICE\) 'default' is an FC 2.0 service: add --api fc2"):
        main(["backfill", *target, "--service", "default", "--fc-endpoint", fake_fc3.url])
    ops.monkeypatch.setenv("FC_API", "fc4")
    with pytest.raises(SystemExit, match=r"--api \(FC_API\) must be one of fc3, fc2, not 'fc4'"):
        main(["backfill", *target, "--fc-endpoint", fake_fc3.url])
    assert fake_fc.logged() == [] and fake_fc3.logged() == []


def test_fc_api_and_fc_service_in_the_environment_select_fc2(ops, fake_fc, fake_fc3, tmp_path):
    ops.upload("incoming/env/a.jpg", b"x")
    ops.monkeypatch.setenv("FC_API", "FC2")
    ops.monkeypatch.setenv("FC_SERVICE", "default")
    ops.monkeypatch.setenv("FC_ENDPOINT", fake_fc.url)
    target = ["--bucket", BUCKET, "--oss-endpoint", ops.oss.url, "--quiet", "--journal", str(tmp_path / "j")]
    assert main(["backfill", *target, "--prefix", "incoming/env/"]) == 0
    assert [(inv.service, inv.function) for inv in fake_fc.invocations] == [("default", "headseg")]
    assert fake_fc3.logged() == []


# -- error replies, classified into headseg's families by each SDK's own exceptions -------------------------------------
EVENT = {"events": []}
RETRIED, DENIED, PERMANENT = "retried", AccessDenied, PermanentError


@pytest.mark.parametrize(
    "status, code, outcome",
    [
        (429, "ResourceThrottled", RETRIED),
        (400, "Throttling.User", RETRIED),  # throttled by its code, whatever the status
        (503, "ServiceUnavailable", RETRIED),
        (403, "AccessDenied", DENIED),
        (404, "FunctionNotFound", PERMANENT),
        (400, "EntityTooLarge", PERMANENT),
        # a page that is not FC's (a proxy's, a gateway's), its body not JSON: fc2 raises requests' JSONDecodeError,
        # tea-openapi a RuntimeError, and neither tells the status, so it is retried whatever the status
        (500, None, RETRIED),
        (502, None, RETRIED),
        (401, None, RETRIED),
        (418, None, RETRIED),
    ],
)
def test_error_replies_are_classified(fc, status, code, outcome):
    if code is None:
        body, content_type = b"<html><body>oops</body></html>", "text/html"
    else:
        fields = {"Code": code, "Message": "m", "RequestId": "r"} if fc.api == "fc3" else {"ErrorCode": code, "ErrorMessage": "m"}
        body, content_type = json.dumps(fields).encode(), "application/json"
    fc.fake.script(fc.is_invocation, [Response(status, body, {"Content-Type": content_type, "x-fc-request-id": "r"})])
    invoker = fc.invoker(QUICK)

    if outcome == RETRIED:
        assert invoker.invoke(EVENT)
        assert [entry.status for entry in fc.fake.logged()] == [status, 202] and len(fc.fake.invocations) == 1
        return
    with pytest.raises(outcome) as error:
        invoker.invoke(EVENT)
    assert type(error.value) is outcome and error.value.code == (code or f"HTTP{status}")
    assert len(fc.fake.logged()) == 1 and fc.fake.invocations == []  # not retried


def test_a_reply_that_is_not_fcs_keeps_its_own_code_when_the_attempts_run_out(fc):
    page = Response(403, b"<html><body>blocked by a proxy</body></html>", {"Content-Type": "text/html"})
    fc.fake.script(fc.is_invocation, [page] * QUICK.max_attempts)
    with pytest.raises(RetriableError) as error:
        fc.invoker(QUICK).invoke(EVENT)
    assert type(error.value) is RetriableError and error.value.code == "UnreadableReply"  # not a ConnectionError
    assert [entry.status for entry in fc.fake.logged()] == [403] * QUICK.max_attempts and fc.fake.invocations == []


def test_no_answer_is_retriable(fc):
    """Within the hand-over's own time (fc2 alone retries a refused connection for ~30 s first: the invoker does
    not wait for that past its budget)."""
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(RetriableError) as error:
        fc.invoker(QUICK, endpoint=f"http://127.0.0.1:{port}", seconds=2).invoke(EVENT)
    assert error.value.code in ("ConnectionError", "BudgetExhausted") and time.monotonic() - started < 30


def test_a_dropped_connection_is_retried(fc):
    from tests.fakes._server import Fault

    fc.fake.inject(Fault("drop", fc.is_invocation, times=1))
    assert fc.invoker(QUICK).invoke(EVENT)
    assert [entry.status for entry in fc.fake.logged()] == [0, 202] and len(fc.fake.invocations) == 1


def test_an_fc3_endpoint_must_be_http_or_https_host_and_port():
    from headseg.function.errors import ConfigError

    with pytest.raises(ConfigError, match="not http"):
        Fc3Invoker("ftp://example.com", CREDENTIALS, "headseg")
    with pytest.raises(ConfigError, match="not http"):
        Fc3Invoker("https://example.com/2023-03-30", CREDENTIALS, "headseg")
