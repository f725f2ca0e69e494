"""An OSS bucket inventory as OSS delivers one (the format and its sources: `headseg.ops.inventory`), built from a
list of objects: GZIP-compressed CSV data files `<uuid>.csv.gz`, `<uuid>-1.csv.gz`, ... under
`<prefix>/<source>/<id>/data/`, and `manifest.json` with its `manifest.checksum` under
`<prefix>/<source>/<id>/<YYYY-MM-DDTHH-MMZ>/`. What the docs leave open is a parameter, so tests can vary it:
the order of the rows, how keys are encoded, a header row, which optional fields are exported, versions.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import random
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

# The optional fields PutBucketInventory accepts, in the order the docs list an inventory's columns.
OPTIONAL_FIELDS = ("Size", "StorageClass", "LastModifiedDate", "ETag", "IsMultipartUploaded", "EncryptionStatus")
TAKEN_AT = 1_764_496_800  # 2025-11-30T10:00:00Z


@dataclass(frozen=True)
class Listed:
    """One row: an object (or, in an inventory of all versions, one version of it)."""

    key: str
    size: int
    etag: str  # upper-case hex, unquoted
    last_modified: int  # epoch seconds
    version_id: str = ""
    is_latest: bool = True
    delete_marker: bool = False


@dataclass(frozen=True)
class Inventory:
    manifest_key: str
    objects: dict[str, bytes]  # what to store in the destination bucket, by key

    @property
    def data_keys(self) -> list[str]:
        return [key for key in self.objects if key.endswith(".csv.gz")]


def build_inventory(
    listed: Sequence[Listed],
    *,
    source: str,
    destination: str,
    prefix: str = "inventory",
    inventory_id: str = "headseg",
    files: int = 3,
    fields: Sequence[str] = OPTIONAL_FIELDS,
    versions: bool = False,
    order: Literal["sorted", "shuffled", "reversed"] = "sorted",
    seed: int = 0,
    encode: Callable[[str], str] = lambda key: quote(key, safe="/"),
    header: bool = False,
    taken_at: int = TAKEN_AT,
) -> Inventory:
    """The objects OSS writes for an inventory of `listed` (bucket `source`) into bucket `destination`: the rows
    split over `files` data files in `order` (sorted: each file a key range, in order), each key `encode`d."""
    rows = sorted(listed, key=lambda item: (item.key, not item.is_latest))
    if order == "shuffled":
        random.Random(seed).shuffle(rows)
    elif order == "reversed":
        rows.reverse()
    columns = ["Bucket", "Key", *(("VersionId", "IsLatest", "IsDeleteMarker") if versions else ()), *fields]
    root = f"{prefix}/{source}/{inventory_id}" if prefix else f"{source}/{inventory_id}"
    name = uuid.UUID(int=random.Random(seed).getrandbits(128))
    count = max(1, min(files, len(rows)))
    objects: dict[str, bytes] = {}
    entries = []
    for index in range(count):
        part = rows[len(rows) * index // count : len(rows) * (index + 1) // count]
        key = f"{root}/data/{name}{f'-{index}' if index else ''}.csv.gz"
        objects[key] = gzip.compress(_csv(columns if header else None, (_row(item, source, columns, encode) for item in part)), mtime=0)
        entries.append({"MD5checksum": hashlib.md5(objects[key]).hexdigest().upper(), "key": key, "size": len(objects[key])})
    manifest = json.dumps({
        "creationTimestamp": str(taken_at), "destinationBucket": destination, "fileFormat": "CSV",
        "fileSchema": ", ".join(columns), "files": entries, "sourceBucket": source, "version": "2019-09-01",
    }, indent=4).encode()  # fmt: skip
    folder = f"{root}/{time.strftime('%Y-%m-%dT%H-%MZ', time.gmtime(taken_at))}"
    objects[f"{folder}/manifest.json"] = manifest
    objects[f"{folder}/manifest.checksum"] = hashlib.md5(manifest).hexdigest().encode()
    return Inventory(f"{folder}/manifest.json", objects)


def _row(item: Listed, bucket: str, columns: Sequence[str], encode: Callable[[str], str]) -> list[str]:
    values = {
        "Bucket": bucket, "Key": encode(item.key), "VersionId": item.version_id, "IsLatest": str(item.is_latest),
        "IsDeleteMarker": str(item.delete_marker), "Size": str(item.size), "StorageClass": "Standard",
        "LastModifiedDate": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(item.last_modified)), "ETag": item.etag,
        "IsMultipartUploaded": "False", "EncryptionStatus": "False",
    }  # fmt: skip
    return [values[column] for column in columns]


def _csv(header: Sequence[str] | None, rows: Iterable[list[str]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue().encode("utf-8")
