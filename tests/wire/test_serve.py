"""`headseg serve` answers like SegmentHead does, offline: to the real imageseg SDK, and to a plain HTTP request.

Its service (`headseg.local.segmenthead`) is also what the tests' fake runs, so the gateway's checks, the input
limits, the downloads and the errors are tested here, once, through `SegmentHeadServer`: on the offline engine
where the heads matter, on the fake's marker detector (fast, exact) where only the service's rules do.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
import requests
from alibabacloud_imageseg20191230 import models
from alibabacloud_imageseg20191230.client import Client
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils import Utils
from alibabacloud_tea_util.models import RuntimeOptions
from hypothesis import example, given, settings
from hypothesis import strategies as st

from headseg.cli import main
from headseg.local.acs3 import Gateway
from headseg.local.segmenthead import HOST_ID, SegmentHead, Sources, Watcher
from headseg.local.serve import Request, SegmentHeadServer
from tests.conftest import SAMPLES, iou, png_image, sample_labels
from tests.fakes._server import Fault, Response
from tests.fakes.images import ImageHost, portrait
from tests.fakes.imageseg import marker_heads

KEY, SECRET = "LTAI5tServeTestKey", "serve-test-secret"
STS_KEY, STS_SECRET, STS_TOKEN = "STS.serveTestKey", "sts-secret", "sts-token"
PLAIN = "Action=SegmentHead&Version=2019-12-30"

_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy between the test and 127.0.0.1


class Recorder(Watcher):
    """The requests the gateway let in."""

    def __init__(self) -> None:
        self.admitted: list[Request] = []

    def authenticated(self, request) -> None:
        self.admitted.append(request)


@contextlib.contextmanager
def running(server: SegmentHeadServer) -> Iterator[SegmentHeadServer]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def server(local_segmenter):
    """On the offline engine, signatures checked."""
    with running(SegmentHeadServer(("127.0.0.1", 0), local_segmenter.cut, {KEY: SECRET})) as server:
        yield server


@pytest.fixture
def gateway():
    """On the marker detector, signatures and STS tokens checked."""
    server = SegmentHeadServer(
        ("127.0.0.1", 0), marker_heads, {KEY: SECRET, STS_KEY: STS_SECRET}, tokens={STS_KEY: STS_TOKEN}
    )
    server.api.watcher = Recorder()
    with running(server) as server:
        yield server


@pytest.fixture
def open_server():
    """On the marker detector, as `headseg serve` runs by default: no signatures."""
    with running(SegmentHeadServer(("127.0.0.1", 0), marker_heads)) as server:
        yield server


@pytest.fixture
def host():
    with ImageHost() as server:
        yield server


def client(server: SegmentHeadServer, secret: str = SECRET, key: str = KEY, token: str | None = None) -> Client:
    endpoint = server.url.removeprefix("http://")
    config = open_api_models.Config(
        access_key_id=key, access_key_secret=secret, security_token=token, endpoint=endpoint, protocol="http",
        region_id="cn-shanghai",
    )
    return Client(config)


def segment(server: SegmentHeadServer, url: str | None, **credentials: str | None) -> models.SegmentHeadResponse:
    request = models.SegmentHeadRequest(image_url=url)
    return client(server, **credentials).segment_head_with_options(request, RuntimeOptions())


def plain(url: str, data: bytes | None = None, method: str = "POST") -> tuple[int, dict]:
    """A request as a person sends it: urllib, no SDK, no signature."""
    try:
        with _http.open(urllib.request.Request(url, data=data, method=method), timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# -- the SDK, on the offline engine ----------------------------------------------------------------------------------
def test_the_sdk_gets_heads_and_temporary_cutout_urls(server):
    request = models.SegmentHeadRequest(image_url=(SAMPLES / "group.jpg").as_uri())
    response = client(server).segment_head_with_options(request, RuntimeOptions())
    elements = response.body.data.elements
    labels = sample_labels()["group.jpg"]
    assert len(elements) == len(labels) and response.body.request_id
    for element in elements:
        assert max(iou([element.x, element.y, element.width, element.height], label) for label in labels) >= 0.5
        reply = requests.get(element.image_url, timeout=5)
        assert reply.status_code == 200 and reply.headers["Content-Type"] == "image/png"
        assert png_image(reply.content).size == (element.width, element.height)


def test_mask_form(server):
    request = models.SegmentHeadRequest(image_url=(SAMPLES / "astronaut.jpg").as_uri(), return_form="mask")
    [element] = client(server).segment_head_with_options(request, RuntimeOptions()).body.data.elements
    assert png_image(requests.get(element.image_url, timeout=5).content).mode == "L"


@pytest.mark.parametrize(
    "url, code",
    [(lambda tmp: (tmp / "missing.jpg").as_uri(), "InvalidImage.Download"), (lambda tmp: _write(tmp / "t.png", 20), "InvalidImage.Resolution")],
)
def test_bad_images_get_the_services_error_codes(server, tmp_path, url, code):
    with pytest.raises(ClientException) as error:
        client(server).segment_head_with_options(models.SegmentHeadRequest(image_url=url(tmp_path)), RuntimeOptions())
    assert error.value.code == code


def test_the_cloud_path_runs_offline_against_serve(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)
    out = tmp_path / "out"
    status = main(["segment", str(SAMPLES / "group.jpg"), "--out", str(out), "--engine", "cloud", "--imageseg-endpoint", server.url, "--quiet"])
    assert status == 0, capsys.readouterr().err
    sidecar = (out / "heads" / "incoming" / "group.jpg" / "heads.json").read_text()
    assert '"engine": "cloud"' in sidecar and sidecar.count('"key": "heads/') == 4


def _write(path: Path, side: int) -> str:
    from PIL import Image

    Image.new("RGB", (side, side)).save(path)
    return path.as_uri()


# -- a person's request: plain HTTP, no SDK, no signature --------------------------------------------------------------
def test_a_plain_request_in_the_query_gets_heads_and_cutouts(open_server, tmp_path):
    photo = tmp_path / "two people.png"
    photo.write_bytes(portrait(400, 300, [(200, 40, 80, 100), (40, 60, 70, 90)], fmt="PNG"))
    query = urllib.parse.urlencode({"ImageURL": photo.as_uri()})

    status, answer = plain(f"{open_server.url}/?{PLAIN}&{query}")

    assert status == 200 and answer["RequestId"]
    boxes = [(e["X"], e["Y"], e["Width"], e["Height"]) for e in answer["Data"]["Elements"]]
    assert boxes == [(40, 60, 70, 90), (200, 40, 80, 100)]
    with _http.open(answer["Data"]["Elements"][0]["ImageURL"], timeout=10) as reply:
        assert reply.headers["Content-Type"] == "image/png" and png_image(reply.read()).size == (70, 90)


def test_a_plain_request_in_form_fields_gets_masks(open_server, host):
    url = host.put("one.jpg", portrait(300, 300, [(100, 50, 80, 100)]))
    form = urllib.parse.urlencode({"Action": "SegmentHead", "Version": "2019-12-30", "ImageURL": url, "ReturnForm": "mask"})

    status, answer = plain(f"{open_server.url}/", data=form.encode())

    assert status == 200
    (element,) = answer["Data"]["Elements"]
    with _http.open(element["ImageURL"], timeout=10) as reply:
        assert png_image(reply.read()).mode == "L"


@pytest.mark.parametrize(("path", "method"), [("/", "POST"), ("/", "GET"), (f"/?{PLAIN}", "POST")])
def test_a_bare_request_is_told_what_to_send(open_server, path, method):
    status, answer = plain(open_server.url + path, method=method)

    assert status in (400, 404) and answer["Code"] in ("InvalidAction.NotFound", "MissingImageURL")
    assert "Action=SegmentHead" in answer["Message"] and "ImageURL" in answer["Message"]
    assert answer["HostId"] == HOST_ID and answer["RequestId"]


def test_a_plain_request_is_refused_when_signatures_are_verified(gateway, host):
    url = host.put("a.jpg", portrait(100, 100, []))

    status, answer = plain(f"{gateway.url}/?{PLAIN}&ImageURL={url}")

    assert (status, answer["Code"]) == (400, "IncompleteSignature") and host.logged() == []


@pytest.fixture
def open_engine(local_segmenter):
    """On the offline engine, as `headseg serve` runs by default: no signatures."""
    with running(SegmentHeadServer(("127.0.0.1", 0), local_segmenter.cut)) as server:
        yield server


def _boxes(answer: dict) -> list[tuple[int, int, int, int]]:
    return [(e["X"], e["Y"], e["Width"], e["Height"]) for e in answer["Data"]["Elements"]]


def test_the_documented_curl_works_without_version_or_credentials(open_engine):
    """`curl -X POST 'http://127.0.0.1:8080/?Action=SegmentHead&ImageURL=file:///abs/path.jpg'`, as `serve --help`
    and the README give it."""
    reply = requests.post(f"{open_engine.url}/?Action=SegmentHead&ImageURL={(SAMPLES / 'group.jpg').as_uri()}", timeout=30)

    assert reply.status_code == 200, reply.text
    labels = sample_labels()["group.jpg"]
    boxes = _boxes(reply.json())
    assert len(boxes) == len(labels) and all(max(iou(box, label) for label in labels) >= 0.5 for box in boxes)
    cutout = png_image(requests.get(reply.json()["Data"]["Elements"][0]["ImageURL"], timeout=5).content)
    assert cutout.mode == "RGBA" and cutout.size == boxes[0][2:]


def test_an_upload_gets_the_same_answer_as_its_image_url(open_engine):
    photo = SAMPLES / "group.jpg"
    by_url = requests.post(f"{open_engine.url}/?Action=SegmentHead&ImageURL={photo.as_uri()}", timeout=30).json()

    with photo.open("rb") as file:  # curl -F image=@group.jpg http://127.0.0.1:8080/segment
        form = requests.post(f"{open_engine.url}/segment", files={"image": ("group.jpg", file, "image/jpeg")}, timeout=30)
    body = requests.post(f"{open_engine.url}/segment?ReturnForm=mask", data=photo.read_bytes(), timeout=30)

    assert form.status_code == body.status_code == 200
    assert _boxes(form.json()) == _boxes(body.json()) == _boxes(by_url) and len(_boxes(by_url)) == 4
    assert png_image(requests.get(form.json()["Data"]["Elements"][1]["ImageURL"], timeout=5).content).mode == "RGBA"
    assert png_image(requests.get(body.json()["Data"]["Elements"][1]["ImageURL"], timeout=5).content).mode == "L"


@pytest.mark.parametrize(
    ("send", "status", "code", "words"),
    [
        ({"data": b""}, 400, "MissingImage", "curl -F image=@photo.jpg"),
        ({"files": {"ReturnForm": (None, "mask")}}, 400, "MissingImage", "no file field"),
        ({"data": b"just some notes\n"}, 400, "InvalidImage.Format", "text, not an image"),
        ({"files": {"image": ("a.jpg", b"")}}, 400, "MissingImage", "carries no image"),
        ({"data": b"\xff" * (4 * 1024 * 1024 + 1)}, 413, "InvalidImage.Size", "an image is at most 3145728"),
    ],
    ids=["empty body", "form without a file", "text", "empty file field", "over the size limit"],
)
def test_an_upload_that_is_no_image_is_told_what_it_is(open_server, send, status, code, words):
    reply = requests.post(f"{open_server.url}/segment", timeout=10, **send)

    assert (reply.status_code, reply.json()["Code"]) == (status, code) and words in reply.json()["Message"]


def test_with_signatures_verified_the_api_keeps_its_shape(gateway, host):
    """No upload route and no version left out: the SDK's API only, as the cloud's."""
    url = host.put("a.jpg", portrait(100, 100, [(20, 20, 40, 50)]))

    upload = requests.post(f"{gateway.url}/segment", data=b"\xff\xd8\xff", timeout=5)
    status, unversioned = plain(f"{gateway.url}/?Action=SegmentHead&ImageURL={url}")

    assert (upload.status_code, upload.json()["Code"]) == (404, "InvalidAction.NotFound")
    assert (status, unversioned["Code"]) == (400, "InvalidVersion") and gateway.api.watcher.admitted == []


def test_the_cloud_path_runs_against_serve_without_credentials(open_engine, tmp_path, capsys):
    """The README's recipe: `headseg serve &`, then the cloud code path (the real SDK) on this machine, no keys."""
    out = tmp_path / "out"
    args = ["segment", str(SAMPLES / "astronaut.jpg"), "--out", str(out), "--engine", "cloud", "--quiet"]

    assert main([*args, "--imageseg-endpoint", open_engine.url]) == 0, capsys.readouterr().err

    sidecar = json.loads((out / "heads" / "incoming" / "astronaut.jpg" / "heads.json").read_text())
    assert sidecar["engine"] == "cloud" and len(sidecar["heads"]) == 1
    assert main([*args, "--imageseg-endpoint", "https://imageseg.cn-shanghai.aliyuncs.com"]) == 2
    assert "no credentials" in capsys.readouterr().err  # only a SegmentHead on this machine goes without


def test_serve_help_says_what_it_takes(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])

    help_text = capsys.readouterr().out
    assert "Action=SegmentHead" in help_text and "Version=2019-12-30" in help_text and "curl" in help_text


_PARAMS = st.sampled_from(["Action", "Version", "ImageURL", "ReturnForm", "Signature", "Expires", "OSSAccessKeyId"])
_VALUES = st.one_of(
    st.sampled_from(["SegmentHead", "2019-12-30", "mask", "http://[", "file:///etc/passwd", "http://127.0.0.1:1/a", ""]),
    st.text(max_size=30),
)


@settings(max_examples=150, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "HEAD", "PUT"]),
    path=st.sampled_from(["/", "/results/", "/results/x.png", "/other", ""]),
    query=st.lists(st.tuples(_PARAMS, _VALUES), max_size=5),
    headers=st.dictionaries(
        st.sampled_from(["x-acs-action", "x-acs-version", "authorization", "content-type", "x-acs-date"]),
        st.one_of(st.sampled_from(["SegmentHead", "2019-12-30", "application/x-www-form-urlencoded"]), st.text(max_size=40)),
    ),
    body=st.binary(max_size=40),
    signed=st.booleans(),
)
@example("POST", "/", [("ImageURL", "http://[")], {"x-acs-action": "SegmentHead", "x-acs-version": "2019-12-30"}, b"", False)
def test_any_request_gets_an_answer_in_the_services_format(method, path, query, headers, body, signed):
    """Whatever arrives, the answer is the API's: JSON with a Code (or SegmentHead's Data), or OSS's XML error on
    a result URL; never a crash. No download leaves the process: no host is allowed, no file."""
    api = SegmentHead(
        marker_heads, lambda: "http://127.0.0.1:9", gateway=Gateway({KEY: SECRET} if signed else None),
        sources=Sources(hosts=frozenset()),
    )

    reply = api.answer(Request(method, path, query, headers, body))

    if method in ("GET", "HEAD") and path.startswith("/results/"):
        assert reply.status in (403, 404) and b"<Code>" in reply.body
    else:
        answer = json.loads(reply.body)
        assert 400 <= reply.status < 500 and answer["Code"] and answer["RequestId"] == reply.headers["x-acs-request-id"]


# -- the gateway --------------------------------------------------------------------------------------------------------
def test_wrong_secret_is_signature_does_not_match(gateway, host):
    with pytest.raises(ClientException) as caught:
        segment(gateway, host.put("a.jpg", portrait(100, 100, [])), secret="not-the-secret")

    error = caught.value
    assert (error.code, error.status_code) == ("SignatureDoesNotMatch", 400)
    assert error.request_id == error.data["RequestId"] and error.data["HostId"] == HOST_ID
    assert host.logged() == []


def test_unknown_access_key_is_not_found(gateway, host):
    with pytest.raises(ClientException) as caught:
        segment(gateway, host.put("a.jpg", portrait(100, 100, [])), key="LTAInobody")

    assert (caught.value.code, caught.value.status_code) == ("InvalidAccessKeyId.NotFound", 404)


@pytest.mark.parametrize(
    ("token", "code"),
    [(STS_TOKEN, None), (None, "MissingSecurityToken"), ("stale", "InvalidSecurityToken.MismatchWithAccessKey")],
)
def test_sts_token_is_required(gateway, host, token, code):
    url = host.put("a.jpg", portrait(100, 100, []))

    if code is None:
        assert segment(gateway, url, key=STS_KEY, secret=STS_SECRET, token=token).body.data.elements == []
    else:
        with pytest.raises(ClientException) as caught:
            segment(gateway, url, key=STS_KEY, secret=STS_SECRET, token=token)
        assert caught.value.code == code


def test_replayed_request_is_rejected(gateway, host):
    segment(gateway, host.put("a.jpg", portrait(100, 100, [])))
    (signed,) = gateway.api.watcher.admitted
    raw_path = f"/?{urllib.parse.urlencode(signed.query)}"

    replay = requests.post(gateway.url + raw_path, headers=signed.headers, data=b"", timeout=5)
    assert (replay.status_code, replay.json()["Code"]) == (400, "SignatureNonceUsed")

    # A fresh nonce does not help: the nonce is signed.
    forged = requests.post(
        gateway.url + raw_path, headers={**signed.headers, "x-acs-signature-nonce": "fresh"}, data=b"", timeout=5
    )
    assert (forged.status_code, forged.json()["Code"]) == (400, "SignatureDoesNotMatch")


def test_stale_date_is_rejected(gateway, host, monkeypatch):
    stale = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 20 * 60))
    monkeypatch.setattr(Utils, "get_timestamp", staticmethod(lambda: stale))  # the SDK's clock, not its logic

    with pytest.raises(ClientException) as caught:
        segment(gateway, host.put("a.jpg", portrait(100, 100, [])))

    assert caught.value.code == "InvalidTimeStamp.Expired"


# -- SegmentHead's input checks -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "make", "code"),
    [
        ("huge.bmp", lambda: portrait(1990, 1990, [], fmt="BMP"), "InvalidImage.Size"),
        ("tiny.jpg", lambda: portrait(32, 32, []), "InvalidImage.Resolution"),
        ("wide.png", lambda: portrait(2000, 100, [], fmt="PNG"), "InvalidImage.Resolution"),
        ("anim.gif", lambda: portrait(100, 100, [(20, 20, 40, 50)], fmt="GIF"), "InvalidImage.Format"),
        ("cut.jpg", lambda: portrait(300, 300, [(20, 20, 40, 50)])[:3000], "InvalidImage.Content"),
    ],
)
def test_invalid_input_images(gateway, host, name, make, code):
    with pytest.raises(ClientException) as caught:
        segment(gateway, host.put(name, make()))

    assert (caught.value.code, caught.value.status_code) == (code, 400)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("case", ["missing", "forbidden", "redirected", "refused"])
def test_undownloadable_image_url(gateway, host, case):
    url = host.put("a.jpg", portrait(100, 100, []))
    if case == "missing":
        url += ".gone"
    elif case == "forbidden":
        host.inject(Fault("status", response=Response(403, b"<Error><Code>AccessDenied</Code></Error>")))
    elif case == "redirected":
        host.inject(Fault("status", response=Response(302, b"", {"Location": url})))
    else:
        url = f"http://127.0.0.1:{_closed_port()}/a.jpg"

    with pytest.raises(ClientException) as caught:
        segment(gateway, url)

    assert (caught.value.code, caught.value.status_code) == ("InvalidImage.Download", 400)
    assert len(host.logged()) == (case != "refused")  # once: a redirect is never followed


def test_missing_image_url(gateway):
    with pytest.raises(ClientException) as caught:
        segment(gateway, None)

    assert caught.value.code == "MissingImageURL"
