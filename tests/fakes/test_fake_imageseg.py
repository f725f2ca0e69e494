"""The imageseg fake, driven by the real SDK over HTTP: detection, cutouts, gateway checks, faults, throttling."""

from __future__ import annotations

import io
import socket
import time

import pytest
import requests
from alibabacloud_imageseg20191230.client import Client
from alibabacloud_imageseg20191230.models import SegmentHeadRequest, SegmentHeadResponse
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException
from alibabacloud_tea_openapi.utils import Utils
from alibabacloud_tea_util.models import RuntimeOptions
from darabonba.exceptions import UnretryableException
from PIL import Image

from tests.fakes import imageseg
from tests.fakes._server import FakeServer, Fault, Request, Response
from tests.fakes.images import portrait
from tests.fakes.imageseg import FakeImageseg

AK, SECRET = "LTAItestkey", "test-secret"
STS_AK, STS_SECRET, STS_TOKEN = "STS.testkey", "sts-secret", "sts-token"
HEADS = [(260, 60, 120, 150), (60, 80, 100, 130), (460, 100, 90, 110)]  # drawn out of order on purpose

_http = requests.Session()
_http.trust_env = False  # no proxy between the test and 127.0.0.1


class ImageHost(FakeServer):
    """Serves input images by path; anything else is a 404 (tests use that on purpose)."""

    name = "image-host"

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, bytes] = {}

    def put(self, name: str, data: bytes) -> str:
        self.files[f"/{name}"] = data
        return f"{self.url}/{name}"

    def handle(self, request: Request) -> Response:
        if request.method == "GET" and request.path in self.files:
            return Response(200, self.files[request.path], {"Content-Type": "application/octet-stream"})
        return Response(404, b"<Error><Code>NoSuchKey</Code></Error>", {"Content-Type": "application/xml"})


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """darabonba sends even 127.0.0.1 through HTTP(S)_PROXY, ignoring NO_PROXY and Config.no_proxy."""
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake():
    with FakeImageseg({AK: SECRET, STS_AK: STS_SECRET}, tokens={STS_AK: STS_TOKEN}) as server:
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
    access_key_id: str = AK,
    secret: str = SECRET,
    token: str | None = None,
    runtime: RuntimeOptions | None = None,
) -> SegmentHeadResponse:
    config = open_api_models.Config(
        access_key_id=access_key_id,
        access_key_secret=secret,
        security_token=token,
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
def test_finds_every_head_left_to_right_with_rgba_cutouts(fake, host):
    url = host.put("people.jpg", portrait(640, 480, HEADS))

    response = segment(fake, url)

    assert response.body.request_id
    elements = response.body.data.elements
    expected = sorted(HEADS)
    assert len(elements) == len(expected)
    for element, (x, y, w, h) in zip(elements, expected):
        got = (element.x, element.y, element.width, element.height)
        assert all(abs(a - b) <= 2 for a, b in zip(got, (x, y, w, h))), (got, (x, y, w, h))
        cutout = fetch_png(element.image_url)
        assert cutout.mode == "RGBA" and cutout.size == (element.width, element.height)
        alpha = cutout.getchannel("A")
        corners = [(0, 0), (cutout.width - 1, 0), (0, cutout.height - 1), (cutout.width - 1, cutout.height - 1)]
        assert [alpha.getpixel(corner) for corner in corners] == [0, 0, 0, 0]
        assert alpha.getpixel((cutout.width // 2, cutout.height // 2)) == 255
    assert fake.fetched_urls == [url]
    assert (fake.calls, fake.served, fake.throttled) == (1, 1, 0)


def test_mask_form_returns_single_channel_masks(fake, host):
    url = host.put("one.png", portrait(300, 300, [(100, 50, 80, 100)], fmt="PNG"))

    (element,) = segment(fake, url, return_form="mask").body.data.elements

    mask = fetch_png(element.image_url)
    assert mask.mode == "L" and mask.size == (element.width, element.height)
    assert mask.getpixel((0, 0)) == 0 and mask.getpixel((mask.width // 2, mask.height // 2)) == 255


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP"])
def test_no_heads_gives_an_empty_list(fake, host, fmt):
    url = host.put(f"empty.{fmt.lower()}", portrait(200, 150, [], fmt=fmt))

    assert segment(fake, url).body.data.elements == []


def test_large_image_near_the_limit_is_fast(fake, host):
    url = host.put("big.png", portrait(1990, 1990, [(100, 100, 400, 500), (1200, 900, 500, 600)], fmt="PNG"))

    started = time.perf_counter()
    elements = segment(fake, url).body.data.elements

    assert [(e.x, e.y, e.width, e.height) for e in elements] == [(100, 100, 400, 500), (1200, 900, 500, 600)]
    assert time.perf_counter() - started < 3


# -- gateway checks -------------------------------------------------------------------------------------------------
def test_wrong_secret_is_signature_does_not_match(fake, host):
    url = host.put("a.jpg", portrait(100, 100, []))

    with pytest.raises(ClientException) as caught:
        segment(fake, url, secret="not-the-secret")

    error = caught.value
    assert (error.code, error.status_code) == (imageseg.SIGNATURE_MISMATCH, 400)
    assert error.request_id == error.data["RequestId"] and error.data["HostId"] == imageseg.HOST_ID
    assert fake.fetched_urls == []


def test_unknown_access_key_is_not_found(fake, host):
    with pytest.raises(ClientException) as caught:
        segment(fake, host.put("a.jpg", portrait(100, 100, [])), access_key_id="LTAInobody")

    assert (caught.value.code, caught.value.status_code) == (imageseg.ACCESS_KEY_NOT_FOUND, 404)


@pytest.mark.parametrize(
    ("token", "code"), [(STS_TOKEN, None), (None, imageseg.MISSING_TOKEN), ("stale", imageseg.TOKEN_MISMATCH)]
)
def test_sts_token_is_required(fake, host, token, code):
    url = host.put("a.jpg", portrait(100, 100, []))

    if code is None:
        assert segment(fake, url, access_key_id=STS_AK, secret=STS_SECRET, token=token).body.data.elements == []
    else:
        with pytest.raises(ClientException) as caught:
            segment(fake, url, access_key_id=STS_AK, secret=STS_SECRET, token=token)
        assert caught.value.code == code


def test_replayed_request_is_rejected(fake, host):
    segment(fake, host.put("a.jpg", portrait(100, 100, [])))
    signed = fake.logged()[0].request

    replay = _http.post(fake.url + signed.raw_path, headers=signed.headers, data=b"", timeout=5)
    assert (replay.status_code, replay.json()["Code"]) == (400, imageseg.NONCE_USED)

    # A fresh nonce does not help: the nonce is signed.
    forged = _http.post(
        fake.url + signed.raw_path, headers={**signed.headers, "x-acs-signature-nonce": "fresh"}, data=b"", timeout=5
    )
    assert (forged.status_code, forged.json()["Code"]) == (400, imageseg.SIGNATURE_MISMATCH)


def test_stale_date_is_rejected(fake, host, monkeypatch):
    stale = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 20 * 60))
    monkeypatch.setattr(Utils, "get_timestamp", staticmethod(lambda: stale))  # the SDK's clock, not its logic

    with pytest.raises(ClientException) as caught:
        segment(fake, host.put("a.jpg", portrait(100, 100, [])))

    assert caught.value.code == imageseg.TIMESTAMP_EXPIRED


def test_unknown_action_or_path_fails_loudly(fake):
    other = _http.post(fake.url + "/", headers={"x-acs-action": "SegmentBody"}, timeout=5)
    stray = _http.get(fake.url + "/favicon.ico", timeout=5)

    assert (other.status_code, other.json()["Code"]) == (404, imageseg.ACTION_NOT_FOUND)
    assert stray.status_code == 404
    with pytest.raises(AssertionError, match="SegmentBody"):
        fake.check()


# -- input checks ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "make", "code"),
    [
        ("huge.bmp", lambda: portrait(1990, 1990, [], fmt="BMP"), imageseg.INVALID_SIZE),
        ("tiny.jpg", lambda: portrait(32, 32, []), imageseg.INVALID_RESOLUTION),
        ("wide.png", lambda: portrait(2000, 100, [], fmt="PNG"), imageseg.INVALID_RESOLUTION),
        ("anim.gif", lambda: portrait(100, 100, [(20, 20, 40, 50)], fmt="GIF"), imageseg.INVALID_FORMAT),
        ("cut.jpg", lambda: portrait(300, 300, [(20, 20, 40, 50)])[:3000], imageseg.INVALID_CONTENT),
    ],
)
def test_invalid_input_images(fake, host, name, make, code):
    with pytest.raises(ClientException) as caught:
        segment(fake, host.put(name, make()))

    assert (caught.value.code, caught.value.status_code) == (code, 400)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("case", ["missing", "forbidden", "refused"])
def test_undownloadable_image_url(fake, host, case):
    url = host.put("a.jpg", portrait(100, 100, []))
    if case == "missing":
        url += ".gone"
    elif case == "forbidden":
        host.inject(Fault("status", response=Response(403, b"<Error><Code>AccessDenied</Code></Error>")))
    else:
        url = f"http://127.0.0.1:{_closed_port()}/a.jpg"

    with pytest.raises(ClientException) as caught:
        segment(fake, url)

    assert (caught.value.code, caught.value.status_code) == (imageseg.DOWNLOAD_ERROR, 400)
    assert fake.fetched_urls == [url]


def test_non_local_image_url_is_never_fetched(fake):
    with pytest.raises(ClientException) as caught:
        segment(fake, "http://example.com/a.jpg")

    assert caught.value.code == imageseg.DOWNLOAD_ERROR and fake.fetched_urls == []
    with pytest.raises(AssertionError, match="non-local"):
        fake.check()


def test_missing_image_url(fake):
    with pytest.raises(ClientException) as caught:
        segment(fake, None)

    assert caught.value.code == imageseg.MISSING_IMAGE_URL


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
def test_throttled_then_served(fake, host):
    url = host.put("a.jpg", portrait(100, 100, []))
    fake.throttle()

    with pytest.raises(ClientException) as caught:
        segment(fake, url)
    assert (caught.value.code, caught.value.status_code) == (imageseg.THROTTLING_USER, 400)
    segment(fake, url)

    assert (fake.calls, fake.served, fake.throttled) == (2, 1, 1)
    assert len(fake.fetched_urls) == 1  # the throttled call never reached the service


def test_retry_after_header_gives_throttling_exception(fake, host):
    fake.throttle(status=429, code="Throttling", retry_after_ms=1500)

    with pytest.raises(ThrottlingException) as caught:
        segment(fake, host.put("a.jpg", portrait(100, 100, [])))

    assert (caught.value.code, caught.value.status_code, caught.value.retry_after) == ("Throttling", 429, 1500)


@pytest.mark.parametrize(("status", "code"), [(500, "InternalError"), (503, "ServiceUnavailable")])
def test_server_errors(fake, host, status, code):
    fake.server_error(status=status)

    with pytest.raises(ServerException) as caught:
        segment(fake, host.put("a.jpg", portrait(100, 100, [])))

    assert (caught.value.code, caught.value.status_code) == (code, status)
    assert fake.calls == 1  # the SDK does not retry by itself


def test_invalid_image_fault(fake, host):
    fake.invalid_image()

    with pytest.raises(ClientException) as caught:
        segment(fake, host.put("a.jpg", portrait(100, 100, [])))

    assert caught.value.code == imageseg.INVALID_CONTENT


def test_dropped_connection_is_unretryable_and_not_retried(fake, host):
    fake.drop()

    with pytest.raises(UnretryableException):
        segment(fake, host.put("a.jpg", portrait(100, 100, [])))

    assert fake.calls == 1


def test_slow_reply_hits_the_read_timeout(fake, host):
    fake.slow(1.0)

    started = time.perf_counter()
    with pytest.raises(UnretryableException):
        segment(fake, host.put("a.jpg", portrait(100, 100, [])), runtime=RuntimeOptions(read_timeout=200))

    assert time.perf_counter() - started < 0.9


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

    assert set(codes) == {"ok", imageseg.THROTTLING_USER}
    assert fake.served == codes.count("ok") >= 2 and fake.throttled == codes.count(imageseg.THROTTLING_USER)
    assert fake.calls == fake.served + fake.throttled == 10


def test_stall_after_auth_hits_the_read_timeout_before_segmenting(fake, host):
    url = host.put("a.jpg", portrait(100, 100, [(20, 20, 40, 50)]))
    fault = fake.stall(5)

    started = time.perf_counter()
    with pytest.raises(ClientException) as caught:  # the gateway still refuses a bad signature at once
        segment(fake, url, secret="not-the-secret")
    assert caught.value.code == imageseg.SIGNATURE_MISMATCH and time.perf_counter() - started < 0.3
    assert fault.hits == 0

    started = time.perf_counter()
    with pytest.raises(UnretryableException):
        segment(fake, url, runtime=RuntimeOptions(read_timeout=200))
    assert 0.2 <= time.perf_counter() - started < 1.5
    assert fault.hits == 1 and fake.fetched_urls == [] and fake.served == 0  # SegmentHead never ran

    assert len(segment(fake, url).body.data.elements) == 1
    assert [entry.status for entry in fake.logged(imageseg.is_segment_call)] == [400, 0, 200]


def test_trickled_cutout_download_outlasts_a_read_timeout(fake, host):
    (element,) = segment(fake, host.put("a.jpg", portrait(200, 200, [(50, 50, 80, 90)]))).body.data.elements
    png = fake.results[element.image_url.split("?")[0].rsplit("/", 1)[1]]
    fake.trickle(0.05, chunk=len(png) // 8 + 1, match=imageseg.is_result_download)  # 8 chunks: 0.4 s

    started = time.perf_counter()
    reply = _http.get(element.image_url, timeout=0.3, allow_redirects=False)

    assert time.perf_counter() - started >= 0.4
    assert reply.status_code == 200 and reply.headers["Content-Length"] == str(len(png)) and reply.content == png
    assert fetch_png(element.image_url).size == (element.width, element.height)  # once only: now at full speed
