"""Storage: the bucket as headseg sees it. Two twins behind one protocol: OSS (oss2) and a local directory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol

from headseg.retry import Budget

MAX_KEY_BYTES = 1023  # OSS's limit on object names, in UTF-8 bytes


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing or a read tells about an object. `etag` is unquoted, upper case."""

    key: str
    size: int
    etag: str
    content_type: str = ""


class Storage(Protocol):
    """A bucket. Methods raise `ObjectNotFound`, `RetriableError` (transient) or `PermanentError`; those that
    take a `budget` bound their network time by it."""

    bucket: str

    def get(self, key: str, length: int | None = None, budget: Budget | None = None) -> tuple[ObjectInfo, bytes]:
        """The object's info and its first `length` bytes (all of them when `length` is None). With a budget,
        the client's timeouts come from it and the body must arrive before its deadline."""
        ...

    def head(self, key: str, budget: Budget | None = None) -> ObjectInfo:
        ...

    def put(self, key: str, data: bytes, content_type: str, budget: Budget | None = None) -> None:
        ...

    def delete(self, key: str, budget: Budget | None = None) -> None:
        """Delete the object; deleting a missing object is not an error."""
        ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under `prefix`, in key order, paginated as needed."""
        ...

    def signed_url(self, key: str, expires: int, public: bool = False) -> str:
        """A URL that lets its holder GET the object for `expires` seconds."""
        ...


__all__ = ["MAX_KEY_BYTES", "ObjectInfo", "Storage"]
