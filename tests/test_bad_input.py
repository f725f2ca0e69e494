"""Every input in the corpus ends in its expected outcome, through the real handler and SDKs."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Cloud
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
    "json list": b"[1, 2]",
    "no events": b'{"Records": []}',
    "events not a list": b'{"events": {"a": 1}}',
    "record not an object": b'{"events": ["x"]}',
    "no eventName": b'{"events": [{"oss": {}}]}',
    "eventName a number": b'{"events": [{"eventName": 3, "oss": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]}',
    "no bucket": b'{"events": [{"eventName": "ObjectCreated:PutObject", "oss": {"object": {"key": "k"}}}]}',
    "key not a string": b'{"events": [{"eventName": "ObjectCreated:PutObject", "oss": {"bucket": {"name": "b"}, "object": {"key": 7}}}]}',
    "size negative": b'{"events": [{"eventName": "ObjectCreated:PutObject", "oss": {"bucket": {"name": "b"}, "object": {"key": "k", "size": -1}}}]}',
    "huge": b'{"events": [' + b'{"eventName": "x"},' * 20000 + b'{}]}',
    "too many records": json.dumps({"events": [{"eventName": "ObjectRemoved:DeleteObject", "oss": {"object": {"key": "k"}}}] * 101}).encode(),
}


@pytest.mark.parametrize("raw", MALFORMED_EVENTS.values(), ids=MALFORMED_EVENTS.keys())
def test_malformed_events_are_rejected_cleanly(cloud: Cloud, raw):
    result = cloud.invoke(raw)
    assert result["outcome"] == "rejected" and result["reason"]
    assert cloud.oss.requests == [] and cloud.imageseg.calls == 0
