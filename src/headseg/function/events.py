"""OSS trigger events: the raw bytes FC passes, parsed into typed, validated records.

Two shapes arrive: a native OSS trigger's `{"events": [record, ...]}`, and an EventBridge-based trigger's
CloudEvent (`source: acs.oss`, `type: oss:ObjectCreated:*`, the native record under `data`), or a JSON array of
them when batching is on. Both become the same records.

Only this module looks inside the event's JSON. `parse_event` returns one value per record, in order:
    ObjectCreated   an `ObjectCreated:*` record, validated; the pipeline processes it
    OtherRecord     a well-formed record of another kind (a deletion, ...); the pipeline skips it
    RejectedRecord  a malformed record, with its index and what is wrong; the handler rejects it alone (it can
                    never succeed, so it is logged at ERROR and not retried) and its neighbours are processed
Only an event that is malformed as a whole (not JSON, nested past what the parser takes, neither shape, no
`events` list) raises `MalformedEvent`, with a message that says what is wrong. An event of any number of records
is processed (the invocation's time decides how many records one delivery reaches; FC's retry does the rest);
one too large to parse within the function's memory raises `EventTooLarge`, so FC retries it and finally hands it
to the async onFailure destination: never dropped while the invocation returns success.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Mapping, Union
from urllib.parse import unquote_plus

from headseg.function.errors import MalformedEvent, RetriableError
from headseg.function.storage import MAX_KEY_BYTES

#: The event names OSS sends when an object is created (prefixed by "ObjectCreated:").
OBJECT_CREATED_KINDS = frozenset(
    {"PutObject", "PostObject", "CompleteMultipartUpload", "PutSymlink", "CopyObject", "AppendObject"}
)
MAX_EVENT_BYTES = 6 * 1024 * 1024  # parsed, ~10x this in Python objects; FC's async payloads are at most 128 KB


class EventTooLarge(RetriableError):
    """The event is too large to parse in the function's memory: raised, so it is never taken for done. FC's
    retries fail the same way and then hand it to the async onFailure destination, where a person can split it."""

    code = "EventTooLarge"
    retry_in_invocation = False


@dataclass(frozen=True)
class ObjectCreated:
    """One `ObjectCreated:*` record: which object, in which bucket, at which eTag."""

    event_name: str
    bucket: str
    key: str  # exactly as the event gave it; see `key_candidates`
    etag: str | None = None
    size: int | None = None
    region: str = ""
    event_time: str = ""

    @property
    def key_candidates(self) -> list[str]:
        """The keys the object may have: the key as given, then its `unquote_plus` form if different, leaving
        out any form over OSS's MAX_KEY_BYTES (no object can have it). Never empty for a parsed record:
        `parse_event` rejects a record none of whose forms fits.

        Whether OSS URL-encodes keys in events is unverified, so both forms are candidates. When both exist
        in the bucket, the one whose eTag matches the event's (`etag`) is the object of this event; with no
        match, or no eTag in the event, the first candidate is. Choosing is the pipeline's job.
        """
        return key_forms(self.key)


def key_forms(key: str) -> list[str]:
    """`key` and its `unquote_plus` form if different, each only if within OSS's MAX_KEY_BYTES."""
    decoded = unquote_plus(key)
    forms = [key] if decoded == key else [key, decoded]
    return [form for form in forms if len(form.encode("utf-8")) <= MAX_KEY_BYTES]


@dataclass(frozen=True)
class OtherRecord:
    """A record headseg does not act on (another event kind); logged and skipped."""

    event_name: str
    key: str = ""


@dataclass(frozen=True)
class RejectedRecord:
    """A malformed record: `events[index]`, and what is wrong with it (`reason`, for people; `code`, stable).

    Rejected alone: it can never succeed, so it is not retried, and the other records of its event are
    processed. `event_name`, `bucket` and `key` are what could be read from it ("" where nothing could).
    """

    index: int
    reason: str
    code: str = MalformedEvent.code
    event_name: str = ""
    bucket: str = ""
    key: str = ""


#: What the pipeline processes.
#: What `parse_event` returns for each record: an object creation, another kind, or a malformed one's rejection.
Record = Union[ObjectCreated, OtherRecord, RejectedRecord]


def parse_event(raw: bytes | str | Mapping[str, Any]) -> list[Record]:
    """Parse an OSS trigger event (bytes of JSON, as FC passes it) into its records, one per record in order.

    A malformed record becomes a `RejectedRecord`; only a malformed event as a whole raises `MalformedEvent`,
    and one over MAX_EVENT_BYTES raises `EventTooLarge`.
    """
    if isinstance(raw, (bytes, bytearray, str)):
        if len(raw) > MAX_EVENT_BYTES:
            raise EventTooLarge(
                f"event is {len(raw)} bytes, over the {MAX_EVENT_BYTES} this function parses: raised so it is not "
                "lost; once FC's retries fail it goes to the async onFailure destination, if one is configured"
            )
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedEvent(f"event is not JSON: {exc}") from None
        except RecursionError:
            raise MalformedEvent("event is nested deeper than any OSS or EventBridge event") from None
    else:
        document = raw
    records = _records(document)
    return [_from_cloud_event(i, record) if cloud else _parse_or_reject(i, record) for i, (cloud, record) in enumerate(records)]


def _records(document: Any) -> list[tuple[bool, Any]]:
    """(is a CloudEvent, record) for each record of a native OSS trigger event (`{"events": [...]}`), of one
    EventBridge CloudEvent, or of a batch of CloudEvents (a JSON array, when EventBridge batches)."""
    if isinstance(document, list) and document:
        return [(True, event) for event in document]
    if isinstance(document, Mapping) and "events" in document:
        events = document["events"]
        if not isinstance(events, list) or not events:
            raise MalformedEvent("event has no 'events' list: is this an OSS trigger event?")
        return [(False, record) for record in events]
    if isinstance(document, Mapping) and "specversion" in document:
        return [(True, document)]
    if isinstance(document, Mapping):
        raise MalformedEvent("event has no 'events' list and is no CloudEvent: is this an OSS trigger event?")
    raise MalformedEvent(
        f"event must be a JSON object with 'events' (an OSS trigger) or EventBridge CloudEvents, got {type(document).__name__}"
    )


def _from_cloud_event(index: int, event: Any) -> Record:
    """The native OSS record a CloudEvent carries in `data` (`source: acs.oss`, `type: oss:<eventName>`)."""
    if not isinstance(event, Mapping) or event.get("source") != "acs.oss" or not isinstance(event.get("data"), Mapping):
        source = event.get("source") if isinstance(event, Mapping) else None
        reason = f"events[{index}] is not an OSS CloudEvent (source {source!r}, and 'data' must be an object)"
        return RejectedRecord(index, reason, "MalformedEvent")
    data, kind = event["data"], event.get("type")
    if "eventName" not in data and isinstance(kind, str) and kind.startswith("oss:"):
        data = {**data, "eventName": kind[len("oss:") :]}
    return _parse_or_reject(index, data)


def _parse_or_reject(index: int, record: Any) -> Record:
    try:
        return _parse_record(index, record)
    except MalformedEvent as exc:
        return RejectedRecord(index, exc.message, exc.code, *_salvage(record))


def _salvage(record: Any) -> tuple[str, str, str]:
    """What a malformed record still says of itself: its event name, bucket and key (each "" if not a string)."""

    def at(parent: Any, *path: str) -> str:
        for name in path:
            parent = parent.get(name) if isinstance(parent, Mapping) else None
        return _clip(parent) if isinstance(parent, str) else ""

    return at(record, "eventName"), at(record, "oss", "bucket", "name"), at(record, "oss", "object", "key")


def _clip(text: str, limit: int = 2 * MAX_KEY_BYTES) -> str:
    """`text`, cut short if it is far longer than anything OSS could hold (it goes into logs and the result)."""
    return text if len(text) <= limit else text[:limit] + "…"


def _parse_record(index: int, record: Any) -> Record:
    where = f"events[{index}]"
    if not isinstance(record, Mapping):
        raise MalformedEvent(f"{where} must be an object")
    name = _string(record, "eventName", where)
    kind, _, action = name.partition(":")
    oss = _mapping(record, "oss", where)
    obj = _mapping(oss, "object", f"{where}.oss")
    if kind != "ObjectCreated" or action not in OBJECT_CREATED_KINDS:
        key = obj.get("key")
        return OtherRecord(event_name=name, key=key if isinstance(key, str) else "")
    bucket = _string(_mapping(oss, "bucket", f"{where}.oss"), "name", f"{where}.oss.bucket")
    key = _string(obj, "key", f"{where}.oss.object")
    if not key_forms(key):  # the limit holds for the key as given and for its URL-decoded form
        decoded = unquote_plus(key)
        also = "" if decoded == key else f", and URL-decoded it is {len(decoded.encode('utf-8'))}"
        raise MalformedEvent(
            f"{where}.oss.object.key is {len(key.encode('utf-8'))} bytes{also}: over OSS's {MAX_KEY_BYTES}-byte key limit",
            code="KeyTooLong",
        )
    etag = obj.get("eTag")
    size = obj.get("size")
    if etag is not None and not isinstance(etag, str):
        raise MalformedEvent(f"{where}.oss.object.eTag must be a string")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise MalformedEvent(f"{where}.oss.object.size must be a non-negative integer")
    region = record.get("region")
    event_time = record.get("eventTime")
    return ObjectCreated(
        event_name=name,
        bucket=bucket,
        key=key,
        etag=normalize_etag(etag) if etag else None,
        size=size,
        region=region if isinstance(region, str) else "",
        event_time=event_time if isinstance(event_time, str) else "",
    )


def normalize_etag(etag: str) -> str:
    """ETags compare without quotes and case: OSS sends `"ABC..."` in headers and `ABC...` in events."""
    return etag.strip().strip('"').upper()


def _mapping(parent: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = parent.get(name)
    if not isinstance(value, Mapping):
        raise MalformedEvent(f"{where}.{name} is missing or not an object")
    return value


def _string(parent: Mapping[str, Any], name: str, where: str) -> str:
    value = parent.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"{where}.{name} is missing or not a non-empty string")
    return value


def object_created_event(
    bucket: str,
    key: str,
    etag: str | None = None,
    size: int | None = None,
    region: str = "cn-shanghai",
    account_id: str = "",
    event_name: str = "ObjectCreated:PutObject",
) -> dict[str, Any]:
    """A synthetic event of the real OSS trigger shape, for one object (backfill and replay send these)."""
    obj: dict[str, Any] = {"key": key}
    if etag is not None:
        obj["eTag"] = etag
    if size is not None:
        obj.update(size=size, deltaSize=size)
    record = {
        "eventName": event_name,
        "eventSource": "acs:oss",
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "eventVersion": "1.0",
        "oss": {
            "bucket": {"arn": f"acs:oss:{region}:{account_id}:{bucket}", "name": bucket, "ownerIdentity": account_id},
            "object": obj,
            "ossSchemaVersion": "1.0",
            "ruleId": "headseg-synthetic",
        },
        "region": region,
        "requestParameters": {"sourceIPAddress": ""},
        "responseElements": {"requestId": ""},
        "userIdentity": {"principalId": account_id},
    }
    return {"events": [record]}
