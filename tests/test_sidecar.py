import json

import pytest

from headseg.errors import PermanentError
from headseg.sidecar import ErrorRecord, HeadRecord, Layout, Sidecar, Source

SOURCE = Source("b", "incoming/a.jpg", "ETAG", 10, 40, 50)


def test_layout_keys():
    layout = Layout("heads/", "incoming/团队/a b.jpg")
    assert layout.cutout(2, "688A7BF4F233DC9C88A80BF985AB7329") == "heads/incoming/团队/a b.jpg/head-2-688a7bf4.png"
    assert layout.sidecar == "heads/incoming/团队/a b.jpg/heads.json"
    assert layout.error == "heads/incoming/团队/a b.jpg/error.json"


def test_keys_over_the_oss_limit_are_a_permanent_error():
    with pytest.raises(PermanentError, match="1023-byte key limit"):
        Layout("heads/", "incoming/" + "长" * 340)


def test_sidecar_round_trip_and_done_check():
    sidecar = Sidecar(
        SOURCE, "req", None, "cloud", [HeadRecord(0, "k", 1, 2, 3, 4)], {"steps": ["EXIF orientation 6 applied"]},
        {"total": 1.0}, "now",
    )
    loaded = Sidecar.from_json(sidecar.to_json())
    assert loaded == sidecar
    assert loaded.is_done_for("ETAG", None) and not loaded.is_done_for("OTHER", None)
    assert not loaded.is_done_for("ETAG", "mask")


def test_error_record_round_trip():
    record = ErrorRecord(SOURCE, "InvalidImage.Corrupt", "corrupt JPEG", False, "req", "now")
    assert ErrorRecord.from_json(record.to_json()) == record


@pytest.mark.parametrize("data", [b"", b"[]", b"{not json", json.dumps({"schema_version": 99}).encode(), json.dumps({"schema_version": 1}).encode()])
def test_unreadable_or_foreign_records_count_as_absent(data):
    assert Sidecar.from_json(data) is None and ErrorRecord.from_json(data) is None
