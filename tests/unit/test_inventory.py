"""Listing from an OSS bucket inventory (`headseg.ops.inventory`): in key order, each key once, in bounded memory,
and nothing handed over before every data file has been read and verified; every way a delivery can be wrong is
a clear error of the right family. Inventories are built as OSS writes them (`tests.fakes.inventory`) into an
in-memory bucket."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from headseg.function.errors import PermanentError, RetriableError
from headseg.function.storage import ObjectInfo
from headseg.ops.external_sort import ExternalSort
from headseg.ops.inventory import MAX_MANIFEST, inventory_listing, parse_location, read_manifest
from tests.fakes.inventory import TAKEN_AT, Listed, build_inventory
from tests.twins import MemoryStorage

SOURCE = "photos"
ODD_KEYS = [
    "incoming/a b.jpg", "incoming/a+b.jpg", "incoming/a,b.jpg", 'incoming/say "cheese".jpg', "incoming/100%.jpg",
    "incoming/照片 1.jpg", "incoming/é.jpg", "incoming/z.jpg", "incoming/😀.png", "incoming/\uffef.jpg",
    "incoming/line\nbreak.jpg", "incoming/tab\t.jpg", "incoming/#?&=;.jpg", "incoming/dir/", "incoming/dir/x.jpg",
    "incoming-other/a.jpg", "heads/incoming/a b.jpg/heads.json", "incomin", "",
]  # fmt: skip


def listed(keys: list[str]) -> list[Listed]:
    return [
        Listed(key, len(key), hashlib.md5(key.encode()).hexdigest().upper(), 1_700_000_000 + i) for i, key in enumerate(keys) if key
    ]


def numbered(count: int, prefix: str = "incoming/") -> list[Listed]:
    return listed([f"{prefix}{i:06d}-{hashlib.md5(str(i).encode()).hexdigest()[:8]}.jpg" for i in range(count)])


def expected(items: list[Listed], prefix: str) -> list[ObjectInfo]:
    return [
        ObjectInfo(item.key, item.size, item.etag, "", item.last_modified, item.version_id)
        for item in sorted(items, key=lambda item: item.key) if item.key.startswith(prefix)
    ]  # fmt: skip


def deliver(storage: MemoryStorage, items: list[Listed], **options: Any) -> str:
    inventory = build_inventory(items, source=SOURCE, destination=storage.bucket, **options)
    storage.objects.update((key, (data, "")) for key, data in inventory.objects.items())
    return inventory.manifest_key


def put_manifest(storage: MemoryStorage, document: dict[str, Any] | bytes, key: str = "inv/photos/id/2025-11-30T10-00Z/manifest.json") -> str:
    storage.objects[key] = (document if isinstance(document, bytes) else json.dumps(document).encode(), "")
    return key


def deliver_csv(
    storage: MemoryStorage, text: str, schema: str = "Bucket, Key, Size, LastModifiedDate, ETag", *,
    data: bytes | None = None, md5: str | None = None, size: int | None = None,
) -> str:  # fmt: skip
    """One data file of `text` (gzip-compressed, unless `data` gives the bytes), and a manifest naming it."""
    data = gzip.compress(text.encode()) if data is None else data
    storage.objects["inv/photos/id/data/f.csv.gz"] = (data, "")
    entry = {"key": "inv/photos/id/data/f.csv.gz", "size": len(data) if size is None else size,
             "MD5checksum": hashlib.md5(data).hexdigest() if md5 is None else md5}  # fmt: skip
    return put_manifest(storage, manifest_document(schema, [entry]))


def manifest_document(schema: str = "Bucket, Key, Size, LastModifiedDate, ETag", files: list[Any] | None = None) -> dict[str, Any]:
    return {"creationTimestamp": "1764496800", "destinationBucket": "twin", "fileFormat": "CSV", "fileSchema": schema,
            "files": [] if files is None else files, "sourceBucket": SOURCE, "version": "2019-09-01"}  # fmt: skip


def listing(storage: MemoryStorage, manifest_key: str, prefix: str = "incoming/", **options: Any) -> list[ObjectInfo]:
    return list(inventory_listing(storage, manifest_key, prefix, **options))


# -- where the inventory is ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("url, location", [
    ("oss://my-inventory/inventory/photos/headseg/2025-11-30T10-00Z/manifest.json",
     ("my-inventory", "inventory/photos/headseg/2025-11-30T10-00Z/manifest.json")),
    ("oss://abc/manifest.json", ("abc", "manifest.json")),
])  # fmt: skip
def test_a_location_names_the_bucket_and_the_manifest_key(url, location):
    assert parse_location(url) == location


@pytest.mark.parametrize("url", [
    "s3://bucket/manifest.json", "bucket/manifest.json", "oss://bucket", "oss://bucket/", "oss://ab/manifest.json",
    "oss://Bucket/manifest.json", "oss://bucket/inventory/2025-11-30T10-00Z/", "oss:///manifest.json", "",
])  # fmt: skip
def test_anything_else_is_refused_saying_what_is_expected(url):
    with pytest.raises(ValueError, match=r"expected oss://BUCKET/PATH/manifest\.json"):
        parse_location(url)


# -- what the listing holds ----------------------------------------------------------------------------------------
def test_the_listing_is_every_object_under_the_prefix_in_key_order_from_several_files(caplog):
    storage = MemoryStorage(bucket="inventory-bucket")
    items = numbered(50) + numbered(10, prefix="heads/incoming/")
    manifest_key = deliver(storage, items, files=4)
    storage.calls.clear()

    with caplog.at_level(logging.INFO, logger="headseg.ops.inventory"):
        got = listing(storage, manifest_key, bucket=SOURCE)

    assert got == expected(items, "incoming/")
    data_keys = [entry["key"] for entry in json.loads(storage.objects[manifest_key][0])["files"]]
    assert len(data_keys) == 4 and storage.calls == [("get", manifest_key)] + [("stream", key) for key in data_keys]
    assert "taken 2025-11-30T10:00:00Z" in caplog.text and "objects written since are not in it" in caplog.text


@pytest.mark.parametrize("order", ["sorted", "shuffled", "reversed"])
@pytest.mark.parametrize("run_rows", [1, 7, 1_000_000])
def test_rows_in_any_order_come_out_sorted_whatever_is_held_in_memory(order, run_rows, tmp_path):
    storage = MemoryStorage()
    items = numbered(300)
    manifest_key = deliver(storage, items, files=5, order=order, seed=run_rows)

    assert listing(storage, manifest_key, run_rows=run_rows, spill_dir=str(tmp_path)) == expected(items, "incoming/")
    assert not any(tmp_path.iterdir())  # the spilled runs are gone


@pytest.mark.parametrize("encode", [lambda key: quote(key, safe="/"), lambda key: quote(key, safe=""), quote_plus],
                         ids=["percent", "percent-slash", "form"])  # fmt: skip
@pytest.mark.parametrize("prefix", ["incoming/", "incoming", "", "incoming/dir/", "nothing/"])
def test_encoded_keys_are_decoded_filtered_by_prefix_and_sorted_in_utf8_byte_order(encode, prefix):
    storage = MemoryStorage()
    items = listed(ODD_KEYS)
    manifest_key = deliver(storage, items, files=3, order="shuffled", encode=encode)

    got = listing(storage, manifest_key, prefix=prefix, run_rows=4)

    assert got == expected(items, prefix)
    keys = [info.key.encode() for info in got]
    assert keys == sorted(keys)


def test_only_the_latest_version_of_each_key_is_listed_and_never_a_delete_marker():
    storage = MemoryStorage()
    items = [
        Listed("incoming/a.jpg", 1, "A" * 32, 100, "v2", is_latest=True),
        Listed("incoming/a.jpg", 1, "B" * 32, 90, "v1", is_latest=False),
        Listed("incoming/b.jpg", 0, "C" * 32, 110, "v4", is_latest=True, delete_marker=True),
        Listed("incoming/b.jpg", 2, "D" * 32, 80, "v3", is_latest=False),
        Listed("incoming/c.jpg", 3, "E" * 32, 70, "null", is_latest=True),
    ]
    manifest_key = deliver(storage, items, versions=True, order="shuffled")

    assert listing(storage, manifest_key) == [
        ObjectInfo("incoming/a.jpg", 1, "A" * 32, "", 100, "v2"), ObjectInfo("incoming/c.jpg", 3, "E" * 32, "", 70, "null"),
    ]  # fmt: skip


def test_a_header_row_quoted_etags_and_each_time_format_are_read():
    storage = MemoryStorage()
    text = "\ufeffBucket,Key,Size,LastModifiedDate,ETag\n" + "\n".join([
        'photos,incoming/a.jpg,1,2025-11-30T09:59:12Z,"""5eb63bbbe01eeed093cb22bb8f5acdc3"""',
        '"photos","incoming/b.jpg","2","2025-11-30T09:59:12.345Z","5EB63BBBE01EEED093CB22BB8F5ACDC3"',
        "photos,incoming/c.jpg,3,2025-11-30T17:59:12+08:00,5eb63bbbe01eeed093cb22bb8f5acdc3",
        "photos,incoming/d.jpg,4,1764496752,5eb63bbbe01eeed093cb22bb8f5acdc3",
        "photos,incoming/e.jpg,5,,5eb63bbbe01eeed093cb22bb8f5acdc3",
    ]) + "\n"  # fmt: skip
    got = listing(storage, deliver_csv(storage, text))

    etag = "5EB63BBBE01EEED093CB22BB8F5ACDC3"
    assert [(info.key, info.etag, info.last_modified) for info in got] == [
        ("incoming/a.jpg", etag, 1764496752), ("incoming/b.jpg", etag, 1764496752), ("incoming/c.jpg", etag, 1764496752),
        ("incoming/d.jpg", etag, 1764496752), ("incoming/e.jpg", etag, 0),
    ]  # fmt: skip


def test_the_manifest_tells_when_the_inventory_was_taken():
    storage = MemoryStorage()
    manifest_key = deliver(storage, numbered(3))
    assert read_manifest(storage, manifest_key).taken_at == "2025-11-30T10:00:00Z"

    document = manifest_document()
    document["creationTimestamp"] = TAKEN_AT * 1000  # milliseconds, and a number
    assert read_manifest(storage, put_manifest(storage, document)).created == TAKEN_AT


def test_an_inventory_without_data_files_lists_nothing():
    storage = MemoryStorage()
    assert listing(storage, put_manifest(storage, manifest_document())) == []


# -- bounded memory ------------------------------------------------------------------------------------------------
def test_rows_beyond_a_run_are_spilled_to_disk_and_removed_after(tmp_path):
    storage = MemoryStorage()
    items = numbered(400)
    shuffled = deliver(storage, items, files=4, order="shuffled")

    rows = inventory_listing(storage, shuffled, "incoming/", run_rows=10, spill_dir=str(tmp_path))
    first = next(rows)
    (folder,) = tmp_path.iterdir()
    assert folder.name.startswith("headseg-sort-") and 1 < len(list(folder.iterdir())) <= 64
    assert [first, *rows] == expected(items, "incoming/")
    assert not any(tmp_path.iterdir())


def test_an_inventory_already_in_key_order_makes_a_single_run_and_an_abandoned_listing_leaves_nothing(tmp_path):
    storage = MemoryStorage()
    items = numbered(400)
    rows = inventory_listing(storage, deliver(storage, items, files=4), "incoming/", run_rows=10, spill_dir=str(tmp_path))
    assert next(rows) == expected(items, "incoming/")[0]
    (folder,) = tmp_path.iterdir()
    assert len(list(folder.iterdir())) == 1
    rows.close()
    assert not any(tmp_path.iterdir())


def test_runs_merge_in_several_levels_when_there_are_more_than_fan_in(tmp_path):
    rows = [(f"k{i:04d}", i, "E", 0, "") for i in range(100)]
    with ExternalSort(run_rows=3, spill_dir=str(tmp_path), fan_in=2) as runs:
        runs.extend(iter(reversed(rows)))  # each chunk precedes the last: 34 runs, merged two at a time
        assert list(runs.merged()) == rows
        assert runs.spilled == 34 + 17 + 9 + 5 + 3 + 2  # the runs, then each level's merged runs but the last


def _peak_while_listing(storage: MemoryStorage, manifest_key: str, run_rows: int, spill_dir: Path) -> int:
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        count, previous = 0, ""
        for info in inventory_listing(storage, manifest_key, "incoming/", run_rows=run_rows, spill_dir=str(spill_dir)):
            assert info.key > previous
            count, previous = count + 1, info.key
        assert count == 20_000
        return tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()


def test_memory_is_bounded_by_the_run_size_not_by_the_inventory(tmp_path):
    storage = MemoryStorage()
    manifest_key = deliver(storage, numbered(20_000), files=8, order="shuffled")

    held_whole = _peak_while_listing(storage, manifest_key, 1_000_000, tmp_path)
    in_runs = _peak_while_listing(storage, manifest_key, 500, tmp_path)

    assert in_runs * 4 < held_whole, (in_runs, held_whole)


# -- what goes wrong -----------------------------------------------------------------------------------------------
def test_a_data_file_whose_md5_differs_is_retriable_and_nothing_is_listed_before():
    storage = MemoryStorage()
    manifest_key = deliver(storage, numbered(30), files=3)
    document = json.loads(storage.objects[manifest_key][0])
    document["files"][2]["MD5checksum"] = "0" * 32
    put_manifest(storage, document, manifest_key)

    rows = inventory_listing(storage, manifest_key, "incoming/")
    with pytest.raises(RetriableError, match=r"its MD5 [0-9a-f]{32} is not the manifest's 0{32}.*read it again") as caught:
        next(rows)
    assert caught.value.code == "InventoryChecksum"


def test_a_data_file_of_another_size_than_listed_is_retriable():
    storage = MemoryStorage()
    with pytest.raises(RetriableError, match="7 bytes arrived, the manifest lists 8"):
        listing(storage, deliver_csv(storage, "", data=b"\x1f\x8b\x08\x00\x00\x00\x00", size=8))


class Flipping(MemoryStorage):
    """A bucket whose reads flip one bit of `key` in transfer (what OSS's CRC64 check catches in OssStorage)."""

    def stream(self, key: str, block: int = 4096) -> Iterator[bytes]:
        for number, data in enumerate(super().stream(key, block)):
            yield bytes([data[0] ^ 0x40]) + data[1:] if number == 0 and key.endswith(".csv.gz") else data


def test_bytes_corrupted_in_transfer_are_retriable_not_a_verdict_on_the_file():
    storage = Flipping()
    manifest_key = deliver(storage, numbered(2_000), files=2)
    with pytest.raises(RetriableError, match="corrupted in transfer"):
        listing(storage, manifest_key)


@pytest.mark.parametrize("damage, message", [
    (lambda data: data[: len(data) // 2], "EOFError: Compressed file ended before the end-of-stream marker"),
    (lambda data: b"PK\x03\x04" + data[4:], "BadGzipFile"),
    (lambda data: data[:20] + bytes(200) + data[220:], "error"),
])  # fmt: skip
def test_a_torn_or_corrupt_gzip_that_verifies_is_a_permanent_error(damage, message):
    storage = MemoryStorage()
    data = damage(gzip.compress("\n".join(f"photos,incoming/{i}.jpg,1,,E" for i in range(3_000)).encode()))
    with pytest.raises(PermanentError, match="not a readable gzip CSV inventory") as caught:
        listing(storage, deliver_csv(storage, "", data=data))
    assert message in str(caught.value) and caught.value.code == "InvalidInventory"


@pytest.mark.parametrize("text, problem", [
    ("photos,incoming/a.jpg,1,,E,extra\n", "6 fields where fileSchema has 5"),
    ("photos,incoming/a.jpg,one,,E\n", "invalid literal for int"),
    ("photos,incoming/a.jpg,1,yesterday,E\n", "LastModifiedDate 'yesterday' is neither ISO 8601 nor epoch seconds"),
    ("photos,incoming/%FF.jpg,1,,E\n", "can't decode byte 0xff"),
])  # fmt: skip
def test_a_row_that_does_not_fit_the_schema_is_a_permanent_error(text, problem):
    storage = MemoryStorage()
    with pytest.raises(PermanentError, match="not a readable gzip CSV inventory") as caught:
        listing(storage, deliver_csv(storage, "photos,incoming/0.jpg,1,,E\n" + text))
    assert problem in str(caught.value) and "after row 1" in str(caught.value)


def test_a_key_listed_twice_is_refused():
    storage = MemoryStorage()
    items = numbered(5)
    with pytest.raises(PermanentError, match="lists 'incoming/000002-.*' twice"):
        listing(storage, deliver(storage, items + items[2:3], files=2))


def test_an_inventory_of_another_bucket_is_refused():
    storage = MemoryStorage()
    with pytest.raises(PermanentError, match="lists bucket 'photos', not 'other'"):
        inventory_listing(storage, deliver(storage, numbered(3)), "incoming/", bucket="other")


class Measured(MemoryStorage):
    """A bucket that records how many bytes each `get` asked for."""

    lengths: list[int | None] = []

    def get(self, key: str, length: int | None = None, budget: object = None) -> tuple[ObjectInfo, bytes]:
        self.lengths.append(length)
        return super().get(key, length, budget)


def test_a_manifest_over_the_limit_is_refused_after_a_bounded_read():
    storage = Measured()
    storage.lengths = []
    key = put_manifest(storage, b" " * (MAX_MANIFEST + 10) + json.dumps(manifest_document()).encode())
    with pytest.raises(PermanentError, match=rf"is {MAX_MANIFEST + 10 + len(json.dumps(manifest_document()))} bytes, "
                                             "over the .* a manifest is read within"):  # fmt: skip
        read_manifest(storage, key)
    assert storage.lengths == [MAX_MANIFEST + 1]


def _without(name: str) -> dict[str, Any]:
    document = manifest_document()
    del document[name]
    return document


@pytest.mark.parametrize("document, message", [
    (b"<xml/>", "is not JSON"),
    (b"[]", "is not a JSON object"),
    (_without("fileFormat"), "fileFormat is missing or not a string"),
    (_without("fileSchema"), "fileSchema is missing or not a string"),
    (_without("files"), "files is missing or not a list"),
    (_without("sourceBucket"), "sourceBucket is missing or not a string"),
    (_without("creationTimestamp"), "creationTimestamp is missing or not a number"),
    ({**manifest_document(), "creationTimestamp": "last week"}, "creationTimestamp 'last week' is neither"),
    ({**manifest_document(), "fileFormat": "ORC"}, "fileFormat 'ORC' is not read here, only CSV"),
    ({**manifest_document("Bucket, Key, Size, StorageClass"), "files": []},
     "no ETag column .*add Size, ETag and LastModifiedDate to its optional fields"),
    (manifest_document("Bucket, Key"), "no Size or ETag column"),
    (manifest_document(files=["f.csv.gz"]), r"files\[0\] is not an object"),
    (manifest_document(files=[{"size": 3}]), r"files\[0\]: no key"),
    (manifest_document(files=[{"key": "f", "size": "big"}]), "size 'big' is not a number of bytes"),
    (manifest_document(files=[{"key": "f", "MD5checksum": "abc"}]), "MD5checksum 'abc' is not an MD5 in hex"),
])  # fmt: skip
def test_a_malformed_manifest_is_a_permanent_error_saying_what_is_wrong(document, message):
    storage = MemoryStorage()
    with pytest.raises(PermanentError, match=message) as caught:
        read_manifest(storage, put_manifest(storage, document))
    assert caught.value.code == "InvalidInventory" and "inventory manifest oss://twin/inv/photos/" in str(caught.value)
