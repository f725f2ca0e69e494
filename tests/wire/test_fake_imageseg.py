"""The imageseg fake, driven by the real SDK over HTTP: what it adds to `headseg serve`'s SegmentHead (its
marker detector, its loud failures, its faults and counters). The shared service itself (gateway, limits,
downloads, result URLs) is tested through `headseg serve` in tests/wire/test_serve.py; what its callers see (heads found, masks,
faults) is proved by the product's wire tests."""

from __future__ import annotations

import io
import time

import pytest
import requests
from alibabacloud_imageseg20191230.client import Client
from alibabacloud_imageseg20191230.models import SegmentHeadRequest, SegmentHeadResponse
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_openapi.exceptions import ClientException, ThrottlingException
from alibabacloud_tea_util.models import RuntimeOptions
from darabonba.exceptions import UnretryableException
from PIL import Image

from tests.fakes import imageseg
from tests.fakes.images import ImageHost, portrait
from tests.fakes.imageseg import FakeImageseg

AK, SECRET = "LTAItestkey", "test-secret"
HEADS = [(260, 60, 120, 150), (60, 80, 100, 130), (460, 100, 90, 110)]  # drawn out of order on purpose

_http = requests.Session()
_http.trust_env = False  # no proxy between the test and 127.0.0.1


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """darabonba sends even 127.0.0.1 through HTTP(S)_PROXY, ignoring NO_PROXY and Config.no_proxy."""
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake():
    with FakeImageseg({AK: SECRET}) as server:
        yield server


@pytest.fixture
def host():
    with ImageHost() as server:
        yield server


def segment(
    server: FakeImageseg,
    url: str,
    return_form: str | None = None,
    *,
    secret: str = SECRET,
    runtime: RuntimeOptions | None = None,
) -> SegmentHeadResponse:
    config = open_api_models.Config(
        access_key_id=AK,
        access_key_secret=secret,
        endpoint=server.address,
        protocol="http",
        region_id="cn-shanghai",
    )
    request = SegmentHeadRequest(image_url=url, return_form=return_form)
    return Client(config).segment_head_with_options(request, runtime or RuntimeOptions())


def fetch_png(url: str) -> Image.Image:
    reply = _http.get(url, timeout=5, allow_redirects=False)
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "image/png"
    return Image.open(io.BytesIO(reply.content))


# -- detection and cutouts ----------------------------------------------------------------------------------------
# -- loud failures ---------------------------------------------------------------------------------------------------
def test_unknown_action_or_path_fails_loudly(fake):
    other = _http.post(fake.url + "/", headers={"x-acs-action": "SegmentBody"}, timeout=5)
    stray = _http.get(fake.url + "/favicon.ico", timeout=5)

    assert (other.status_code, other.json()["Code"]) == (404, "InvalidAction.NotFound")
    assert stray.status_code == 404
    with pytest.raises(AssertionError, match="SegmentBody"):
        fake.check()


def test_non_local_image_url_is_never_fetched(fake):
    with pytest.raises(ClientException) as caught:
        segment(fake, "http://example.com/a.jpg")

    assert caught.value.code == "InvalidImage.Download" and fake.fetched_urls == []
    with pytest.raises(AssertionError, match="non-local"):
        fake.check()


# -- result URLs ----------------------------------------------------------------------------------------------------
def test_result_urls_are_signed_and_expire(fake, host):
    (element,) = segment(fake, host.put("a.jpg", portrait(200, 200, [(50, 50, 80, 90)]))).body.data.elements
    url = element.image_url
    expires = int(url.split("Expires=")[1].split("&")[0])
    assert abs(expires - (time.time() + 1800)) < 60

    tampered = _http.get(url.replace("Signature=", "Signature=x"), timeout=5, allow_redirects=False)
    unsigned = _http.get(url.split("?")[0], timeout=5, allow_redirects=False)
    assert (tampered.status_code, unsigned.status_code) == (403, 403)
    assert "<Code>SignatureDoesNotMatch</Code>" in tampered.text and "<Code>AccessDenied</Code>" in unsigned.text
    fetch_png(url)

    fake.clock_offset = 1801
    expired = _http.get(url, timeout=5, allow_redirects=False)
    assert expired.status_code == 403
    assert "<Code>AccessDenied</Code>" in expired.text and "<Message>Request has expired.</Message>" in expired.text


# -- faults and throttling --------------------------------------------------------------------------------------------
def test_retry_after_header_gives_throttling_exception(fake, host):
    fake.throttle(status=429, code="Throttling", retry_after_ms=1500)

    with pytest.raises(ThrottlingException) as caught:
        segment(fake, host.put("a.jpg", portrait(100, 100, [])))

    assert (caught.value.code, caught.value.status_code, caught.value.retry_after) == ("Throttling", 429, 1500)


def test_qps_limit_throttles_the_excess(fake, host):
    url = host.put("a.jpg", portrait(100, 100, [(20, 20, 40, 50)]))
    fake.qps_limit = 2
    codes = []
    for _ in range(10):
        try:
            segment(fake, url)
            codes.append("ok")
        except ClientException as exc:
            codes.append(exc.code)

    assert set(codes) == {"ok", "Throttling.User"}
    assert fake.served == codes.count("ok") >= 2 and fake.throttled == codes.count("Throttling.User")
    assert fake.calls == fake.served + fake.throttled == 10


def test_stall_after_auth_hits_the_read_timeout_before_segmenting(fake, host):
    url = host.put("a.jpg", portrait(100, 100, [(20, 20, 40, 50)]))
    fault = fake.stall(5)

    started = time.perf_counter()
    with pytest.raises(ClientException) as caught:  # the gateway still refuses a bad signature at once
        segment(fake, url, secret="not-the-secret")
    assert caught.value.code == "SignatureDoesNotMatch" and time.perf_counter() - started < 0.3
    assert fault.hits == 0

    started = time.perf_counter()
    with pytest.raises(UnretryableException):
        segment(fake, url, runtime=RuntimeOptions(read_timeout=200))
    assert 0.2 <= time.perf_counter() - started < 1.5
    assert fault.hits == 1 and fake.fetched_urls == [] and fake.served == 0  # SegmentHead never ran

    assert len(segment(fake, url).body.data.elements) == 1
    assert [entry.status for entry in fake.logged(imageseg.is_segment_call)] == [400, 0, 200]

