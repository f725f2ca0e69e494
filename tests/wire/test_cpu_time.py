"""CPU time: an image whose decoding cannot finish in time is refused from what its bytes count (scans,
markers, chunks, frames, directories), for good when no invocation could finish it; whatever still runs long is
stopped at the deadline, its worker killed. Over the wire with a 4 s function, and the counts themselves."""

from __future__ import annotations

import re
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headseg.function import cputime, images, walks
from headseg.function.errors import BudgetExhausted, InvalidImage, RetriableError
from headseg.function.images import ImageInfo
from headseg.function.retry import Budget
from tests import corpus
from tests.conftest import Cloud
from tests.processes import children
from tests.twins import Clock

TIMEOUT = 4  # seconds: the function's timeout
MARGIN = "1.5"  # TIME_MARGIN: the work stops at 2.5 s

#: CPU bombs, each far beyond a 2.5 s budget at VCPU=0.35 (and each at least 5 s of CPU here, on one core).
BOMBS = {
    # scans in the first bytes: refused before the object is read whole
    "scans.jpg": (lambda: corpus.many_scans(copies=5000), "scans"),
    # the frame header past the first 64 KB: the header is read in the worker, the scans counted there
    "late-scans.jpg": (lambda: corpus.many_scans(copies=5000, lead=b"\0" * 100_000), "scans"),
    "markers.jpg": (lambda: corpus.many_markers(6_000_000), "markers"),
    "chunks.png": (lambda: corpus.png_chunks(2_000_000, "after"), "chunks"),
    "frames.gif": (lambda: corpus.gif_frames(3_000_000), "frames"),
    "pages.tiff": (lambda: corpus.tiff_directories(50_000), "directories"),
}


@pytest.fixture
def short(cloud: Cloud) -> Cloud:
    cloud.configure(TIME_MARGIN=MARGIN)
    return cloud


PATIENT = 12  # seconds: a function slow enough (VCPU=0.05) that each bomb is still far beyond its 10.5 s, with
# the wall time to count the bytes on a machine loaded several times over (counting takes a fraction of a second)


@pytest.mark.parametrize("name", BOMBS)
def test_an_image_no_invocation_could_decode_is_refused_for_good_from_what_its_bytes_count(cloud: Cloud, name):
    cloud.configure(TIME_MARGIN=MARGIN, VCPU="0.05")
    make, words = BOMBS[name]
    key = f"incoming/{name}"
    etag = cloud.upload(key, make())

    started = time.monotonic()
    outcome = cloud.invoke_key(key, etag, timeout=PATIENT)["outcomes"][0]

    assert time.monotonic() - started < PATIENT
    assert (outcome["outcome"], outcome["code"]) == ("failed", "InvalidImage.DecodeTime")
    reason = outcome["reason"]
    assert f" {words} needs at least " in reason and "at VCPU=0.05, over the 10.5 s the function's timeout allows" in reason
    assert "raise timeout in s.yaml (or cpu, and VCPU with it)" in reason
    record = cloud.read_json(f"heads/{key}/error.json")
    assert (record["code"], record["retriable"], record["source"]["etag"]) == ("InvalidImage.DecodeTime", False, etag)
    assert cloud.imageseg.calls == 0
    assert children() == set()


def test_scans_the_first_bytes_show_refuse_the_image_before_it_is_normalized(cloud: Cloud):
    """The count of the first bytes refuses it; the verdict stands once the whole object verified (a permanent
    verdict is given on verified bytes only), and nothing is decoded."""
    cloud.configure(TIME_MARGIN=MARGIN, VCPU="0.05")
    data = corpus.many_scans(copies=20_000)  # 280 KB
    shown = sum(1 for found in re.finditer(b"\xff\xda", data[:65536]) if found.start() + 4 <= 65536)
    etag = cloud.upload("incoming/scans.jpg", data)
    outcome = cloud.invoke_key("incoming/scans.jpg", etag, timeout=PATIENT)["outcomes"][0]
    assert outcome["code"] == "InvalidImage.DecodeTime"
    assert f"progressive JPEG 2000x2000 with at least {shown} scans needs" in outcome["reason"]  # of 20 010
    gets = cloud.oss.logged(lambda r: r.method == "GET" and cloud.oss.match(key="incoming/scans.jpg")(r))
    assert [entry.request.headers.get("range") for entry in gets] == ["bytes=0-65535", None]


def test_more_time_lets_the_same_count_past_the_gate(short: Cloud):
    short.configure(TIME_MARGIN=MARGIN, VCPU="1")
    etag = short.upload("incoming/scans.jpg", corpus.many_scans(copies=300))  # ~0.4 s at least on one core
    outcome = short.invoke_key("incoming/scans.jpg", etag, timeout=60)["outcomes"][0]
    assert outcome["outcome"] == "done", outcome
    assert "downscaled from 2000x2000 to 1999x1999" in short.read_json("heads/incoming/scans.jpg/heads.json")["normalization"]["steps"]


@pytest.mark.parametrize("name", ["scans.jpg", "late-scans.jpg", "markers.jpg", "chunks.png", "frames.gif", "pages.tiff"])
def test_a_decode_the_estimate_misses_is_stopped_at_the_deadline_and_its_worker_killed(
    short: Cloud, monkeypatch: pytest.MonkeyPatch, name
):
    """Blind the estimate (every rate 0): the second wall alone holds, whatever the input."""
    monkeypatch.setattr(cputime, "RATES", dict.fromkeys(cputime.RATES, 0.0))
    key = f"incoming/{name}"
    etag = short.upload(key, BOMBS[name][0]())

    started = time.monotonic()
    with pytest.raises(RetriableError, match="Function Compute retries"):
        short.invoke_key(key, etag, timeout=TIMEOUT)

    assert time.monotonic() - started < TIMEOUT  # the decode alone would take over 5 s of CPU here
    record = short.read_json(f"heads/{key}/error.json")
    assert (record["code"], record["retriable"]) == ("BudgetExhausted", True)
    assert "left in the invocation ran out; stopped" in record["reason"]
    assert children() == set()


# -- the counts --------------------------------------------------------------------------------------------------
def tally(data: bytes, **limits: float) -> cputime.Tally:
    return cputime.count(data, images.sniff(data) or "", **limits)


def test_each_scan_counts_the_blocks_it_walks():
    few, many = tally(corpus.many_scans(copies=10)), tally(corpus.many_scans(copies=1010))
    assert (few.counts["jpeg scan"], many.counts["jpeg scan"]) == (20, 1020)  # libjpeg's 10, and the copies
    y_blocks = 250 * 250  # 2000x2000 at 4:2:0: the Y component's 8x8 blocks
    assert many.counts["jpeg block"] - few.counts["jpeg block"] == 1000 * y_blocks
    assert many.counts["jpeg band coefficient"] - few.counts["jpeg band coefficient"] == 1000 * y_blocks * 63
    first = tally(corpus.many_scans(copies=1010, scan=1))  # a first AC scan: its blocks, no band to refine
    assert first.counts["jpeg block"] == many.counts["jpeg block"] and first.seconds < many.seconds / 5
    assert not few.partial and not many.partial


@pytest.mark.parametrize(
    "data, unit, expected",
    [
        (corpus.many_markers(5000), "jpeg marker", 5000 + 8),  # and the JPEG's own: APP0, 2 DQT, SOF, 4 DHT
        (corpus.stray_bytes(70_000), "jpeg stray byte", 70_000),
        (corpus.png_chunks(5000), "png chunk", 5000 + 3),  # and IHDR, IDAT, IEND
        (corpus.png_chunks(5000, "idat"), "png chunk", 5000 + 2),
        (corpus.gif_frames(5000), "gif frame", 5000),
        (corpus.tiff_directories(500), "tiff directory", 500),
        (corpus.tiff_tiles((1600, 800)), "tiff strip", 100 * 50),
        (corpus.tiff_tiles((1600, 800), compression=1), "tiff stored strip", 100 * 50),
    ],
)
def test_every_kind_of_unit_is_counted_exactly_on_the_whole_object(data, unit, expected):
    assert tally(data).counts[unit] == expected


def test_a_directory_chain_that_loops_is_counted_once_around():
    data = bytearray(corpus.tiff_directories(10))
    first = struct.unpack_from("<I", data, 4)[0]
    struct.pack_into("<I", data, len(data) - 4, first + 3 * (len(data) - first) // 10)  # the last one: back to the 4th
    assert tally(bytes(data)).counts["tiff directory"] == 10


def test_opening_is_what_pillow_walks_before_the_pixels():
    before, after = tally(corpus.png_chunks(5000)), tally(corpus.png_chunks(5000, "after"))
    assert before.seconds == pytest.approx(after.seconds)
    assert before.opening == pytest.approx(5001 * cputime.RATES["png chunk"])  # IHDR and the 5000 before IDAT
    assert after.opening == pytest.approx(1 * cputime.RATES["png chunk"])


BOMB_BYTES = [corpus.many_scans(copies=200), corpus.many_markers(3000), corpus.png_chunks(3000), corpus.gif_frames(3000),
              corpus.tiff_directories(300), corpus.tiff_tiles((800, 800)), corpus.stray_bytes(3000)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, len(BOMB_BYTES) - 1), cut=st.floats(0, 1), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=4))
def test_any_prefix_counts_at_most_the_whole_and_garbled_bytes_never_break_a_count(which, cut, flips):
    whole = BOMB_BYTES[which]
    prefix = whole[: int(len(whole) * cut)]
    assert tally(prefix).seconds <= tally(whole).seconds
    garbled = bytearray(whole)
    for where, value in flips:
        garbled[int(where * (len(garbled) - 1))] = value
    assert tally(bytes(garbled)).seconds >= 0


@pytest.mark.parametrize("cut", [65536, 100_003, 200_000])
def test_a_prefix_counts_every_unit_it_holds(cut):
    data = corpus.gif_frames(50_000)[:cut]  # 15-byte frames after a 19-byte header
    counted = tally(data)
    assert counted.partial is False and counted.counts["gif frame"] == len(range(19 + 9, cut, 15))  # descriptors held
    assert cputime.count(data, "GIF", whole=False).partial


def test_a_count_stops_once_its_verdict_is_known_or_its_time_is_up():
    data = corpus.png_chunks(100_000)
    stopped = tally(data, stop=0.001)
    assert stopped.partial and 0.001 < stopped.seconds < 0.001 + walks.BATCH * cputime.RATES["png chunk"]
    late = tally(data, until=time.monotonic() - 1)
    assert late.partial and late.counts["png chunk"] == walks.BATCH
    assert cputime.describe(ImageInfo("PNG", 2400, 80), late) == "PNG 2400x80 with at least 1024 chunks"


@pytest.mark.parametrize(
    "info",
    [
        ImageInfo("JPEG", 8000, 6000, sampling=((2, 2), (1, 1), (1, 1))),  # a 48 MP photo, decoded at 1/4
        ImageInfo("JPEG", 10000, 10000, progressive=True, sampling=((1, 1),) * 3),
        ImageInfo("PNG", 10000, 10000, "RGBA"),
        ImageInfo("HEIF", 8000, 6000),
        ImageInfo("WEBP", 10000, 10000),
    ],
)
def test_a_large_photo_is_far_within_the_deployed_functions_budget(info):
    """s.yaml: timeout 120 s, TIME_MARGIN 3, VCPU 0.35: 117 s; the largest photos need a few seconds at most."""
    seconds = cputime.add_pixels(cputime.Tally(), info, 1999).seconds
    assert seconds / 0.35 < 117 / 20
    cputime.check(seconds, "a photo", Budget.seconds(117), 0.35)


def test_the_verdict_is_permanent_only_when_a_whole_invocation_is_too_short():
    clock = Clock()
    budget = Budget.seconds(10, clock)
    clock.now = 8  # 2 s left of 10
    cputime.check(0.5, "small", budget, vcpu=0.35)  # 1.4 s at a third of a core
    with pytest.raises(BudgetExhausted, match=r"^big needs at least 5\.0 s to decode and normalize at VCPU=1, and 2\.0 s"):
        cputime.check(5, "big", budget, vcpu=1)
    with pytest.raises(InvalidImage) as error:
        cputime.check(5, "huge", budget, vcpu=0.35)
    assert error.value.code == "InvalidImage.DecodeTime"
    assert error.value.message.startswith("huge needs at least 14.3 s to decode and normalize at VCPU=0.35, over the 10.0 s")
    cputime.check(3, "one core at most", Budget.seconds(4, clock), vcpu=16)  # a decode runs on one core
    with pytest.raises(InvalidImage):
        cputime.check(5, "one core at most", Budget.seconds(4, clock), vcpu=16)
