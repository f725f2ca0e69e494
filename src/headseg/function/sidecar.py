"""The JSON records headseg writes beside the cutouts: the sidecar (a result) and the error record.

Both carry `schema_version`. A record is read back through one bounded parser: at most MAX_RECORD_BYTES, JSON
of any depth the parser survives, then every field checked against its type before anything trusts it. A
record of another version, too large, or of any other shape reads back as None (the source is then redone).
Where they are stored is `layout.Layout`; when they mean "done" is `results.settled`.
"""

from __future__ import annotations

import dataclasses
import json
import time
import types
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

SCHEMA_VERSION = 1
MAX_RECORD_BYTES = 1024 * 1024  # a sidecar of 100 heads takes ~30 KB; anything far larger was not written by us
MAX_ITEMS = 1000  # entries in any list or object of a record
T = TypeVar("T")


@dataclass(frozen=True)
class Source:
    bucket: str
    key: str
    etag: str
    size: int
    width: int | None = None
    height: int | None = None
    last_modified: int = 0  # epoch seconds, as OSS reported it when the source was read (0: not recorded)
    version_id: str = ""  # in a versioned bucket


@dataclass(frozen=True)
class HeadRecord:
    """One head: box in the source image's pixel coordinates (upright, full size) and the key of its cutout."""

    index: int
    key: str
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Sidecar:
    """The result of one source at one eTag."""

    source: Source
    request_id: str
    return_form: str | None
    engine: str
    heads: list[HeadRecord]
    normalization: dict[str, Any] | None = None  # what was done so SegmentHead would take the image
    timings_ms: dict[str, float] = field(default_factory=dict)
    created_at: str = ""
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> bytes:
        return _dump(asdict(self))

    @classmethod
    def from_json(cls, data: bytes) -> Sidecar | None:
        """The sidecar in `data`, or None when it is unreadable or of another schema (then it is redone)."""
        return load(cls, data)


@dataclass(frozen=True)
class ErrorRecord:
    """Why a source failed. A permanent error for an eTag means done; a retriable one does not."""

    source: Source
    code: str
    reason: str
    retriable: bool
    request_id: str = ""  # FC's request id of the invocation that failed
    created_at: str = ""
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> bytes:
        return _dump(asdict(self))

    @classmethod
    def from_json(cls, data: bytes) -> ErrorRecord | None:
        """The error record in `data`, or None when it is unreadable or of another schema."""
        return load(cls, data)


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class _Invalid(ValueError):
    """A record's JSON does not have the record's shape."""


def load(cls: type[T], data: bytes) -> T | None:
    """The record of type `cls` in `data`: None when it is over MAX_RECORD_BYTES, not UTF-8 JSON, nested deeper
    than the parser takes, of another schema version, or when any field is missing or of another type."""
    if len(data) > MAX_RECORD_BYTES:
        return None
    try:
        raw = json.loads(data)
        if not isinstance(raw, dict) or _checked(int, raw.get("schema_version"), "schema_version") != SCHEMA_VERSION:
            return None
        return _build(cls, raw)
    except (ValueError, RecursionError):  # json's and _Invalid (a ValueError); UnicodeDecodeError is one too
        return None


def _build(cls: type[T], raw: object) -> T:
    """An instance of the dataclass `cls` from a JSON object, each field checked against its annotation
    (unknown keys are ignored; a missing field takes its default, or fails when it has none)."""
    if not isinstance(raw, dict):
        raise _Invalid(f"{cls.__name__} must be an object")
    hints = get_type_hints(cls)
    values = {}
    for spec in dataclasses.fields(cls):  # type: ignore[arg-type]
        if spec.name in raw:
            values[spec.name] = _checked(hints[spec.name], raw[spec.name], spec.name)
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise _Invalid(f"{cls.__name__}.{spec.name} is missing")
    return cls(**values)


def _checked(kind: Any, value: Any, name: str) -> Any:
    """`value` if it is of the annotated `kind` (JSON types only: bool is no int), else `_Invalid`."""
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        for option in get_args(kind):
            try:
                return _checked(option, value, name)
            except _Invalid:
                continue
        raise _Invalid(f"{name} is of none of {kind}")
    if kind is Any:
        return value
    if origin is list:
        if not isinstance(value, list) or len(value) > MAX_ITEMS:
            raise _Invalid(f"{name} must be a list of at most {MAX_ITEMS}")
        return [_checked(get_args(kind)[0], item, name) for item in value]
    if origin is dict:
        if not isinstance(value, dict) or len(value) > MAX_ITEMS:
            raise _Invalid(f"{name} must be an object of at most {MAX_ITEMS} entries")
        return {key: _checked(get_args(kind)[1], item, f"{name}.{key}") for key, item in value.items()}
    if dataclasses.is_dataclass(kind):
        return _build(kind, value)  # type: ignore[arg-type]
    ok = {
        type(None): value is None,
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(kind)
    if not ok:
        raise _Invalid(f"{name} must be {getattr(kind, '__name__', kind)}")
    return value


def _dump(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False).encode("utf-8") + b"\n"
