"""The tooling's loops over listed objects: one bad object never stops the rest (the real oss2 and FC SDKs against
the fakes). A poisoned record (JSON of the wrong types or shape, nested 10^5 deep, not UTF-8, megabytes long, a
body that breaks off mid-read) sits among good ones: `status` classifies every good source exactly and accounts
for the poisoned ones, `backfill` and `replay` hand over every good one, and what failed is reported with its
reason and in the exit status, never dropped silently.
"""

from __future__ import annotations

import json
import re
from typing import Any

from headseg.ops.backfill import Journal, Summary, hand_over, items_from
from headseg.cli import main
from headseg.function.events import parse_event
from headseg.ops.ratelimit import RateLimiter
from headseg.function.sidecar import ErrorRecord, HeadRecord, Sidecar, Source
from tests.conftest import BUCKET, EVENTS, Cloud
from tests.fakes._server import Fault, Response
from tests.tooling import Fc, cli, invoked, status_report

DEEP = b"[" * 100_000 + b"]" * 100_000


def sidecar(key: str, etag: str, **changes: Any) -> bytes:
    record = json.loads(Sidecar(Source(BUCKET, key, etag, 1), "r", None, "cloud", [HeadRecord(0, f"heads/{key}/head-0-{etag[:8].lower()}.png", 1, 2, 3, 4)], created_at="2026-01-01T00:00:00Z").to_json())
    record.update(changes)
    return json.dumps(record).encode()


def error(key: str, etag: str, retriable: bool, source: dict[str, Any] | None = None) -> bytes:
    record = json.loads(ErrorRecord(Source(BUCKET, key, etag, 1), "Throttling" if retriable else "InvalidImage.NotImage", "why", retriable).to_json())
    record["source"].update(source or {})
    return json.dumps(record).encode()


def seed(cloud: Cloud) -> tuple[dict[str, list[str]], list[str]]:
    """Good sources in every class, and sources whose records are poisoned; (good keys by class, poisoned keys)."""
    put = lambda key, data: cloud.oss.put(BUCKET, key, data)  # noqa: E731
    good: dict[str, list[str]] = {"done": [], "pending": [], "stale": [], "failed": [], "retriable": []}
    for name in good:
        for i in range(3):
            key = f"incoming/{name}-{i}.jpg"
            etag = put(key, f"{name} {i}".encode())
            good[name].append(key)
            if name == "done":
                put(f"heads/{key}/heads.json", sidecar(key, etag))
            elif name == "stale":
                put(f"heads/{key}/heads.json", sidecar(key, "0" * 32))
            elif name in ("failed", "retriable"):
                put(f"heads/{key}/error.json", error(key, etag, retriable=name == "retriable"))
    poisons = {
        "types": ("heads.json", lambda key, etag: sidecar(key, etag, source={"bucket": BUCKET, "key": key, "etag": [etag], "size": 1})),
        "heads": ("heads.json", lambda key, etag: sidecar(key, etag, heads=[{"index": 0, "key": 7, "x": 1, "y": 1, "width": 1, "height": 1}], created_at=5)),
        "shape": ("heads.json", lambda key, etag: json.dumps({"schema_version": 1, "source": [key], "heads": "x"}).encode()),
        "deep": ("heads.json", lambda key, etag: DEEP),
        "utf8": ("error.json", lambda key, etag: b'\xff\xfe{"schema_version": 1, "\xc3\x28": "\xa0\xa1"}'),
        "huge": ("error.json", lambda key, etag: b'{"schema_version": 1, "pad": "' + b"A" * (6 << 20) + b'"}'),
        "code": ("error.json", lambda key, etag: error(key, etag, retriable=False).replace(b'"InvalidImage.NotImage"', b'["not", "a", "code"]')),
        "broken": ("error.json", lambda key, etag: error(key, etag, retriable=True)),
    }
    poisoned = []
    for name, (record, content) in poisons.items():
        key = f"incoming/poisoned-{name}.jpg"
        etag = put(key, f"poisoned {name}".encode())
        put(f"heads/{key}/{record}", content(key, etag))
        poisoned.append(key)
    # the last one's record breaks off mid-body, every time it is read: what the SDK raises then is nobody's guess
    truncated = Response(200, b'{"schema_ver', {"Content-Length": "4000", "Connection": "close", "Content-Type": "application/json"})
    cloud.oss.inject(Fault("status", cloud.oss.match(method="GET", key="heads/incoming/poisoned-broken.jpg/error.json"), 1000, truncated))
    return good, poisoned


def test_status_classifies_every_good_source_and_accounts_for_each_poisoned_one(ops, capsys):
    good, poisoned = seed(ops)

    code = main(["status", "--bucket", BUCKET, "--prefix", "incoming/", "--oss-endpoint", ops.oss.url, "--json", "--quiet"])

    report = status_report(capsys.readouterr().out)
    for name in ("pending", "stale", "failed", "retriable"):  # the good ones exactly (a poisoned record may read as absent)
        assert [key for key in report[name] if key not in poisoned] == sorted(good[name]), name
    listed = {key for name in ("pending", "stale", "failed", "retriable") for key in report[name]} | set(report["errors"])
    done_poisoned = set(poisoned) - listed  # done sources are counted, not listed
    assert report["counts"]["done"] == len(good["done"]) + len(done_poisoned)
    assert sum(report["counts"][name] for name in ("done", "pending", "stale", "failed", "retriable", "errors")) == 15 + len(poisoned)
    assert "incoming/poisoned-broken.jpg" in report["errors"]  # a read that breaks off is an error, never a verdict
    assert all(reason and "\n" not in reason for reason in report["errors"].values())
    assert code == 1  # some source could not be classified


def test_status_table_and_page_name_what_could_not_be_classified(ops, capsys, tmp_path):
    seed(ops)
    page = tmp_path / "status.html"

    code = main(["status", "--bucket", BUCKET, "--prefix", "incoming/", "--oss-endpoint", ops.oss.url, "--html", str(page), "--quiet"])

    lines = capsys.readouterr().out.splitlines()
    [row] = [line.split() for line in lines if line.split()[:1] == ["errors"]]
    assert code == 1 and int(row[1]) >= 1
    assert any(line.startswith("    incoming/poisoned-broken.jpg: ") for line in lines)
    text = page.read_text(encoding="utf-8")
    assert f"<tr><th>errors</th><td class=n>{row[1]}</td>" in text
    assert '<section id="keys-errors">' in text and "<li>incoming/poisoned-broken.jpg <span>" in text


def test_backfill_hands_over_every_good_object_and_reports_the_poisoned(ops, fc: Fc, tmp_path, capsys):
    good, poisoned = seed(ops)

    code = cli(fc, ops, "backfill", "--prefix", "incoming/", "--qps", "500", "--journal", str(tmp_path / "j"))

    captured = capsys.readouterr()
    handed = sorted(r.key for r in invoked(fc))
    failed = {line.split(": ", 1)[0] for line in captured.err.splitlines() if line.startswith("incoming/")}
    assert [key for key in handed if key not in poisoned] == sorted(good["pending"] + good["stale"] + good["retriable"])
    counts = re.search(r"(\d+) listed: (\d+) done already, 0 handed over by an earlier run, 0 not inputs; (\d+) queued", captured.out)
    assert counts is not None, captured.out
    listed, done, queued = map(int, counts.groups())
    assert listed == 15 + len(poisoned) and queued == len(handed) and listed == done + queued + len(failed)  # none lost
    assert "incoming/poisoned-broken.jpg" in failed and not set(handed) & failed
    assert code == 1 and f"{len(failed)} failed" in captured.out


def test_replay_hands_over_every_good_retriable_failure_past_poisoned_records(ops, fc: Fc, tmp_path, capsys):
    good, poisoned = seed(ops)
    junk = "incoming/poisoned-junk.jpg"
    etag = ops.upload(junk, b"junk")
    ops.oss.put(BUCKET, f"heads/{junk}/error.json", error(junk, etag, retriable=True, source={"key": ["not", "a", "key"], "etag": 5}))

    code = cli(fc, ops, "replay", "--prefix", "incoming/")

    captured = capsys.readouterr()
    assert sorted(r.key for r in invoked(fc)) == sorted(good["retriable"])
    failed = {line.split(": ", 1)[0] for line in captured.err.splitlines() if line.startswith("incoming/")}
    assert {"incoming/poisoned-broken.jpg", junk} <= failed
    assert code == 1


def test_replay_of_an_event_file_goes_past_lines_it_cannot_read(ops, fc: Fc, tmp_path):
    event = {"events": [json.loads((EVENTS / "put.json").read_text())["events"][0]]}
    other = json.loads(json.dumps(event))
    other["events"][0]["oss"]["object"]["key"] = "incoming/after-the-junk.jpg"
    dump = tmp_path / "failures.jsonl"
    dump.write_bytes(b"\n".join([json.dumps(event).encode(), DEEP, b"\xff\xfe not utf-8 \xc3\x28", b'{"requestPayload": "' + b"[" * 50_000 + b'"}',
                                 json.dumps({"events": [{"eventName": "ObjectCreated:PutObject", "oss": 5}]}).encode(), json.dumps(other).encode()]))

    assert cli(fc, ops, "replay", "--events", str(dump)) == 0  # lines holding no OSS event are skipped, as before

    assert [json.loads(inv.payload) for inv in fc.fake.invocations] == [event, other]


def test_replay_hands_an_object_version_over_once_however_often_the_event_file_holds_it(ops, fc: Fc, tmp_path, capsys):
    events = [{"events": [json.loads((EVENTS / "put.json").read_text())["events"][0]]} for _ in range(3)]
    events[1]["events"][0]["oss"]["object"]["eTag"] = "0123456789ABCDEF0123456789ABCDEF"  # another version: handed over too
    dump = tmp_path / "failures.jsonl"
    dump.write_bytes(b"\n".join(json.dumps(e).encode() for e in [*events, events[0], events[1]]))

    assert cli(fc, ops, "replay", "--events", str(dump)) == 0

    assert [json.loads(inv.payload) for inv in fc.fake.invocations] == events[:2]
    assert "3 repeated in the input (handed over once)" in capsys.readouterr().out


def test_a_journal_cut_off_mid_line_resumes_the_rest(ops, fc: Fc, tmp_path):
    etags = {f"incoming/j/{i}.jpg": ops.upload(f"incoming/j/{i}.jpg", f"j{i}".encode()) for i in range(3)}
    journal = tmp_path / "j"
    journal.write_bytes(json.dumps({"key": "incoming/j/0.jpg", "etag": etags["incoming/j/0.jpg"], "handle": "h"}).encode() + b'\n{"key": "incoming/j/1.jpg", "et')

    assert cli(fc, ops, "backfill", "--prefix", "incoming/j/", "--journal", str(journal)) == 0

    assert sorted(r.key for r in invoked(fc)) == ["incoming/j/1.jpg", "incoming/j/2.jpg"]


class Flaky:
    """An invoker that breaks unexpectedly (not as a headseg error) on one object."""

    def __init__(self, bad: str) -> None:
        self.bad = bad

    def invoke(self, event: dict[str, Any]) -> str:
        [record] = parse_event(event)
        if record.key == self.bad:
            raise RuntimeError("the SDK fell over")
        return "request-id"


def test_a_hand_over_that_raises_unexpectedly_is_counted_failed_and_the_rest_go_on(tmp_path):
    from headseg.function.storage import ObjectInfo

    infos = [ObjectInfo(f"incoming/{i}.jpg", 1, f"{i:032X}") for i in range(6)]
    summary = Summary()

    hand_over(items_from(infos, BUCKET), Flaky("incoming/3.jpg"), RateLimiter(1000), Journal(tmp_path / "j"), summary, concurrency=2)

    assert summary.handed_over == 5 and [key for key, _ in summary.failures.first] == ["incoming/3.jpg"]
    assert "RuntimeError" in summary.failures.first[0][1] and "the SDK fell over" in summary.failures.first[0][1]
    assert len(Journal(tmp_path / "j").seen) == 5
