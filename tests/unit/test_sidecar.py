import json

import pytest

from headseg.function.errors import PermanentError
from headseg.function.layout import Layout
from headseg.function.results import Previous, settled
from headseg.function.sidecar import ErrorRecord, HeadRecord, Sidecar, Source
from headseg.function.storage import ObjectInfo

SOURCE = Source("b", "incoming/a.jpg", "ETAG", 10, 40, 50, last_modified=1_700_000_000)
CURRENT = ObjectInfo("incoming/a.jpg", 10, "ETAG", "", 1_700_000_000)
OTHER = ObjectInfo("incoming/a.jpg", 10, "OTHER", "", 1_700_000_100)


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
    done = Previous(sidecar=loaded)
    assert settled(done, CURRENT, None).code == "AlreadyDone" and settled(done, OTHER, None) is None
    assert settled(done, CURRENT, "mask") is None


def test_a_change_and_change_back_is_another_version():
    """Same bytes uploaded again later: same eTag, another Last-Modified (or version id): not settled."""
    done = Previous(sidecar=Sidecar(SOURCE, "req", None, "cloud", []))
    assert settled(done, ObjectInfo(CURRENT.key, 10, "ETAG", "", 1_700_000_050), None) is None
    versioned = Previous(sidecar=Sidecar(Source("b", CURRENT.key, "ETAG", 10, version_id="v1"), "r", None, "cloud", []))
    assert settled(versioned, ObjectInfo(CURRENT.key, 10, "ETAG", "", 0, "v2"), None) is None
    assert settled(versioned, ObjectInfo(CURRENT.key, 10, "ETAG", "", 0, "v1"), None).code == "AlreadyDone"


def test_a_record_without_last_modified_compares_by_etag():
    """Records written before versions were recorded settle by eTag alone, as they did."""
    old = Previous(sidecar=Sidecar(Source("b", CURRENT.key, "ETAG", 10), "req", None, "cloud", []))
    assert settled(old, CURRENT, None).code == "AlreadyDone"


def test_a_record_of_an_older_version_never_settles_the_current_one():
    """Whichever event arrives (an old one redelivered after a newer upload too), it leaves the current result."""
    assert settled(Previous(sidecar=Sidecar(SOURCE, "req", None, "cloud", [])), OTHER, None) is None
    failed = ErrorRecord(SOURCE, "InvalidImage.Corrupt", "corrupt", False)
    assert settled(Previous(error=failed), OTHER, None) is None


def test_only_a_permanent_error_for_the_etag_settles_a_source():
    failed = ErrorRecord(SOURCE, "InvalidImage.Corrupt", "corrupt JPEG", False)
    assert settled(Previous(error=failed), CURRENT, None).code == "AlreadyFailed"
    assert settled(Previous(error=failed), OTHER, None) is None
    transient = ErrorRecord(SOURCE, "Throttling", "throttled", True)
    assert settled(Previous(error=transient), CURRENT, None) is None


def test_error_record_round_trip():
    record = ErrorRecord(SOURCE, "InvalidImage.Corrupt", "corrupt JPEG", False, "req", "now")
    assert ErrorRecord.from_json(record.to_json()) == record


@pytest.mark.parametrize("data", [b"", b"[]", b"{not json", json.dumps({"schema_version": 99}).encode(), json.dumps({"schema_version": 1}).encode()])
def test_unreadable_or_foreign_records_count_as_absent(data):
    assert Sidecar.from_json(data) is None and ErrorRecord.from_json(data) is None
