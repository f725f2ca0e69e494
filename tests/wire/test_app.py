"""The composition root over the wire: rotated STS credentials swap clients without disturbing a run in flight."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import unquote

from headseg.function.credentials import Credentials
from tests.conftest import ACCESS_KEY_ID, Cloud, FcCredentials, fc_context, oss_event
from tests.fakes._server import Fault
from tests.fakes.imageseg import is_result_download

ROTATED = Credentials("STS.RotatedKey0000000000002", "RotatedSecret4Tests0nly00000002", "CAISrotatedSTStoken00000000000002")


@dataclass
class RotatedCredentials(FcCredentials):
    access_key_id: str = ROTATED.access_key_id
    access_key_secret: str = ROTATED.access_key_secret
    security_token: str = ROTATED.security_token or ""


def signed_by(entry) -> str:
    """The access key id of a request to the fake OSS (Authorization header, V4)."""
    return entry.request.header("authorization").split("Credential=")[1].split("/")[0]


def test_rotating_credentials_mid_run_neither_breaks_it_nor_mixes_keys(cloud: Cloud):
    for fake in (cloud.oss, cloud.imageseg):
        fake.credentials[ROTATED.access_key_id] = ROTATED.access_key_secret
        fake.tokens[ROTATED.access_key_id] = ROTATED.security_token or ""
    app = cloud.app
    rotated = []

    def rotate(request) -> bool:
        # between SegmentHead's answer and the cutout uploads, the next invocation brings rotated credentials
        rotated.append(app.pipeline(ROTATED))
        return True

    cloud.imageseg.inject(Fault("hook", is_result_download, hook=rotate))
    etag = cloud.upload_portrait("incoming/a.jpg", [(40, 50, 60, 80), (170, 40, 70, 90)])
    puts_before = len(cloud.oss.logged(lambda r: r.method == "PUT"))

    result = cloud.invoke_key("incoming/a.jpg", etag)

    assert rotated and result["outcomes"][0]["outcome"] == "done" and result["outcomes"][0]["heads"] == 2
    puts = cloud.oss.logged(lambda r: r.method == "PUT")[puts_before:]
    assert len(puts) == 4 and {signed_by(entry) for entry in puts} == {ACCESS_KEY_ID}  # the run kept its clients (2 cutouts, sidecar, mark)
    # the next invocation runs on the rotated credentials' clients
    second = cloud.upload_portrait("incoming/b.jpg", [(40, 50, 60, 80)])
    outcome = json.loads(cloud.function.handler(oss_event(("incoming/b.jpg", second)), fc_context(credentials=RotatedCredentials())))
    assert outcome["outcomes"][0]["outcome"] == "done"
    assert app.pipeline(ROTATED) is rotated[0]
    latest = cloud.oss.logged(lambda r: r.method == "PUT" and "incoming/b.jpg/" in unquote(r.path))
    assert latest and {signed_by(entry) for entry in latest} == {ROTATED.access_key_id}


def test_the_initializer_builds_the_clients_for_the_function_roles_credentials(cloud: Cloud):
    context = fc_context()
    cloud.function.initialize(context)
    app = cloud.app
    segmenter = app.pipeline(app.credentials(context)).segmenter
    assert segmenter._client is not None and segmenter._session is not None  # the first event builds nothing
    etag = cloud.upload_portrait("incoming/a.jpg", [(40, 50, 60, 80)])
    assert cloud.invoke_key("incoming/a.jpg", etag)["outcomes"][0]["outcome"] == "done"
    assert app.pipeline(app.credentials(context)).segmenter is segmenter


def test_an_initializer_without_credentials_still_starts(cloud: Cloud, caplog):
    cloud.function.initialize(fc_context(credentials=None))  # python3.12 without the variables: the first event brings them
    assert "no credentials yet" in caplog.text
