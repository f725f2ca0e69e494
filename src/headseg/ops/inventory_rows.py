"""The rows of one OSS inventory data file (the format: `headseg.ops.inventory`), streamed: its bytes are
checked against the manifest's size and MD5 as they pass, gunzipped and read as CSV a block at a time, so a file
of GBs is never held. A size or MD5 mismatch (or OSS's CRC64, checked by `stream`) is a `RetriableError`: the
bytes were spoiled in transfer, or the file changed since the manifest was written. A file that is not a whole,
readable gzip CSV of the manifest's columns is a `PermanentError`, but only once its bytes have passed those
checks: on a decoding error the rest is read and checked first, so a bit flipped in transfer is never taken for
a broken file.
"""

from __future__ import annotations

import calendar
import csv
import gzip
import hashlib
import io
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote_plus

from headseg.function.errors import PermanentError, RetriableError
from headseg.function.events import normalize_etag
from headseg.function.storage import Storage

INVALID = "InvalidInventory"  # the code of a malformed manifest or data file
CHECKSUM = "InventoryChecksum"  # the code of a data file whose bytes fail the manifest's size or MD5

Row = tuple[str, int, str, int, str]  # key, size, eTag, last modified (epoch s), version id
_ISO_8601 = re.compile(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.\d+)?(Z|[+-]\d\d:?\d\d)?", re.IGNORECASE)


class StreamingStorage(Storage, Protocol):
    """A bucket that also hands an object over block by block (`OssStorage` does)."""

    def stream(self, key: str) -> Iterator[bytes]:
        """The whole object, block by block, verified after the last block (`RetriableError` if it is not)."""
        ...


@dataclass(frozen=True)
class DataFile:
    """One data file the manifest names: its key in the destination bucket, and its size and MD5 if given."""

    key: str
    size: int | None
    md5: str  # lower-case hex, "" when the manifest gives none


def data_file_rows(storage: StreamingStorage, data_file: DataFile, columns: tuple[str, ...], prefix: str) -> Iterator[Row]:
    """The rows of `data_file` (whose columns are `columns`) that describe a current object under `prefix`."""
    where = f"inventory data file oss://{storage.bucket}/{data_file.key}"
    raw = _Verified(storage.stream(data_file.key), data_file, where)
    parse = _parser(columns, prefix)
    done = 0  # rows read whole
    try:
        text = io.TextIOWrapper(gzip.GzipFile(fileobj=raw, mode="rb"), encoding="utf-8-sig", newline="")
        for fields in csv.reader(text):
            row = None if done == 0 and tuple(fields) == columns else parse(fields)  # a header (undocumented)
            done += 1
            if row is not None:
                yield row
        raw.drain()
    except (OSError, EOFError, zlib.error, csv.Error, ValueError) as exc:  # gzip's BadGzipFile is an OSError
        raw.drain()  # bytes that fail their checks are a transfer's fault (retriable), not the file's
        raise invalid(f"{where} is not a readable gzip CSV inventory ({type(exc).__name__}: {exc}; after row "
                      f"{done})") from None  # fmt: skip


def epoch_seconds(text: str, what: str) -> int:
    """Epoch seconds from ISO 8601 or epoch digits (seconds, or milliseconds when that large); "" is 0."""
    text = text.strip()
    if not text:
        return 0
    if text.isdecimal():
        value = int(text)
        return value // 1000 if value > 10**11 else value
    match = _ISO_8601.fullmatch(text)
    if match is None:
        raise ValueError(f"{what} {text!r} is neither ISO 8601 nor epoch seconds")
    *parts, zone = match.groups()
    offset = 0
    if zone and zone.upper() != "Z":
        digits = zone[1:].replace(":", "")
        offset = (-1 if zone[0] == "-" else 1) * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return calendar.timegm(tuple(int(part) for part in parts)) - offset


def invalid(message: str) -> PermanentError:
    return PermanentError(message, code=INVALID)


def _parser(columns: tuple[str, ...], prefix: str) -> Callable[[list[str]], Row | None]:
    """Reads one CSV row into a `Row`: None if its key is not under `prefix` or it is no current object."""
    at = {name: index for index, name in enumerate(columns)}
    key_at, size_at, etag_at = at["Key"], at["Size"], at["ETag"]
    modified_at, version_at = at.get("LastModifiedDate"), at.get("VersionId")
    latest_at, marker_at = at.get("IsLatest"), at.get("IsDeleteMarker")

    def parse(fields: list[str]) -> Row | None:
        if len(fields) != len(columns):
            raise ValueError(f"{len(fields)} fields where fileSchema has {len(columns)}")
        key = unquote_plus(fields[key_at], errors="strict")
        if not key.startswith(prefix):
            return None
        if (latest_at is not None and fields[latest_at].lower() != "true") or (
            marker_at is not None and fields[marker_at].lower() == "true"
        ):
            return None
        modified = 0 if modified_at is None else epoch_seconds(fields[modified_at], "LastModifiedDate")
        version = "" if version_at is None else fields[version_at]
        return key, int(fields[size_at]), normalize_etag(fields[etag_at]), modified, version

    return parse


class _Verified(io.RawIOBase):
    """A data file's bytes as a file, checked against the manifest's size and MD5 once they end."""

    def __init__(self, blocks: Iterator[bytes], data_file: DataFile, where: str) -> None:
        super().__init__()
        self._blocks, self._file, self._where = blocks, data_file, where
        self._digest = hashlib.md5(usedforsecurity=False)
        self._received = 0
        self._pending = memoryview(b"")
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            if self._ended:
                return 0
            block = next(self._blocks, b"")
            if not block:
                self._ended = True
                self._check()
                return 0
            self._digest.update(block)
            self._received += len(block)
            self._pending = memoryview(block)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def drain(self) -> None:
        """Read (and check) whatever is left."""
        buffer = bytearray(1 << 16)
        while self.readinto(buffer):
            pass

    def _check(self) -> None:
        expected = self._file.size
        if expected is not None and self._received != expected:
            raise RetriableError(f"{self._where}: {self._received} bytes arrived, the manifest lists {expected}: "
                                 "read the inventory again", code=CHECKSUM)  # fmt: skip
        digest = self._digest.hexdigest()
        if self._file.md5 and digest != self._file.md5:
            raise RetriableError(f"{self._where}: its MD5 {digest} is not the manifest's {self._file.md5} (corrupted "
                                 "in transfer, or changed since the manifest was written): read it again",
                                 code=CHECKSUM)  # fmt: skip
