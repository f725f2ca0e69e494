"""Every input in the corpus ends in its expected outcome, through the real handler and SDKs."""

from __future__ import annotations

import json

import pytest

from headseg.function.errors import RetriableError
from tests.conftest import Cloud, load_event, oss_event
from tests.corpus import cases

CASES = cases()


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 40 and len({c.object_key for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_input_ends_as_expected(cloud: Cloud, case):
    etag = cloud.upload(case.object_key, case.make())

    result = cloud.invoke_key(case.object_key, etag)

    [outcome] = result["outcomes"]
    assert outcome["outcome"] == case.outcome, outcome
    assert outcome.get("code", "") == (case.code if case.outcome != "done" else "")
    folder = f"heads/{case.object_key}/"
    if case.outcome == "done":
        sidecar = cloud.read_json(folder + "heads.json")
        assert sidecar["source"]["etag"] == etag
        steps = (sidecar["normalization"] or {}).get("steps", [])
        assert case.words in " ".join(steps)
        if not case.words:
            assert sidecar["normalization"] is None  # taken as it is
    elif case.outcome == "failed":
        assert case.words in outcome["reason"]
        if case.code != "KeyTooLong":
            assert cloud.read_json(folder + "error.json")["code"] == case.code
    else:
        assert case.words in outcome["reason"]
        assert not [k for k in cloud.outputs() if k.startswith(folder) and not k.startswith("heads/.scratch")]
    assert [k for k in cloud.outputs("heads/.scratch/") if k != case.object_key] == []  # copies deleted


MALFORMED_EVENTS = {
    "not json": b"{oss: nope",
    "binary": b"\x00\xff\xfe\x01",
    "json number": b"12",
    "empty json list": b"[]",
    "no events": b'{"Records": []}',
    "events not a list": b'{"events": {"a": 1}}',
    "nested past the parser": b'{"events": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
}


@pytest.mark.parametrize("raw", MALFORMED_EVENTS.values(), ids=MALFORMED_EVENTS.keys())
def test_malformed_events_are_rejected_cleanly(cloud: Cloud, raw):
    result = cloud.invoke(raw)
    assert result["outcome"] == "rejected" and result["reason"]
    assert cloud.oss.requests == [] and cloud.imageseg.calls == 0


def test_an_event_of_many_records_is_processed_across_deliveries_never_dropped(cloud: Cloud):
    """More records than one invocation's time reaches: those not reached are retried, none is dropped, and the
    redeliveries skip what is done. Every record ends done, each segmented once."""
    keys = [f"incoming/many-{i}.jpg" for i in range(8)]
    event = oss_event(*[(key, cloud.upload_portrait(key, [(120, 60, 100, 130)])) for key in keys])
    for delivery in range(len(keys) + 1):
        try:
            result = cloud.invoke(event, timeout=3, request_id=f"1-many-{delivery}")
            break
        except RetriableError as exc:
            assert "NotReached" in str(exc) or "BudgetExhausted" in str(exc)
    assert all(o["outcome"] in ("done", "skipped") for o in result["outcomes"]) and len(result["outcomes"]) == len(keys)
    assert all(cloud.read_json(f"heads/{key}/heads.json") for key in keys)
    assert cloud.imageseg.calls == len(keys)


def test_an_event_over_the_size_the_function_parses_is_raised_not_returned(cloud: Cloud):
    from headseg.function.events import MAX_EVENT_BYTES

    with pytest.raises(RetriableError, match="onFailure destination"):
        cloud.invoke(b'{"events": [' + b" " * MAX_EVENT_BYTES + b"]}")
    assert cloud.oss.requests == []


# a malformed record is rejected alone: (event, the reason it is given)
MALFORMED_RECORDS = {
    "json list (a batch of CloudEvents that are not)": (b"[1]", "events[0] is not an OSS CloudEvent"),
    "CloudEvent from another source": (b'[{"specversion": "1.0", "source": "acs.ecs", "data": {}}]', "source 'acs.ecs'"),
    "record not an object": (b'{"events": ["x"]}', "events[0] must be an object"),
    "no eventName": (b'{"events": [{"oss": {}}]}', "events[0].eventName is missing"),
    "eventName a number": (
        b'{"events": [{"eventName": 3, "oss": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]}',
        "events[0].eventName is missing or not a non-empty string",
    ),
    "no bucket": (
        b'{"events": [{"eventName": "ObjectCreated:PutObject", "oss": {"object": {"key": "k"}}}]}',
        "events[0].oss.bucket is missing or not an object",
    ),
    "key not a string": (
        b'{"events": [{"eventName": "ObjectCreated:PutObject", "oss": {"bucket": {"name": "b"}, "object": {"key": 7}}}]}',
        "events[0].oss.object.key is missing or not a non-empty string",
    ),
    "size negative": (
        b'{"events": [{"eventName": "ObjectCreated:PutObject", "oss": {"bucket": {"name": "b"}, "object": {"key": "k", "size": -1}}}]}',
        "events[0].oss.object.size must be a non-negative integer",
    ),
}


@pytest.mark.parametrize("raw, reason", MALFORMED_RECORDS.values(), ids=MALFORMED_RECORDS.keys())
def test_malformed_records_are_rejected_alone_before_any_request(cloud: Cloud, raw, reason):
    [outcome] = cloud.invoke(raw)["outcomes"]
    assert outcome["outcome"] == "rejected" and outcome["index"] == 0 and reason in outcome["reason"]
    assert outcome["code"] == "MalformedEvent"
    assert cloud.oss.requests == [] and cloud.imageseg.calls == 0


def test_a_malformed_record_between_two_good_ones_is_rejected_alone(cloud: Cloud, caplog):
    event = load_event("malformed-record.json")  # records 0 and 2 are good, record 1 has no bucket name
    for index in (0, 2):
        obj = event["events"][index]["oss"]["object"]
        obj["eTag"] = cloud.upload_portrait(obj["key"], [(40, 50, 60, 80)])

    result = cloud.invoke(json.dumps(event).encode())  # returns: no RetriableError, FC does not retry

    first, bad, last = result["outcomes"]
    assert (first["outcome"], first["key"], first["heads"]) == ("done", "incoming/group.jpg", 1)
    assert (last["outcome"], last["key"], last["heads"]) == ("done", "incoming/portrait.png", 1)
    assert bad == {
        "outcome": "rejected",
        "bucket": "",
        "key": "incoming/no-bucket.jpg",
        "reason": "events[1].oss.bucket.name is missing or not a non-empty string",
        "code": "MalformedEvent",
        "index": 1,
    }
    assert cloud.read_json("heads/incoming/group.jpg/heads.json") and cloud.read_json("heads/incoming/portrait.png/heads.json")
    assert not [r for r in cloud.oss.requests if "no-bucket" in r.request.path]
    assert cloud.imageseg.calls == 2
    lines = [json.loads(line) for line in caplog.text.splitlines() if line.startswith("{")]
    [line] = [line for line in lines if line.get("outcome") == "rejected"]
    assert line["level"] == "ERROR" and line["index"] == 1 and line["reason"] == bad["reason"]
    assert line["key"] == "incoming/no-bucket.jpg" and "Traceback" not in caplog.text
