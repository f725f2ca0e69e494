"""OSS trigger events: the raw bytes FC passes, parsed into typed, validated records.

Only this module looks inside the event's JSON. A malformed event raises `MalformedEvent` with a message that
says what is wrong; a well-formed event of another kind becomes an `OtherRecord` that the pipeline skips.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Mapping, Union
from urllib.parse import unquote_plus

from headseg.errors import MalformedEvent
from headseg.storage import MAX_KEY_BYTES

#: The event names OSS sends when an object is created (prefixed by "ObjectCreated:").
OBJECT_CREATED_KINDS = frozenset(
    {"PutObject", "PostObject", "CompleteMultipartUpload", "PutSymlink", "CopyObject", "AppendObject"}
)
MAX_EVENT_BYTES = 256 * 1024  # FC's async payload limit is 128 KB: anything larger is not an OSS event
MAX_RECORDS = 100


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
        """The key as given, then its `unquote_plus` form if different.

        Whether OSS URL-encodes keys in events is unverified, so a key that is not found as given is tried
        decoded before the object counts as missing.
        """
        decoded = unquote_plus(self.key)
        return [self.key] if decoded == self.key else [self.key, decoded]


@dataclass(frozen=True)
class OtherRecord:
    """A record headseg does not act on (another event kind); logged and skipped."""

    event_name: str
    key: str = ""


Record = Union[ObjectCreated, OtherRecord]


def parse_event(raw: bytes | str | Mapping[str, Any]) -> list[Record]:
    """Parse an OSS trigger event (bytes of JSON, as FC passes it) into its records."""
    if isinstance(raw, (bytes, bytearray, str)):
        if len(raw) > MAX_EVENT_BYTES:
            raise MalformedEvent(f"event is {len(raw)} bytes, over the {MAX_EVENT_BYTES}-byte limit of an OSS event")
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedEvent(f"event is not JSON: {exc}") from None
    else:
        document = raw
    if not isinstance(document, Mapping):
        raise MalformedEvent(f"event must be a JSON object with 'events', got {type(document).__name__}")
    events = document.get("events")
    if not isinstance(events, list) or not events:
        raise MalformedEvent("event has no 'events' list: is this an OSS trigger event?")
    if len(events) > MAX_RECORDS:
        raise MalformedEvent(f"event has {len(events)} records, over the limit of {MAX_RECORDS}")
    return [_parse_record(i, record) for i, record in enumerate(events)]


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
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise MalformedEvent(f"{where}.oss.object.key is longer than OSS's {MAX_KEY_BYTES}-byte limit")
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
