"""`headseg serve` answers the real imageseg SDK like SegmentHead does, offline."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests
from alibabacloud_imageseg20191230 import models
from alibabacloud_imageseg20191230.client import Client
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_util.models import RuntimeOptions

from headseg.cli import main
from headseg.local.serve import SegmentHeadServer
from tests.conftest import SAMPLES, iou, png_image, sample_labels

KEY, SECRET = "LTAI5tServeTestKey", "serve-test-secret"


@pytest.fixture
def server(local_segmenter):
    server = SegmentHeadServer(("127.0.0.1", 0), local_segmenter.cut, {KEY: SECRET})
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def client(server: SegmentHeadServer, secret: str = SECRET) -> Client:
    endpoint = server.url.removeprefix("http://")
    return Client(open_api_models.Config(access_key_id=KEY, access_key_secret=secret, endpoint=endpoint, protocol="http", region_id="cn-shanghai"))


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


def test_a_wrong_secret_is_refused_like_the_gateway_does(server):
    from alibabacloud_tea_openapi.exceptions import ClientException

    with pytest.raises(ClientException) as error:
        client(server, "wrong").segment_head_with_options(models.SegmentHeadRequest(image_url=(SAMPLES / "astronaut.jpg").as_uri()), RuntimeOptions())
    assert error.value.code == "SignatureDoesNotMatch"


@pytest.mark.parametrize(
    "url, code",
    [(lambda tmp: (tmp / "missing.jpg").as_uri(), "InvalidImage.Download"), (lambda tmp: _write(tmp / "t.png", 20), "InvalidImage.Resolution")],
)
def test_bad_images_get_the_services_error_codes(server, tmp_path, url, code):
    from alibabacloud_tea_openapi.exceptions import ClientException

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
