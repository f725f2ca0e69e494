import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headseg.errors import MalformedEvent
from headseg.events import MAX_EVENT_BYTES, ObjectCreated, OtherRecord, parse_event

EVENTS = Path(__file__).parent.parent / "events"


def load_event(name: str) -> bytes:
    return (EVENTS / name).read_bytes()


def test_put_event_parses_to_one_typed_record():
    raw = json.loads(load_event("put.json"))["events"][0]
    [record] = parse_event(load_event("put.json"))
    assert isinstance(record, ObjectCreated)
    assert record.event_name == raw["eventName"] == "ObjectCreated:PutObject"
    assert record.bucket == raw["oss"]["bucket"]["name"]
    assert record.key == raw["oss"]["object"]["key"]
    assert record.etag == raw["oss"]["object"]["eTag"]
    assert record.size == raw["oss"]["object"]["size"]
    assert record.region == "cn-shanghai"


@pytest.mark.parametrize(
    "name, kind", [("post.json", "PostObject"), ("multipart.json", "CompleteMultipartUpload")]
)
def test_every_creation_kind_is_an_object_created(name, kind):
    [record] = parse_event(load_event(name))
    assert isinstance(record, ObjectCreated) and record.event_name == f"ObjectCreated:{kind}"


@pytest.mark.parametrize("kind", ["PutSymlink", "CopyObject", "AppendObject"])
def test_other_creation_kinds(kind):
    event = json.loads(load_event("put.json"))
    event["events"][0]["eventName"] = f"ObjectCreated:{kind}"
    [record] = parse_event(json.dumps(event).encode())
    assert isinstance(record, ObjectCreated)


def test_several_records_in_one_event():
    records = parse_event(load_event("multi-record.json"))
    assert [r.key for r in records] == ["incoming/group.jpg", "incoming/portrait.png", "incoming/duo.bmp"]


def test_other_event_kinds_become_other_records():
    event = json.loads(load_event("put.json"))
    event["events"][0]["eventName"] = "ObjectRemoved:DeleteObject"
    [record] = parse_event(json.dumps(event))
    assert record == OtherRecord(event_name="ObjectRemoved:DeleteObject", key="incoming/group.jpg")


def test_key_candidates_add_the_decoded_form_only_when_it_differs():
    [plain] = parse_event(load_event("unicode-key.json"))
    assert plain.key_candidates == ["incoming/团队 合影/张 三.jpg"]
    [encoded] = parse_event(load_event("encoded-key.json"))
    assert encoded.key_candidates == [encoded.key, "incoming/团队 合影/张 三.jpg"]


def test_etag_is_normalized():
    event = json.loads(load_event("put.json"))
    event["events"][0]["oss"]["object"]["eTag"] = '"688a7bf4f233dc9c88a80bf985ab7329"'
    [record] = parse_event(json.dumps(event))
    assert record.etag == "688A7BF4F233DC9C88A80BF985AB7329"


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"not json", "event is not JSON"),
        (b"\xff\xfe", "event is not JSON"),
        (b"[]", "must be a JSON object"),
        (b"{}", "no 'events' list"),
        (b'{"events": []}', "no 'events' list"),
        (b'{"events": [1]}', "events[0] must be an object"),
        (b'{"events": [{"eventName": "ObjectCreated:PutObject"}]}', "events[0].oss is missing"),
        (b'{"events": [{"eventName": 5, "oss": {}}]}', "events[0].eventName is missing or not a non-empty string"),
        (
            b'{"events": [{"eventName": "ObjectCreated:PutObject", "oss": {"object": {"key": "a"}, "bucket": {}}}]}',
            "events[0].oss.bucket.name",
        ),
        (
            b'{"events": [{"eventName": "ObjectCreated:PutObject", "oss": {"object": {"key": "a", "size": "9"},'
            b' "bucket": {"name": "b"}}}]}',
            "size must be a non-negative integer",
        ),
        (b" " * (MAX_EVENT_BYTES + 1), "over the"),
    ],
)
def test_malformed_events_say_what_is_wrong(raw, message):
    with pytest.raises(MalformedEvent) as error:
        parse_event(raw)
    assert message in error.value.message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_parser_never_fails_with_anything_but_malformed_event(value):
    try:
        records = parse_event(json.dumps(value).encode())
    except MalformedEvent:
        return
    assert all(isinstance(r, (ObjectCreated, OtherRecord)) for r in records)


@given(
    key=st.text(min_size=1, max_size=200),
    kind=st.sampled_from(["PutObject", "PostObject", "CompleteMultipartUpload", "CopyObject"]),
    size=st.integers(min_value=0, max_value=2**40),
)
def test_parser_round_trips_well_formed_records(key, kind, size):
    event = {"events": [{"eventName": f"ObjectCreated:{kind}", "oss": {"bucket": {"name": "b"}, "object": {"key": key, "size": size, "eTag": "ab"}}}]}
    [record] = parse_event(json.dumps(event).encode())
    assert (record.key, record.size, record.etag, record.bucket) == (key, size, "AB", "b")


def test_synthetic_events_have_the_real_shape_and_parse_back():
    from headseg.events import object_created_event

    real = json.loads(load_event("put.json"))["events"][0]
    made = object_created_event("headseg-demo", "incoming/a b.jpg", "ABC", 12, account_id="1234")["events"][0]
    assert set(made) == set(real) and set(made["oss"]) == set(real["oss"]) and set(made["oss"]["object"]) == set(real["oss"]["object"])
    [record] = parse_event(json.dumps({"events": [made]}))
    assert (record.bucket, record.key, record.etag, record.size) == ("headseg-demo", "incoming/a b.jpg", "ABC", 12)
