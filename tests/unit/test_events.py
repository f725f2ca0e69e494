import json
from pathlib import Path
from urllib.parse import unquote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headseg.function.errors import MalformedEvent, RetriableError
from headseg.function.events import MAX_EVENT_BYTES, EventTooLarge, ObjectCreated, OtherRecord, RejectedRecord, parse_event
from headseg.function.storage import MAX_KEY_BYTES

EVENTS = Path(__file__).parents[2] / "events"


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
        (b'{"events": {"a": 1}}', "no 'events' list"),
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
        (b'{"events": [' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"]}", "nested deeper"),
    ],
)
def test_malformed_events_say_what_is_wrong(raw, message):
    with pytest.raises(MalformedEvent) as error:
        parse_event(raw)
    assert message in error.value.message


@pytest.mark.parametrize("records", [101, 5000])
def test_an_event_of_any_number_of_records_is_parsed_whole(records):
    """No record limit drops an event: every record comes back, in order."""
    event = {"events": [created(f"incoming/{i}.jpg") for i in range(records)]}
    parsed = parse_event(json.dumps(event))
    assert [record.key for record in parsed] == [f"incoming/{i}.jpg" for i in range(records)]


def test_an_event_too_large_to_parse_is_raised_never_dropped():
    with pytest.raises(EventTooLarge, match="onFailure destination") as error:
        parse_event(b" " * (MAX_EVENT_BYTES + 1))
    assert isinstance(error.value, RetriableError)


def created(key="incoming/a.jpg", **obj):
    return {"eventName": "ObjectCreated:PutObject", "oss": {"bucket": {"name": "b"}, "object": {"key": key, **obj}}}


@pytest.mark.parametrize(
    "record, message",
    [
        (1, "events[0] must be an object"),
        ("x", "events[0] must be an object"),
        ({"eventName": "ObjectCreated:PutObject"}, "events[0].oss is missing"),
        ({"eventName": 5, "oss": {}}, "events[0].eventName is missing or not a non-empty string"),
        ({"oss": {}}, "events[0].eventName is missing"),
        ({"eventName": "ObjectRemoved:DeleteObject", "oss": {}}, "events[0].oss.object is missing"),
        ({"eventName": "ObjectCreated:PutObject", "oss": {"object": {"key": "a"}, "bucket": {}}}, "events[0].oss.bucket.name"),
        (created(key=7), "events[0].oss.object.key is missing or not a non-empty string"),
        (created(key=""), "events[0].oss.object.key is missing or not a non-empty string"),
        (created(size="9"), "size must be a non-negative integer"),
        (created(size=-1), "size must be a non-negative integer"),
        (created(size=True), "size must be a non-negative integer"),
        (created(eTag=5), "eTag must be a string"),
    ],
)
def test_a_malformed_record_is_rejected_with_what_is_wrong(record, message):
    [rejected] = parse_event(json.dumps({"events": [record]}).encode())
    assert isinstance(rejected, RejectedRecord)
    assert rejected.index == 0 and message in rejected.reason and rejected.code == "MalformedEvent"


def test_a_malformed_record_never_drops_its_neighbours():
    first, bad, last = parse_event(load_event("malformed-record.json"))
    assert isinstance(first, ObjectCreated) and isinstance(last, ObjectCreated)
    assert (first.key, last.key) == ("incoming/group.jpg", "incoming/portrait.png")
    assert bad == RejectedRecord(
        index=1,
        reason="events[1].oss.bucket.name is missing or not a non-empty string",
        code="MalformedEvent",
        event_name="ObjectCreated:PutObject",
        bucket="",
        key="incoming/no-bucket.jpg",
    )


def test_every_malformed_record_is_rejected_at_its_own_index():
    event = {"events": [created("incoming/0.jpg"), 1, created(size=-1), {"eventName": "ObjectRemoved:DeleteObject"}, created("incoming/4.jpg")]}
    records = parse_event(json.dumps(event))
    assert [type(r).__name__ for r in records] == ["ObjectCreated", "RejectedRecord", "RejectedRecord", "RejectedRecord", "ObjectCreated"]
    assert [r.index for r in records if isinstance(r, RejectedRecord)] == [1, 2, 3]
    assert [r.reason.partition(" ")[0] for r in records if isinstance(r, RejectedRecord)] == [
        "events[1]", "events[2].oss.object.size", "events[3].oss",
    ]
    assert records[2].key == "incoming/a.jpg" and records[2].bucket == "b"  # what could be read is kept


def test_a_key_over_the_limit_in_every_form_is_rejected():
    wide = "incoming/" + "团" * 400  # 1209 bytes, nothing to decode
    one_over = "incoming/" + "k" * (MAX_KEY_BYTES - 8)
    for key in (wide, one_over):
        [rejected] = parse_event(json.dumps({"events": [created(key)]}))
        assert isinstance(rejected, RejectedRecord) and rejected.code == "KeyTooLong"
        assert rejected.reason == f"events[0].oss.object.key is {len(key.encode())} bytes: over OSS's {MAX_KEY_BYTES}-byte key limit"
    both = "incoming/" + "+" * MAX_KEY_BYTES  # decodes to as many spaces: over the limit either way
    [rejected] = parse_event(json.dumps({"events": [created(both)]}))
    assert isinstance(rejected, RejectedRecord) and rejected.code == "KeyTooLong"
    assert "is 1032 bytes, and URL-decoded it is 1032: over OSS's 1023-byte key limit" in rejected.reason


def test_a_key_too_long_only_as_given_keeps_its_decoded_form_only():
    decoded = "incoming/" + "团" * 300  # 909 bytes
    encoded = "incoming/" + "%E5%9B%A2" * 300  # 2709 bytes
    [record] = parse_event(json.dumps({"events": [created(encoded)]}))
    assert isinstance(record, ObjectCreated)
    assert record.key == encoded  # as the event gave it
    assert record.key_candidates == [decoded]


def test_a_key_at_the_limit_keeps_both_forms():
    key = "incoming/a+b/" + "k" * (MAX_KEY_BYTES - 13)
    [record] = parse_event(json.dumps({"events": [created(key)]}))
    assert len(key.encode()) == MAX_KEY_BYTES
    assert record.key_candidates == [key, key.replace("+", " ")]


def test_a_long_key_is_clipped_in_the_rejection():
    [rejected] = parse_event(json.dumps({"events": [created("k" * 100_000)]}))
    assert isinstance(rejected, RejectedRecord) and rejected.code == "KeyTooLong"
    assert rejected.key.startswith("k" * MAX_KEY_BYTES) and len(rejected.key) < 3 * MAX_KEY_BYTES


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
    assert all(isinstance(r, (ObjectCreated, OtherRecord, RejectedRecord)) for r in records)


@given(st.lists(json_values | st.builds(created, st.text(max_size=20)), min_size=1, max_size=8))
def test_a_well_formed_envelope_gives_one_record_per_record_in_order(values):
    records = parse_event(json.dumps({"events": values}).encode())
    assert len(records) == len(values)
    for index, record in enumerate(records):
        if isinstance(record, RejectedRecord):
            assert record.index == index and record.reason.startswith(f"events[{index}]")
        elif isinstance(record, ObjectCreated):
            assert record.key_candidates and record.key_candidates[0] in (record.key, unquote_plus(record.key))
            assert all(len(key.encode("utf-8")) <= MAX_KEY_BYTES for key in record.key_candidates)


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
    from headseg.function.events import object_created_event

    real = json.loads(load_event("put.json"))["events"][0]
    made = object_created_event("headseg-demo", "incoming/a b.jpg", "ABC", 12, account_id="1234")["events"][0]
    assert set(made) == set(real) and set(made["oss"]) == set(real["oss"]) and set(made["oss"]["object"]) == set(real["oss"]["object"])
    [record] = parse_event(json.dumps({"events": [made]}))
    assert (record.bucket, record.key, record.etag, record.size) == ("headseg-demo", "incoming/a b.jpg", "ABC", 12)


# -- EventBridge-based triggers: CloudEvents ---------------------------------------------------------------------
def test_an_eventbridge_cloudevent_parses_to_the_same_record_as_the_native_event():
    [native] = parse_event(load_event("put.json"))
    [cloud] = parse_event(load_event("eventbridge-put.json"))
    assert cloud == native and isinstance(cloud, ObjectCreated)


def test_a_batch_of_cloudevents_parses_to_one_record_each_in_order():
    raw = json.loads(load_event("eventbridge-batch.json"))
    records = parse_event(load_event("eventbridge-batch.json"))
    assert [(r.event_name, r.key, r.etag, r.size) for r in records] == [
        (e["data"]["eventName"], e["data"]["oss"]["object"]["key"], e["data"]["oss"]["object"]["eTag"], e["data"]["oss"]["object"]["size"])
        for e in raw
    ]


def test_a_cloudevent_without_an_event_name_takes_it_from_its_type():
    event = json.loads(load_event("eventbridge-put.json"))
    del event["data"]["eventName"]
    event["type"] = "oss:ObjectCreated:CompleteMultipartUpload"
    [record] = parse_event(json.dumps(event))
    assert isinstance(record, ObjectCreated) and record.event_name == "ObjectCreated:CompleteMultipartUpload"


def test_multipart_parts_from_eventbridge_are_not_object_creations():
    event = json.loads(load_event("eventbridge-put.json"))
    event["type"], event["data"]["eventName"] = "oss:ObjectCreated:UploadPart", "ObjectCreated:UploadPart"
    [record] = parse_event(json.dumps(event))
    assert isinstance(record, OtherRecord)


def test_a_bad_cloudevent_in_a_batch_is_rejected_alone():
    batch = json.loads(load_event("eventbridge-batch.json"))
    batch.insert(1, {"specversion": "1.0", "source": "acs.oss", "type": "oss:ObjectCreated:PutObject", "data": "x"})
    records = parse_event(json.dumps(batch))
    assert [type(r).__name__ for r in records] == ["ObjectCreated", "RejectedRecord", "ObjectCreated"]
    assert records[1].index == 1 and "not an OSS CloudEvent" in records[1].reason
