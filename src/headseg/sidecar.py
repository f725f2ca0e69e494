"""Output layout and the JSON sidecars: where cutouts go, what the result records, how "done" is read back.

For a source `incoming/a.jpg` at eTag 688A7BF4… and OUTPUT_PREFIX `heads/`:
    heads/incoming/a.jpg/head-0-688a7bf4.png ...   one cutout (or mask) per head, as SegmentHead ordered them
    heads/incoming/a.jpg/heads.json                the sidecar, written last: its presence for an eTag means done
    heads/incoming/a.jpg/error.json                the error sidecar of a failed attempt (permanent or retriable)

Cutout names carry the source's eTag, so runs on two versions of one object never overwrite each other's
cutouts: the sidecar alone says which set is current, and the previous set is deleted after it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, TypeVar

from headseg.errors import PermanentError

SCHEMA_VERSION = 1
SIDECAR_NAME = "heads.json"
ERROR_NAME = "error.json"
MAX_KEY_BYTES = 1023
T = TypeVar("T")


@dataclass(frozen=True)
class Layout:
    """The output keys of one source object."""

    output_prefix: str
    source_key: str

    def __post_init__(self) -> None:
        longest = self.cutout(99, "0" * 32)
        if len(longest.encode("utf-8")) > MAX_KEY_BYTES:
            raise PermanentError(
                f"output keys for {self.source_key!r} would exceed OSS's {MAX_KEY_BYTES}-byte key limit; "
                "use a shorter key or OUTPUT_PREFIX",
                code="KeyTooLong",
            )

    @property
    def folder(self) -> str:
        return f"{self.output_prefix}{self.source_key}/"

    def cutout(self, index: int, etag: str) -> str:
        return f"{self.folder}head-{index}-{etag[:8].lower()}.png"

    @property
    def sidecar(self) -> str:
        return self.folder + SIDECAR_NAME

    @property
    def error(self) -> str:
        return self.folder + ERROR_NAME


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

    def is_done_for(self, etag: str, return_form: str | None) -> bool:
        return self.source.etag == etag and self.return_form == return_form


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
