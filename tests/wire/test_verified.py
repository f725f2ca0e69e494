"""Verified bytes and versions, over the wire: what OSS sends is checked before anything is judged by it.

- A read that covers the whole object is checked against OSS's CRC64 and its length: corrupted or cut-off bytes
  are retried, and never become a verdict on the object (which would skip its clean redelivery for good).
- A verdict reached on a partial read (the first 64 KB: no checksum covers them) is reached again on the whole,
  verified object before it stands.
- A version is its eTag and its Last-Modified: an object changed and changed back while a run was in flight is
  another version, so the run's result (whose boxes came from the other content) is not written.
"""

from __future__ import annotations

import pytest

from headseg.function.credentials import Credentials
from headseg.function.errors import RetriableError
from headseg.function.storage.oss import OssStorage
from tests.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, BUCKET, SECURITY_TOKEN, Cloud
from tests.fakes._server import Fault, Request
from tests.fakes.images import portrait
from tests.fakes.imageseg import is_segment_call
from tests.fakes.oss import FakeOss

KEY = "incoming/a.jpg"
SMALL = portrait(400, 300, [(60, 60, 100, 120), (240, 60, 100, 120)])  # whole in the first read
LARGE = portrait(2400, 1600, [(300, 300, 500, 600)]) + bytes(100_000)  # past 64 KB (after the JPEG ends), over 2000 px


def _source_reads(request: Request) -> bool:
    return FakeOss.match("GET", BUCKET, KEY)(request)


def _whole_reads(request: Request) -> bool:
    return _source_reads(request) and not request.header("range")


def _first_bytes(request: Request) -> bool:
    return _source_reads(request) and bool(request.header("range"))


def _garble_start(body: bytes) -> bytes:
    return b"\x00" * 16 + body[16:]  # the first bytes no longer announce an image, or any header


READS = {  # which read is corrupted, the object, and what the fault does
    "a small object's one read, corrupted": (SMALL, Fault("corrupt", _source_reads)),
    "a small object's one read, cut off": (SMALL, Fault("cut", _source_reads, chunk=1000)),
    "a large object's whole read, corrupted": (LARGE, Fault("corrupt", _whole_reads)),
    "a large object's whole read, cut off": (LARGE, Fault("cut", _whole_reads, chunk=70_000)),
    "a large object's first bytes, garbled": (LARGE, Fault("corrupt", _first_bytes, mutate=_garble_start)),
    "a large object's first bytes, cut off": (LARGE, Fault("cut", _first_bytes, chunk=100)),
    "the sidecar's read, corrupted": (SMALL, None),
}


@pytest.mark.parametrize("case", list(READS))
def test_bytes_spoiled_in_transfer_are_read_again_never_judged(cloud: Cloud, case):
    data, fault = READS[case]
    etag = cloud.upload(KEY, data)
    if fault is None:  # a previous result whose read is corrupted: read again, it settles nothing wrongly
        cloud.invoke_key(KEY, etag)
        cloud.oss.inject(Fault("corrupt", FakeOss.match("GET", BUCKET, f"heads/{KEY}/heads.json")))
    else:
        cloud.oss.inject(fault)
    result = cloud.invoke_key(KEY, etag)
    [outcome] = result["outcomes"]
    assert outcome["outcome"] == ("skipped" if fault is None else "done"), outcome
    sidecar = cloud.read_json(f"heads/{KEY}/heads.json")
    assert sidecar["source"]["etag"] == etag and len(sidecar["heads"]) == (2 if data is SMALL else 1)
    assert cloud.outputs(f"heads/{KEY}/error") == []
    if fault is not None:  # the spoiled read was made again (the first bytes' verdict: on the whole object)
        again = fault.match if fault.match is not _first_bytes else _whole_reads
        assert len(cloud.oss.logged(again)) >= (2 if again is fault.match else 1)


@pytest.mark.parametrize("kind", ["corrupt", "cut"])
def test_a_source_that_never_arrives_intact_is_retriable_and_its_clean_redelivery_is_done(cloud: Cloud, kind):
    etag = cloud.upload(KEY, SMALL)
    fault = cloud.oss.inject(Fault(kind, _source_reads, times=10**6, chunk=1000))
    with pytest.raises(Exception, match="transient"):
        cloud.invoke_key(KEY, etag, timeout=4)
    record = cloud.read_json(f"heads/{KEY}/error.json")
    assert record["retriable"] is True and record["code"] in ("InconsistentError", "BodyBrokeOff", "BudgetExhausted")
    fault.times = 0  # the network heals: FC's retry
    [outcome] = cloud.invoke_key(KEY, etag)["outcomes"]
    assert outcome["outcome"] == "done"
    assert cloud.outputs(f"heads/{KEY}/") == [f"heads/{KEY}/head-{i}-{etag[:8].lower()}.png" for i in range(2)] + [
        f"heads/{KEY}/heads.json"
    ]


def test_an_object_changed_and_changed_back_mid_run_is_another_version(cloud: Cloud):
    """SegmentHead read other content than the version read first, which is back (same eTag) by the final check:
    its Last-Modified tells the versions apart, so the run writes nothing, and the last upload's event does."""
    one_head, two_heads = SMALL, portrait(400, 300, [(150, 60, 100, 120)])
    etag = cloud.upload(KEY, one_head)

    def swap(request: Request) -> bool:
        cloud.upload(KEY, two_heads)  # what SegmentHead reads
        return True

    def swap_back(request: Request) -> None:
        cloud.oss.clock_offset += 5  # a later second: OSS's Last-Modified has a resolution of one
        assert cloud.upload(KEY, one_head) == etag

    cloud.imageseg.inject(Fault("hook", is_segment_call, hook=swap, replied=swap_back))
    [outcome] = cloud.invoke_key(KEY, etag)["outcomes"]
    assert (outcome["outcome"], outcome["code"]) == ("skipped", "Superseded")
    assert cloud.outputs(f"heads/{KEY}/") == []
    [outcome] = cloud.invoke_key(KEY, etag)["outcomes"]  # the event of the last upload
    assert outcome["outcome"] == "done"
    sidecar = cloud.read_json(f"heads/{KEY}/heads.json")
    assert len(sidecar["heads"]) == 2 and sidecar["source"]["last_modified"] == cloud.oss.object(BUCKET, KEY).last_modified


def _sidecar(**changes: object) -> bytes:
    import json

    record = {
        "source": {"bucket": BUCKET, "key": KEY, "etag": "{etag}", "size": len(SMALL)},
        "request_id": "r", "return_form": None, "engine": "cloud", "schema_version": 1,
        "heads": [{"index": 0, "key": f"heads/{KEY}/head-0-x.png", "x": 1, "y": 2, "width": 3, "height": 4}],
    }
    record.update(changes)
    return json.dumps(record).encode()


POISONED = {  # a previous result headseg cannot read back: treated as absent, the source redone
    "over 1 MiB": _sidecar(engine="x" * (1 << 20)),
    "nested past the parser": b'{"schema_version": 1, "source": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "a box that is null": _sidecar(heads=[{"index": 0, "key": "k", "x": None, "y": 2, "width": 3, "height": 4}]),
    "a box that is a string": _sidecar(heads=[{"index": 0, "key": "k", "x": "1", "y": 2, "width": 3, "height": 4}]),
    "an eTag that is a number": _sidecar(source={"bucket": BUCKET, "key": KEY, "etag": 7, "size": 1}),
    "a schema version of true": _sidecar(schema_version=True),
    "heads that are an object": _sidecar(heads={"0": 1}),
    "invalid UTF-8": b'{"schema_version": 1, "engine": "\xff\xfe"}',
}


@pytest.mark.parametrize("case", list(POISONED))
def test_a_previous_result_that_cannot_be_read_back_is_treated_as_absent(cloud: Cloud, case):
    etag = cloud.upload(KEY, SMALL)
    cloud.upload(f"heads/{KEY}/heads.json", POISONED[case].replace(b"{etag}", etag.encode()), "application/json")
    [outcome] = cloud.invoke_key(KEY, etag)["outcomes"]
    assert outcome["outcome"] == "done", outcome
    sidecar = cloud.read_json(f"heads/{KEY}/heads.json")
    assert sidecar["source"]["etag"] == etag and len(sidecar["heads"]) == 2


_OPERATIONS = {  # each with a reply body oss2 reads after handing the response over
    "list": lambda storage: list(storage.list("incoming/")),
    "get": lambda storage: storage.get(KEY),
    "location": lambda storage: storage.location(),
    "expiry rules": lambda storage: storage.expiry_rules(),
}


@pytest.mark.parametrize("operation", _OPERATIONS)
@pytest.mark.parametrize("chunk", [1, 40])
def test_any_oss_reply_that_breaks_off_is_retriable_whichever_call_read_it(fake_oss: FakeOss, operation: str, chunk: int):
    """One boundary classifies every call: a body cut off mid-way is a retriable BodyBrokeOff, never an
    unclassified requests/urllib3 exception, for a listing's XML as for an object's bytes."""
    fake_oss.put(BUCKET, KEY, SMALL)
    fake_oss.put(BUCKET, "incoming/b.jpg", SMALL)
    storage = OssStorage(BUCKET, endpoint=fake_oss.url, credentials=Credentials(ACCESS_KEY_ID, ACCESS_KEY_SECRET, SECURITY_TOKEN), region="cn-shanghai")
    storage.add_expiry_rule("scratch", "heads/.scratch/", 1)
    fake_oss.inject(Fault("cut", chunk=chunk))

    with pytest.raises(RetriableError) as raised:
        _OPERATIONS[operation](storage)

    assert raised.value.code in ("BodyBrokeOff", "InconsistentError")
