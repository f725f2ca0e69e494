"""Time: stalled and trickling servers never hold an invocation past its timeout, and giving up leaves a
retriable error record written within TIME_MARGIN. The real SDKs against the fakes, with a 4 s function."""

from __future__ import annotations

import math
import time

import pytest

from headseg.function.errors import RetriableError
from tests.conftest import Cloud
from tests.fakes.imageseg import is_result_download

TIMEOUT = 4  # seconds: the function's timeout
MARGIN = "1.5"  # TIME_MARGIN: the work stops at 2.5 s, the error record may take most of the rest
HEADS = [(40, 50, 60, 80), (170, 40, 70, 90)]


def invoke_and_time(cloud: Cloud, key: str, etag: str) -> float:
    started = time.monotonic()
    with pytest.raises(RetriableError, match="Function Compute retries"):
        cloud.invoke_key(key, etag, timeout=TIMEOUT)
    return time.monotonic() - started


def assert_recorded_as_retriable(cloud: Cloud, key: str, etag: str) -> dict:
    record = cloud.read_json(f"heads/{key}/error.json")
    assert record is not None, "the error record was not written within the margin"
    assert record["retriable"] is True and record["source"]["etag"] == etag and record["code"] == "BudgetExhausted"
    assert cloud.read(f"heads/{key}/heads.json") is None
    return record


@pytest.fixture
def slow_cloud(cloud: Cloud) -> Cloud:
    cloud.configure(TIME_MARGIN=MARGIN, RETRY_BASE="0.2")
    return cloud


def test_a_stalled_sidecar_put_gives_up_in_time(slow_cloud: Cloud):
    etag = slow_cloud.upload_portrait("incoming/a.jpg", HEADS)
    slow_cloud.oss.stall(math.inf, times=100, match=slow_cloud.oss.match(method="PUT", key="heads/incoming/a.jpg/heads.json"))
    elapsed = invoke_and_time(slow_cloud, "incoming/a.jpg", etag)
    assert elapsed < TIMEOUT - 0.2
    assert "heads.json" in assert_recorded_as_retriable(slow_cloud, "incoming/a.jpg", etag)["reason"]


def test_a_trickling_cutout_download_gives_up_in_time(slow_cloud: Cloud):
    etag = slow_cloud.upload_portrait("incoming/a.jpg", HEADS)
    slow_cloud.imageseg.trickle(0.5, chunk=1, times=100, match=is_result_download)  # 2 bytes a second
    elapsed = invoke_and_time(slow_cloud, "incoming/a.jpg", etag)
    assert elapsed < TIMEOUT - 0.2
    assert_recorded_as_retriable(slow_cloud, "incoming/a.jpg", etag)


def test_a_trickling_object_read_gives_up_in_time(slow_cloud: Cloud):
    etag = slow_cloud.upload_portrait("incoming/a.jpg", HEADS)
    slow_cloud.oss.trickle(0.5, chunk=16, times=100, match=slow_cloud.oss.match(method="GET", key="incoming/a.jpg"))
    elapsed = invoke_and_time(slow_cloud, "incoming/a.jpg", etag)
    assert elapsed < TIMEOUT - 0.2
    assert_recorded_as_retriable(slow_cloud, "incoming/a.jpg", etag)
    assert slow_cloud.imageseg.calls == 0


def test_a_segmenthead_call_stalled_after_its_signature_check_gives_up_in_time(slow_cloud: Cloud):
    etag = slow_cloud.upload_portrait("incoming/a.jpg", HEADS)
    slow_cloud.imageseg.stall(math.inf, times=100)
    elapsed = invoke_and_time(slow_cloud, "incoming/a.jpg", etag)
    assert elapsed < TIMEOUT - 0.2
    assert "SegmentHead" in assert_recorded_as_retriable(slow_cloud, "incoming/a.jpg", etag)["reason"]
