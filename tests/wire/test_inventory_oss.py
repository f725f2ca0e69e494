"""Listing from an OSS bucket inventory over the wire: the real oss2 reads the manifest (one bounded, ranged GET)
and the data files the fake OSS delivered like any object, and the listing is what ListObjects says of the
bucket: the same keys, sizes, eTags and modification times, in the same order. Bytes corrupted or cut off in
transfer are retriable, and a second read lists the bucket whole."""

from __future__ import annotations

import pytest

from headseg.function.credentials import Credentials
from headseg.function.errors import RetriableError
from headseg.function.storage.oss import OssStorage
from headseg.ops.inventory import MAX_MANIFEST, inventory_listing, parse_location
from tests.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, BUCKET, SECURITY_TOKEN
from tests.fakes._server import Fault, Request
from tests.fakes.oss import FakeOss

INVENTORIES = "headseg-inventory"
KEYS = [
    *(f"incoming/{i // 100:02d}/{i:05d}.jpg" for i in range(1_200)),
    "incoming/a b.jpg", "incoming/a+b.jpg", "incoming/a,b.jpg", 'incoming/say "cheese".jpg', "incoming/100%.jpg",
    "incoming/照片 1.jpg", "incoming/é.jpg", "incoming/😀.png", "incoming/#?&=;.jpg", "incoming/dir/",
    "incoming-other/a.jpg", "heads/incoming/00/00000.jpg/heads.json",
]  # fmt: skip


def oss(fake_oss: FakeOss, bucket: str) -> OssStorage:
    credentials = Credentials(ACCESS_KEY_ID, ACCESS_KEY_SECRET, SECURITY_TOKEN)
    return OssStorage(bucket, endpoint=fake_oss.url, credentials=credentials, region="cn-shanghai")


@pytest.fixture
def delivered(fake_oss: FakeOss) -> str:
    """The bucket's objects (modified at different times), and its inventory, in another bucket, in no order;
    the inventory's location as `--inventory` names it."""
    for number, key in enumerate(KEYS):
        fake_oss.put(BUCKET, key, f"object {number}".encode() * (number % 7))
        stored = fake_oss.object(BUCKET, key)
        assert stored is not None
        stored.last_modified = 1_764_000_000 + number * 37
    inventory = fake_oss.put_inventory(BUCKET, INVENTORIES, files=5, order="shuffled")
    return f"oss://{INVENTORIES}/{inventory.manifest_key}"


def _data_file_reads(request: Request) -> bool:
    return request.method == "GET" and request.path.endswith(".csv.gz")


@pytest.mark.parametrize("prefix", ["incoming/", ""])
def test_the_inventory_lists_what_listobjects_lists(fake_oss: FakeOss, delivered: str, prefix: str):
    bucket, manifest_key = parse_location(delivered)
    fake_oss.requests.clear()

    listed = list(inventory_listing(oss(fake_oss, bucket), manifest_key, prefix, bucket=BUCKET, run_rows=100))

    assert listed == list(oss(fake_oss, BUCKET).list(prefix))
    assert len(listed) == len([key for key in KEYS if key.startswith(prefix)])
    manifest_read, *data_reads = fake_oss.logged(FakeOss.match(bucket=INVENTORIES))
    assert FakeOss.match("GET", bucket, manifest_key)(manifest_read.request) and manifest_read.status == 206
    assert manifest_read.request.header("range") == f"bytes=0-{MAX_MANIFEST}"
    assert len(data_reads) == 5 and all(_data_file_reads(read.request) and read.status == 200 for read in data_reads)


@pytest.mark.parametrize("fault", [Fault("corrupt", _data_file_reads), Fault("cut", _data_file_reads, chunk=300)],
                         ids=["corrupt", "cut"])  # fmt: skip
def test_bytes_spoiled_in_transfer_are_retriable_and_the_next_read_is_whole(fake_oss: FakeOss, delivered: str, fault: Fault):
    bucket, manifest_key = parse_location(delivered)
    storage = oss(fake_oss, bucket)
    fake_oss.inject(fault)

    with pytest.raises(RetriableError):
        list(inventory_listing(storage, manifest_key, "incoming/"))
    assert fault.hits == 1
    assert list(inventory_listing(storage, manifest_key, "incoming/")) == list(oss(fake_oss, BUCKET).list("incoming/"))
