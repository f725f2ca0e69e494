"""`headseg status`: every source in exactly one class, within two listings and one read per existing record;
the real oss2 against the fake OSS, and a directory bucket."""

from __future__ import annotations

import html
import json
import math
import re
import time
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from headseg.cli import main
from headseg.function.sidecar import ErrorRecord, HeadRecord, Sidecar, Source
from headseg.ops.status import MEANINGS, SHOWN
from tests.conftest import BUCKET, Cloud
from tests.fakes.images import portrait
from tests.tooling import cli, invoked, status_report

CLASSES = {"done": 600, "pending": 170, "stale": 100, "failed": 80, "retriable": 50}  # 1 000 sources
ORPHANS = 20
FAILURES = {  # code -> (reason, how many) ...
    "InvalidImage.Resolution": [("the image is 20x20 px, below SegmentHead's 32x32", 40), ("the image is 10x8 px, below SegmentHead's 32x32", 10)],
    "InvalidImage.NotImage": [("not an image: the first bytes match no image format", 25)],
    "ObjectNotFound": [("the object is gone", 5)],
}


def sidecar(key: str, etag: str) -> bytes:
    folder = f"heads/{key}/"
    heads = [HeadRecord(index=0, key=f"{folder}head-0-{etag[:8].lower()}.png", x=1, y=2, width=30, height=40)]
    return Sidecar(Source(BUCKET, key, etag, 100), "req", None, "cloud", heads, created_at="2026-12-01T00:00:00Z").to_json()


def error(key: str, etag: str, code: str, reason: str, retriable: bool) -> bytes:
    return ErrorRecord(Source(BUCKET, key, etag, 100), code, reason, retriable).to_json()


def seed(cloud: Cloud) -> dict[str, list[str]]:
    """1 000 sources, each class present, 20 orphaned results and a scratch copy; the expected keys by class."""
    put = lambda key, data: cloud.oss.put(BUCKET, key, data)  # noqa: E731
    expected: dict[str, list[str]] = {name: [] for name in CLASSES}
    reasons = [(code, reason) for code, items in FAILURES.items() for reason, n in items for _ in range(n)]
    number = 0
    for name, count in CLASSES.items():
        for i in range(count):
            key = f"incoming/{name}/{number:04d}.jpg"
            number += 1
            etag = put(key, f"image {number}".encode())
            expected[name].append(key)
            if name == "done":
                put(f"heads/{key}/head-0-{etag[:8].lower()}.png", b"png")
                put(f"heads/{key}/heads.json", sidecar(key, etag))
            elif name == "pending" and i % 15 == 0:  # a run that died before its sidecar: cutouts alone
                put(f"heads/{key}/head-0-{etag[:8].lower()}.png", b"png")
            elif name == "stale":
                old = "0" * 32
                put(f"heads/{key}/heads.json", sidecar(key, old))
                if i % 4 == 0:  # and an error of an older version, permanent or not
                    put(f"heads/{key}/error.json", error(key, old, "InvalidImage.NotImage", "old", i % 8 == 0))
            elif name == "failed":
                code, reason = reasons[i]
                put(f"heads/{key}/error.json", error(key, etag, code, reason, retriable=False))
            elif name == "retriable":
                put(f"heads/{key}/error.json", error(key, etag, "Throttling", "SegmentHead throttled", retriable=True))
    for i in range(ORPHANS):
        put(f"heads/incoming/gone/{i}.jpg/heads.json", sidecar(f"incoming/gone/{i}.jpg", "1" * 32))
    put("heads/.scratch/incoming/done/0000.jpg/abcd-run.jpg", b"scratch")
    return expected


def test_status_accounts_for_every_object_within_two_listings_and_one_read_per_record(ops, capsys):
    expected = seed(ops)
    ops.oss.requests.clear()
    assert main(["status", "--bucket", BUCKET, "--prefix", "incoming/", "--oss-endpoint", ops.oss.url, "--json", "--quiet"]) == 0
    report = status_report(capsys.readouterr().out)
    assert report["counts"] == {**CLASSES, "orphans": ORPHANS, "errors": 0}
    for name in ("pending", "stale", "failed", "retriable"):
        assert report[name] == sorted(expected[name]), name
    assert report["orphans"] == sorted(f"incoming/gone/{i}.jpg" for i in range(ORPHANS))
    assert report["failed_by_code"] == {
        "InvalidImage.Resolution": {"count": 50, "reasons": [[FAILURES["InvalidImage.Resolution"][0][0], 40], [FAILURES["InvalidImage.Resolution"][1][0], 10]], "reasons_of": 50},
        "InvalidImage.NotImage": {"count": 25, "reasons": [[FAILURES["InvalidImage.NotImage"][0][0], 25]], "reasons_of": 25},
        "ObjectNotFound": {"count": 5, "reasons": [["the object is gone", 5]], "reasons_of": 5},
    }
    # the requests: each listing once (paginated), then one GET per record that exists, for sources that exist
    lists = [e.request for e in ops.oss.logged(lambda r: r.param("list-type") == "2")]
    by_prefix = {prefix: [r for r in lists if r.param("prefix") == prefix] for prefix in ("incoming/", "heads/incoming/")}
    assert len(lists) == sum(len(pages) for pages in by_prefix.values())
    results = [k for k in ops.oss.keys(BUCKET, "heads/incoming/")]
    assert len(by_prefix["incoming/"]) == 1 and len(by_prefix["heads/incoming/"]) == math.ceil(len(results) / 1000)
    records = [k for k in results if k.endswith((".json")) and not k.startswith("heads/incoming/gone/")]
    gets = [e.request for e in ops.oss.logged(lambda r: r.method == "GET" and r.param("list-type") is None)]
    assert sorted(unquote(r.path.split("/", 2)[-1]) for r in gets) == sorted([*records, "heads/.settled.json"])  # and the stamp
    assert report["records_read"] == len(records)


def test_status_over_the_whole_bucket_counts_only_what_the_function_processes(ops, capsys):
    """Objects the function would only skip (outside INPUT_PREFIX, folder markers) are not pending for ever."""
    for key in ("incoming/s/a.jpg", "elsewhere/a.jpg", "incoming-not/b.jpg", "incoming/s/folder/"):
        ops.upload(key, b"x")
    assert main(["status", "--bucket", BUCKET, "--oss-endpoint", ops.oss.url, "--json", "--quiet"]) == 0
    report = status_report(capsys.readouterr().out)
    assert report["pending"] == ["incoming/s/a.jpg"] and report["counts"]["pending"] == 1


def test_the_table_names_the_classes_and_the_commonest_reasons(ops, capsys):
    seed(ops)
    assert main(["status", "--bucket", BUCKET, "--prefix", "incoming/", "--oss-endpoint", ops.oss.url, "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"{BUCKET}/incoming/: 1000 sources, {600 + 100 + 25 + 80 + 50} result records read "
        "(results read the old way: `headseg migrate` makes it two listings)"
    )
    rows = {line.split()[0]: line.split()[1] for line in lines[1:] if line.startswith("  ") and not line.startswith("    ")}
    assert rows == {"done": "600", "pending": "170", "stale": "100", "failed": "80", "retriable": "50", "orphans": "20"}
    [resolution] = [line for line in lines if "InvalidImage.Resolution" in line]
    assert resolution.split()[1] == "50" and "below SegmentHead's 32x32 (40); the image is 10x8" in resolution
    assert any("headseg replay" in line for line in lines if line.lstrip().startswith("retriable"))


def test_a_result_the_function_wrote_counts_as_done(ops, capsys):
    etag = ops.upload_portrait("incoming/real.jpg", [(120, 60, 90, 110)])
    assert ops.invoke_key("incoming/real.jpg", etag)["outcomes"][0]["outcome"] == "done"
    ops.upload("incoming/new.jpg", b"not yet")
    assert main(["status", "--bucket", BUCKET, "--prefix", "incoming/", "--oss-endpoint", ops.oss.url, "--json", "--quiet"]) == 0
    report = status_report(capsys.readouterr().out)
    assert report["counts"] == {"done": 1, "pending": 1, "stale": 0, "failed": 0, "retriable": 0, "orphans": 0, "errors": 0}
    assert report["pending"] == ["incoming/new.jpg"]


def test_a_directory_bucket_works_too(tmp_path, capsys):
    root = tmp_path / "bucket"
    (root / "incoming").mkdir(parents=True)
    (root / "incoming" / "a.jpg").write_bytes(b"a")
    (root / "incoming" / "b.jpg").write_bytes(b"b")
    from headseg.local.directory import DirectoryStorage

    storage = DirectoryStorage(str(root), BUCKET)
    etag = storage.head("incoming/a.jpg").etag
    (root / "heads" / "incoming" / "a.jpg").mkdir(parents=True)
    (root / "heads" / "incoming" / "a.jpg" / "heads.json").write_bytes(sidecar("incoming/a.jpg", etag))
    assert main(["status", "--bucket-dir", str(root), "--json", "--quiet"]) == 0  # a folder needs no --bucket
    report = status_report(capsys.readouterr().out)
    assert report["counts"]["done"] == 1 and report["pending"] == ["incoming/b.jpg"]


def test_without_a_bucket_or_a_folder_status_says_which_to_give(capsys):
    assert main(["status", "--quiet"]) == 2
    assert capsys.readouterr().err == "headseg status: give --bucket (the OSS bucket), or --bucket-dir (a local folder standing in for one)\n"


def test_an_unreachable_bucket_is_one_clear_line(ops, capsys):
    code = main(["status", "--bucket", BUCKET, "--oss-endpoint", "http://127.0.0.1:9", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("headseg status: ") and "Traceback" not in err and len(err.strip().splitlines()) == 1




# -- every object the function has seen ends in a class ----------------------------------------------------------
JPEG = portrait(120, 90, [(40, 20, 30, 36)])
SEEN = {  # what a bucket receives under INPUT_PREFIX, and the class one invocation leaves it in
    "incoming/seen/empty.jpg": (b"", "failed"),
    "incoming/seen/notes.txt": (b"minutes of the meeting\n", "failed"),
    "incoming/seen/page.html": (b"<!DOCTYPE html><p>404</p>", "failed"),
    "incoming/seen/" + "k" * 990 + ".jpg": (JPEG, "failed"),  # no key can hold its outputs: no record either
    "incoming/seen/portrait.jpg": (JPEG, "done"),
}


def test_after_one_invocation_status_settles_every_object_and_backfill_hands_nothing_over(ops, fc, tmp_path, capsys):
    for key, (data, _) in SEEN.items():
        ops.invoke_key(key, ops.upload(key, data, "text/plain" if key.endswith(".txt") else "image/jpeg"))
    assert main(["status", "--bucket", BUCKET, "--prefix", "incoming/seen/", "--oss-endpoint", ops.oss.url, "--json", "--quiet"]) == 0
    report = status_report(capsys.readouterr().out)
    assert report["counts"] == {"done": 1, "pending": 0, "stale": 0, "failed": 4, "retriable": 0, "orphans": 0, "errors": 0}
    assert report["failed"] == sorted(key for key, (_, name) in SEEN.items() if name == "failed")
    assert {code: v["count"] for code, v in report["failed_by_code"].items()} == {"InvalidImage.NotImage": 3, "KeyTooLong": 1}

    assert cli(fc, ops, "backfill", "--prefix", "incoming/seen/", "--journal", str(tmp_path / "j")) == 0
    assert invoked(fc) == []
    assert "5 listed: 5 done already" in capsys.readouterr().out


NAMES = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=24),
    st.integers(960, 1000).map(lambda n: "k" * n),  # outputs no key can hold
)
IMAGES = [JPEG, portrait(64, 48, [], fmt="PNG"), portrait(300, 200, [(10, 10, 40, 50), (200, 20, 40, 50)], fmt="BMP")]
PAYLOADS = st.one_of(
    st.just(b""),
    st.text(max_size=200).map(str.encode),
    st.binary(max_size=300),
    st.sampled_from(IMAGES),
    st.sampled_from(IMAGES).flatmap(lambda data: st.integers(0, len(data)).map(lambda n: data[:n])),  # cut short
    st.tuples(st.sampled_from(IMAGES), st.binary(min_size=1, max_size=64)).map(lambda t: t[0][:12] + t[1]),  # magic, then noise
)
EXAMPLES = iter(range(10**6))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(objects=st.dictionaries(NAMES, PAYLOADS, min_size=1, max_size=3))
def test_whatever_is_uploaded_one_invocation_settles_it_for_status_and_backfill(ops, capsys, objects):
    """Any bytes under any key: after one invocation (no transient fault), status classes it done or failed and
    backfill finds nothing to hand over. A verdict on a version is recorded, or made from the key alone."""
    prefix = f"incoming/any{next(EXAMPLES)}/"
    for name, data in objects.items():
        key = prefix + name
        ops.invoke_key(key, ops.upload(key, data))
    assert main(["status", "--bucket", BUCKET, "--prefix", prefix, "--oss-endpoint", ops.oss.url, "--json", "--quiet"]) == 0
    report = status_report(capsys.readouterr().out)
    inputs = [prefix + name for name in objects if not name.endswith("/")]  # a folder marker is no input
    event(f"done {report['counts']['done']}, failed {report['counts']['failed']}")
    assert report["counts"]["done"] + report["counts"]["failed"] == len(inputs), report
    assert report["by"] == "records"
    stamped(ops, prefix)  # the marks the function wrote say the same
    assert main(["status", "--bucket", BUCKET, "--prefix", prefix, "--oss-endpoint", ops.oss.url, "--json", "--quiet"]) == 0
    by_marks = status_report(capsys.readouterr().out)
    assert by_marks["by"] == "marks" and same_classes(by_marks, report)
    assert main(["backfill", "--bucket", BUCKET, "--prefix", prefix, "--oss-endpoint", ops.oss.url, "--local", "--dry-run", "--quiet"]) == 0
    assert "; 0 would be queued, 0 failed" in capsys.readouterr().out


def stamped(cloud: Cloud, prefix: str) -> None:
    """Stamp `prefix` as `headseg migrate` would, without writing a mark: status then goes by the marks alone."""
    cloud.oss.put(BUCKET, "heads/.settled.json", json.dumps({"prefixes": [prefix]}).encode())


def same_classes(one: dict, other: dict) -> bool:
    """Two reports agree on every count, every key of every class, and the failures' codes."""
    codes = lambda report: {code: v["count"] for code, v in report["failed_by_code"].items()}  # noqa: E731
    names = ("pending", "stale", "failed", "retriable", "orphans", "errors")
    return one["counts"] == other["counts"] and all(one[n] == other[n] for n in names) and codes(one) == codes(other)


def test_migrated_results_are_classified_from_two_listings_as_the_records_say(ops, capsys):
    """Results written before marks: `migrate` reads them once; then status lists sources and marks, reads only
    a sample of each failure code's records for the reasons, and every class holds the same keys."""
    seed(ops)
    status = ["status", "--bucket", BUCKET, "--prefix", "incoming/", "--oss-endpoint", ops.oss.url, "--json", "--quiet"]
    assert main(status) == 0
    by_records = status_report(capsys.readouterr().out)
    assert main(["migrate", "--bucket", BUCKET, "--prefix", "incoming/", "--oss-endpoint", ops.oss.url, "--quiet"]) == 0
    assert capsys.readouterr().out.startswith("1000 sources: 875 marks written, 0 failed")  # the orphans' included
    ops.oss.requests.clear()

    assert main(status) == 0

    by_marks = status_report(capsys.readouterr().out)
    assert by_marks["by"] == "marks" and same_classes(by_marks, by_records)
    lists = [e.request for e in ops.oss.logged(lambda r: r.param("list-type") == "2")]
    marks = ops.oss.keys(BUCKET, "heads/.settled/incoming/")
    assert len(marks) == 600 + 100 + 80 + 50 + 20 + 25  # one a settled source, two for stale ones with old errors
    assert sorted(r.param("prefix") for r in lists) == ["heads/.settled/incoming/", "incoming/"]  # a page each
    reads = [e.request for e in ops.oss.logged(lambda r: r.method == "GET" and r.param("list-type") is None)]
    assert len(reads) == 1 + 10 + 10 + 5  # the stamp, and the sampled error records of the three codes
    assert by_marks["failed_by_code"]["InvalidImage.Resolution"]["reasons_of"] == 10
    assert by_marks["records_read"] == 25


def test_an_inventory_stands_in_for_both_listings_and_backfill_reads_it_too(ops, fc, capsys):
    seed(ops)
    assert main(["migrate", "--bucket", BUCKET, "--prefix", "incoming/", "--oss-endpoint", ops.oss.url, "--quiet"]) == 0
    capsys.readouterr()
    status = ["status", "--bucket", BUCKET, "--prefix", "incoming/", "--oss-endpoint", ops.oss.url, "--json", "--quiet"]
    assert main(status) == 0
    listed = status_report(capsys.readouterr().out)
    ops.oss.create_bucket("inventories")
    inventory = ops.oss.put_inventory(BUCKET, "inventories")
    ops.upload("incoming/after-the-inventory.jpg", b"new")  # not in it: the inventory is as old as its scan
    ops.oss.requests.clear()

    assert main([*status, "--inventory", f"oss://inventories/{inventory.manifest_key}"]) == 0

    assert same_classes(status_report(capsys.readouterr().out), listed)
    assert not ops.oss.logged(lambda r: r.param("list-type") is not None or r.param("prefix") is not None)  # no listing
    code = cli(fc, ops, "backfill", "--prefix", "incoming/", "--qps", "1000", "--inventory", f"oss://inventories/{inventory.manifest_key}")
    assert code == 0 and sorted(r.key for r in invoked(fc)) == sorted(listed["pending"] + listed["stale"] + listed["retriable"])


def test_an_inventory_url_that_is_not_one_stops_with_what_to_give(ops, capsys):
    with pytest.raises(SystemExit, match="--inventory: 's3://x/manifest.json' is not an inventory manifest: expected oss://BUCKET/PATH/manifest.json"):
        main(["status", "--bucket", BUCKET, "--oss-endpoint", ops.oss.url, "--inventory", "s3://x/manifest.json"])


def test_a_failed_migration_does_not_stamp_and_a_rerun_finishes_it(ops, capsys):
    seed(ops)
    refused = ops.oss.server_error(times=10**6, match=lambda r: r.method == "PUT" and ".settled/incoming/done/0001.jpg/" in unquote(r.path))
    migrate = ["migrate", "--bucket", BUCKET, "--prefix", "incoming/", "--oss-endpoint", ops.oss.url, "--quiet"]
    assert main(migrate) == 1
    out, err = capsys.readouterr()
    assert "not stamped" in out and err.startswith("incoming/done/0001.jpg: ")
    assert ops.oss.get(BUCKET, "heads/.settled.json") is None and refused.hits >= 1
    refused.times = 0
    assert main(migrate) == 0 and "stamped: status now lists marks" in capsys.readouterr().out
    assert main(["status", "--bucket", BUCKET, "--prefix", "incoming/", "--oss-endpoint", ops.oss.url, "--json", "--quiet"]) == 0
    assert status_report(capsys.readouterr().out)["counts"] == {**CLASSES, "orphans": ORPHANS, "errors": 0}


# -- the page and the lists --------------------------------------------------------------------------------------
def listed_in(page: str, name: str) -> tuple[list[tuple[str, str]], str]:
    """The (key, detail) items of a class's section of the page, and the line under them."""
    found = re.search(f'<section id="keys-{name}">(.*?)</section>', page, re.S)
    assert found is not None, name
    items = re.findall(r"<li>(.*?)(?: <span>(.*?)</span>)?</li>", found.group(1))
    line = re.sub("<[^>]+>", "", found.group(1).rpartition("<p>")[2])
    return [(html.unescape(key), html.unescape(detail)) for key, detail in items], html.unescape(line)


def test_the_page_says_when_it_was_made_explains_each_class_and_lists_the_first_keys_of_each(ops, tmp_path, capsys):
    expected = seed(ops)
    page_path = tmp_path / "report.html"
    before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    assert main(["status", "--bucket", BUCKET, "--prefix", "incoming/", "--oss-endpoint", ops.oss.url, "--html", str(page_path), "--quiet"]) == 0
    after = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    page = page_path.read_text(encoding="utf-8")

    made = re.search(r'<time id="made" datetime="([^"]+)">([^<]+)</time>', page)
    assert made is not None and before <= made.group(1) <= after and made.group(2).endswith(" UTC")
    counts = re.search('<table id="counts">(.*?)</table>', page, re.S)
    assert counts is not None
    rows = re.findall(r"<tr><th>(\w+)</th><td class=n>(\d+)</td><td>([^<]+)</td></tr>", counts.group(1))
    assert [(name, int(n)) for name, n, _ in rows] == [*CLASSES.items(), ("orphans", ORPHANS)]
    assert {name: html.unescape(meaning) for name, _, meaning in rows} == {n: m for n, m in MEANINGS.items() if n != "errors"}
    assert "headseg backfill" in MEANINGS["pending"] and "headseg replay" in MEANINGS["retriable"]

    pending, more = listed_in(page, "pending")  # 170: the first 100, and how to get the rest
    assert pending == [(key, "") for key in sorted(expected["pending"])[:SHOWN]]
    assert more == f"… and 70 more. headseg status --bucket {BUCKET} --prefix incoming/ --list pending prints all 170, one a line (--json: every key not done, a JSON document a line)."
    failed, more = listed_in(page, "failed")  # 80: all of them, each with its code and reason
    assert [key for key, _ in failed] == sorted(expected["failed"]) and not more.startswith("…")
    assert {detail.partition(":")[0] for _, detail in failed} == set(FAILURES)
    assert ("incoming/failed/0870.jpg", "InvalidImage.Resolution: the image is 20x20 px, below SegmentHead's 32x32") in failed
    retriable, _ = listed_in(page, "retriable")
    assert retriable == [(key, "Throttling: SegmentHead throttled") for key in sorted(expected["retriable"])]
    assert [key for key, _ in listed_in(page, "stale")[0]] == sorted(expected["stale"])[:SHOWN]
    assert [key for key, _ in listed_in(page, "orphans")[0]] == sorted(f"incoming/gone/{i}.jpg" for i in range(ORPHANS))
    assert 'id="keys-done"' not in page and "incoming/done/" not in page.partition("<h2>Recent cutouts</h2>")[0]
    for leak in ("http://", "https://", ops.oss.url, "Signature", ops.env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]):
        assert leak not in page, leak


def test_the_page_stays_small_however_many_keys_are_not_done(ops, tmp_path):
    for i in range(5000):
        ops.oss.put(BUCKET, f"incoming/many/{i:05d}.jpg", b"x")
    page_path = tmp_path / "report.html"
    assert main(["status", "--bucket", BUCKET, "--oss-endpoint", ops.oss.url, "--html", str(page_path), "--quiet"]) == 0
    page = page_path.read_text(encoding="utf-8")
    pending, more = listed_in(page, "pending")
    assert len(pending) == SHOWN and more.startswith(f"… and {5000 - SHOWN} more. headseg status --bucket {BUCKET} --list pending")
    assert len(page.encode()) < 20_000


def test_list_prints_every_key_of_a_class_one_a_line(ops, capsys):
    expected = seed(ops)
    ops.upload("incoming/pending/line\nbreak.jpg", b"x")
    for name in ("pending", "failed", "orphans"):
        assert main(["status", "--bucket", BUCKET, "--prefix", "incoming/", "--oss-endpoint", ops.oss.url, "--list", name, "--quiet"]) == 0
        keys = capsys.readouterr().out.splitlines()
        if name == "pending":
            assert keys == sorted([*expected["pending"], "incoming/pending/line\\nbreak.jpg"])  # one line each, whatever a key holds
        elif name == "failed":
            assert keys == sorted(expected["failed"])
        else:
            assert keys == sorted(f"incoming/gone/{i}.jpg" for i in range(ORPHANS))
