"""The JSON records headseg writes beside the cutouts: the sidecar (a result) and the error record.

Both carry `schema_version`; a record of another version, or one that does not parse, reads back as None (the
source is then redone). Where they are stored is `layout.Layout`; when they mean "done" is `results.settled`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, TypeVar

SCHEMA_VERSION = 1
T = TypeVar("T")


@dataclass(frozen=True)
class Source:
    bucket: str
    key: str
    etag: str
    size: int
    width: int | None = None
    height: int | None = None


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
    def from_json(cls, data: bytes) -> "Sidecar | None":
        """The sidecar in `data`, or None when it is unreadable or of another schema (then it is redone)."""
        return _load(
            data,
            lambda raw: cls(
                source=Source(**raw["source"]),
                request_id=raw["request_id"],
                return_form=raw["return_form"],
                engine=raw["engine"],
                heads=[HeadRecord(**head) for head in raw["heads"]],
                normalization=raw.get("normalization"),
                timings_ms=raw.get("timings_ms", {}),
                created_at=raw.get("created_at", ""),
            ),
        )


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
    def from_json(cls, data: bytes) -> "ErrorRecord | None":
        return _load(
            data,
            lambda raw: cls(
                source=Source(**raw["source"]),
                code=raw["code"],
                reason=raw["reason"],
                retriable=bool(raw["retriable"]),
                request_id=raw.get("request_id", ""),
                created_at=raw.get("created_at", ""),
            ),
        )


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _load(data: bytes, build: Callable[[dict[str, Any]], T]) -> T | None:
    """`build(raw)` for a JSON record of this schema version; None when unreadable or of another version."""
    try:
        raw = json.loads(data)
        if not isinstance(raw, dict) or raw.get("schema_version") != SCHEMA_VERSION:
            return None
        return build(raw)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _dump(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False).encode("utf-8") + b"\n"
