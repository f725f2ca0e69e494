"""Storage: the bucket as headseg sees it. Two twins behind one protocol: OSS (oss2) and a local directory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from headseg.function.retry import Budget

MAX_KEY_BYTES = 1023  # OSS's limit on object names, in UTF-8 bytes


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing or a read tells about an object. `etag` is unquoted, upper case; `last_modified` is in
    epoch seconds (0: unknown); `version_id` is set only in a versioned bucket."""

    key: str
    size: int
    etag: str
    content_type: str = ""
    last_modified: int = 0
    version_id: str = ""

    def is_version_of(self, other: ObjectInfo) -> bool:
        """Whether both describe the same version (a value either does not know is not compared)."""
        return self.etag == other.etag and all(
            not (mine and theirs) or mine == theirs
            for mine, theirs in ((self.last_modified, other.last_modified), (self.version_id, other.version_id))
        )


class Storage(Protocol):
    """A bucket. Methods raise `ObjectNotFound`, `RetriableError` (transient) or `PermanentError`; those that
    take a `budget` bound their network time by it."""

    bucket: str

    def get(self, key: str, length: int | None = None, budget: Budget | None = None) -> tuple[ObjectInfo, bytes]:
        """The object's info and its first `length` bytes (all of them when `length` is None). With a budget,
        the client's timeouts come from it and the body must arrive before its deadline.

        Bytes that cover the whole object are verified (OSS's CRC64, or the file itself): a mismatch, or a body
        cut short, raises `RetriableError`. A partial read cannot be verified: judge content only on whole reads.
        """
        ...

    def head(self, key: str, budget: Budget | None = None) -> ObjectInfo:
        ...

    def put(self, key: str, data: bytes, content_type: str, budget: Budget | None = None) -> None:
        ...

    def delete(self, key: str, budget: Budget | None = None) -> None:
        """Delete the object; deleting a missing object is not an error."""
        ...

    def list(self, prefix: str, delimiter: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        """Every object under `prefix` whose key sorts strictly after `start_after`, in key order (OSS's: UTF-8
        bytes, which is code-point order for a `str`), paginated as needed; with `delimiter` "/", only those
        directly in the folder `prefix` (none in its subfolders)."""
        ...

    def signed_url(self, key: str, expires: int, public: bool = False, version_id: str = "") -> str:
        """A URL that lets its holder GET the object (that version of it, in a versioned bucket) for `expires`
        seconds."""
        ...


__all__ = ["MAX_KEY_BYTES", "ObjectInfo", "Storage"]
