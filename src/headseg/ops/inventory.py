"""A bucket's listing read from its OSS Bucket Inventory, for buckets where even ListObjects is slow
(`--inventory oss://BUCKET/PATH/manifest.json`): the platform's own daily or weekly list of the objects.

What OSS delivers (the Alibaba Cloud OSS docs, "Bucket inventory" [1] and PutBucketInventory [2]):
    <destination bucket>/[<destination prefix>/]<source bucket>/<inventory id>/
        YYYY-MM-DDTHH-MMZ/manifest.json       (the folder is named by the scan's start, in UTC)
        YYYY-MM-DDTHH-MMZ/manifest.checksum   (the MD5 of manifest.json)
        data/<uuid>.csv.gz, <uuid>-1.csv.gz, <uuid>-2.csv.gz ...   (the list, CSV compressed with GZIP, split
                                               into several files when large; each object's row is in one file)
    manifest.json holds creationTimestamp (when the scan started, UNIX time), destinationBucket, fileFormat
    (CSV), fileSchema (the columns, in order), files (the name, size and MD5 of each data file), sourceBucket
    and version. The columns are Bucket, Key, then VersionId, IsLatest, IsDeleteMarker (only in an inventory of
    all versions), then the optional fields the configuration chose, in the order Size, StorageClass,
    LastModifiedDate, ETag, IsMultipartUploaded, EncryptionStatus (oss2's `models.FIELD_*` name the same six).
    The Key is URL-encoded. Objects written after creationTimestamp may be missing and objects deleted since
    may still be listed: the listing is as old as the scan, so its time is logged (and is `Manifest.taken_at`).
    [1] help.aliyun.com/document_detail/163489.html; github.com/AlibabaCloudDocs/oss, "Bucket inventory.md"
    [2] github.com/AlibabaCloudDocs/oss, "API Reference/Bucket operations/Inventory/PutBucketInventory.md"

Where the docs are silent, this reader assumes, and tolerates:
    - a data file's entry in `files` is {"key": full key in the destination bucket, "size": bytes,
      "MD5checksum": hex}, as in S3's inventory, which OSS's mirrors; names are matched without regard to case,
      size and MD5 are checked when given;
    - creationTimestamp is a number or a string of digits, in seconds (milliseconds if it is that large);
    - fileSchema is the column names separated by commas, with or without spaces; the CSV has no header row
      (a first row equal to the column names is skipped); fields may be quoted, a UTF-8 BOM is ignored;
    - the Key is percent-encoded UTF-8, decoded with `unquote_plus` (a "+" is a space, as in form encoding; an
      encoder that writes %20 and %2B reads the same); an undecodable key is an error, never guessed;
    - LastModifiedDate is ISO 8601 (2026-11-30T09:59:12Z, with or without fractional seconds or an offset),
      or epoch digits; empty means unknown (0); the ETag may be quoted and of either case (`normalize_etag`);
    - IsLatest / IsDeleteMarker are True / False: only a latest version that is no delete marker is listed;
    - nothing is said of the rows' order (the docs only number the files: uuid, uuid-1, ...), so it is never
      trusted.

headseg needs Key, Size and ETag: an inventory without Size or ETag is refused with what to enable.

The caller merges this listing with another sorted stream, so it comes out in key order (UTF-8 byte order, the
order of Python's `str`), each key once, in bounded memory whatever the inventory's size: each data file is
streamed and checked (`inventory_rows`), its rows under the prefix sorted in runs of `run_rows`, spilled to disk
beyond that and merged (`external_sort`). Nothing is yielded before every data file has been read and
verified, so a failed check never leaves the caller half a listing. A manifest that is malformed, of another
format or over `MAX_MANIFEST` is a `PermanentError`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from headseg.function.storage import ObjectInfo, Storage
from headseg.ops.external_sort import ExternalSort
from headseg.ops.inventory_rows import DataFile, StreamingStorage, data_file_rows, epoch_seconds, invalid

log = logging.getLogger(__name__)

MAX_MANIFEST = 4 << 20  # bytes: a manifest lists files, not objects (tens of thousands of files fit)
RUN_ROWS = 50_000  # rows sorted in memory at once (about 15 MB); more are spilled to sorted runs on disk
NEEDED = ("Key", "Size", "ETag")

_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
_KINDS = {str: "a string", list: "a list", (str, int): "a number"}


@dataclass(frozen=True)
class Manifest:
    """What manifest.json says of one inventory."""

    key: str
    source_bucket: str
    created: int  # epoch seconds: when OSS started the scan; the listing is as old as that
    columns: tuple[str, ...]
    files: tuple[DataFile, ...]

    @property
    def taken_at(self) -> str:
        """When the scan started, in UTC (ISO 8601)."""
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created))


def parse_location(url: str) -> tuple[str, str]:
    """`oss://bucket/path/manifest.json` -> (bucket, key); `ValueError` saying what is expected otherwise."""
    bucket, _, key = url[len("oss://") :].partition("/")
    if not url.startswith("oss://") or not _BUCKET.fullmatch(bucket) or not key or key.endswith("/"):
        raise ValueError(
            f"{url!r} is not an inventory manifest: expected oss://BUCKET/PATH/manifest.json "
            "(the manifest.json in the inventory's YYYY-MM-DDTHH-MMZ folder)"
        )
    return bucket, key


def read_manifest(storage: Storage, key: str) -> Manifest:
    """The manifest at `key` in `storage` (the bucket that holds the inventory), read within `MAX_MANIFEST`."""
    where = f"inventory manifest oss://{storage.bucket}/{key}"
    info, data = storage.get(key, MAX_MANIFEST + 1)
    if max(info.size, len(data)) > MAX_MANIFEST:
        raise invalid(f"{where} is {max(info.size, len(data))} bytes, over the {MAX_MANIFEST} a manifest is read "
                      "within: is it the inventory's manifest.json?")  # fmt: skip
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except ValueError as exc:  # a JSONDecodeError or a UnicodeDecodeError
        raise invalid(f"{where} is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise invalid(f"{where} is not a JSON object")
    file_format = _field(document, "fileFormat", str, where)
    if file_format.strip().upper() != "CSV":
        raise invalid(f"{where}: fileFormat {file_format!r} is not read here, only CSV")
    columns = tuple(name.strip() for name in _field(document, "fileSchema", str, where).split(","))
    missing = [name for name in NEEDED if name not in columns]
    if missing:
        raise invalid(f"{where}: the inventory has no {' or '.join(missing)} column (fileSchema "
                      f"{', '.join(columns)!r}): add Size, ETag and LastModifiedDate to its optional fields")  # fmt: skip
    files = _field(document, "files", list, where)
    try:
        created = epoch_seconds(str(_field(document, "creationTimestamp", (str, int), where)), "creationTimestamp")
    except ValueError as exc:
        raise invalid(f"{where}: {exc}") from None
    return Manifest(
        key=key,
        source_bucket=_field(document, "sourceBucket", str, where),
        created=created,
        columns=columns,
        files=tuple(_data_file(entry, f"{where}: files[{index}]") for index, entry in enumerate(files)),
    )


def inventory_listing(
    storage: StreamingStorage, manifest_key: str, prefix: str, *, bucket: str | None = None,
    run_rows: int = RUN_ROWS, spill_dir: str | None = None,
) -> Iterator[ObjectInfo]:  # fmt: skip
    """Every object under `prefix` the inventory at `manifest_key` lists, in key order, each once. `storage` is
    the bucket that holds the inventory; with `bucket`, an inventory of any other bucket is refused. The
    manifest is read (and its time logged) now; the data files once iteration starts."""
    manifest = read_manifest(storage, manifest_key)
    if bucket is not None and manifest.source_bucket != bucket:
        raise invalid(f"inventory oss://{storage.bucket}/{manifest_key} lists bucket {manifest.source_bucket!r}, "
                      f"not {bucket!r}")  # fmt: skip
    days = (time.time() - manifest.created) / 86_400
    log.info("listing %s from its inventory oss://%s/%s, taken %s (%.1f days ago): objects written since are not in "
             "it, and objects deleted since still are", manifest.source_bucket, storage.bucket, manifest_key,
             manifest.taken_at, days)  # fmt: skip
    return manifest_listing(storage, manifest, prefix, run_rows=run_rows, spill_dir=spill_dir)


def manifest_listing(
    storage: StreamingStorage, manifest: Manifest, prefix: str, *, run_rows: int = RUN_ROWS,
    spill_dir: str | None = None,
) -> Iterator[ObjectInfo]:  # fmt: skip
    """`inventory_listing` of a manifest already read. Rows beyond `run_rows` are spilled to a temporary folder
    (in `spill_dir` if given), removed when the iteration ends or is abandoned."""
    with ExternalSort(run_rows, spill_dir) as rows:
        for data_file in manifest.files:
            rows.extend(data_file_rows(storage, data_file, manifest.columns, prefix))
        previous = None
        for key, size, etag, modified, version in rows.merged():
            if key == previous:
                raise invalid(f"inventory oss://{storage.bucket}/{manifest.key} lists {key!r} twice")
            previous = key
            yield ObjectInfo(key, size, etag, "", modified, version)


def _data_file(entry: Any, where: str) -> DataFile:
    if not isinstance(entry, Mapping):
        raise invalid(f"{where} is not an object")
    fields = {str(name).lower(): value for name, value in entry.items()}
    key, size, md5 = fields.get("key"), fields.get("size"), fields.get("md5checksum")
    if not isinstance(key, str) or not key:
        raise invalid(f"{where}: no key")
    if size is not None and not (isinstance(size, int) or (isinstance(size, str) and size.isdecimal())):
        raise invalid(f"{where}: size {size!r} is not a number of bytes")
    if md5 is not None and not (isinstance(md5, str) and re.fullmatch(r"[0-9a-fA-F]{32}", md5)):
        raise invalid(f"{where}: MD5checksum {md5!r} is not an MD5 in hex")
    return DataFile(key, None if size is None else int(size), (md5 or "").lower())


def _field(document: Mapping[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = document.get(name)
    if not isinstance(value, kind) or isinstance(value, bool) or value == "":
        raise invalid(f"{where}: {name} is missing or not {_KINDS[kind]}")
    return value
