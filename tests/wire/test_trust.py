"""Trust boundaries and secrets: nothing written or deleted outside the outputs, cutouts fetched only from allowed
hosts, impossible boxes never written, secrets in no written record and no forged log line."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from headseg.function.hosts import UnsafeCutoutUrl, check_cutout_url
from headseg.function.sidecar import HeadRecord, Sidecar, Source
from tests.conftest import ACCESS_KEY_SECRET, BUCKET, SECURITY_TOKEN, Cloud, oss_event
from tests.fakes._server import CanaryServer, Fault, Response
from tests.fakes.imageseg import is_segment_call

HEADS = [(40, 50, 60, 80)]
ALLOWED = ("*.oss-cn-shanghai.aliyuncs.com", "127.0.0.1:9000")


def segmenthead_answer(*elements: dict) -> Response:
    body = {"RequestId": "R", "Data": {"Elements": list(elements)}}
    return Response(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # ECS metadata
        "http://100.100.100.200/latest/meta-data/",  # Alibaba Cloud's metadata server
        "http://127.0.0.1:9001/x.png",  # loopback, but not the listed port
        "http://10.0.0.8/x.png",
        "https://evil.example.com/x.png",
        "https://bucket.oss-cn-shanghai.aliyuncs.com.evil.example.com/x.png",
        "file:///etc/passwd",
        "ftp://bucket.oss-cn-shanghai.aliyuncs.com/x.png",
    ],
)
def test_cutout_urls_outside_the_allowlist_or_at_internal_addresses_are_refused(url):
    with pytest.raises(UnsafeCutoutUrl):
        check_cutout_url(url, ALLOWED)


def test_allowed_cutout_urls_pass():
    check_cutout_url("http://127.0.0.1:9000/result/a.png?sig=1", ALLOWED)  # listed exactly


def test_a_metadata_address_is_refused_even_when_listed():
    with pytest.raises(UnsafeCutoutUrl, match="metadata"):
        check_cutout_url("http://100.100.100.200/x.png", ("100.100.100.200",))


def test_a_cutout_url_at_an_unlisted_host_is_never_contacted(cloud: Cloud, canary: CanaryServer):
    element = {"X": 1, "Y": 1, "Width": 20, "Height": 20, "ImageURL": f"{canary.url}/steal.png"}
    cloud.imageseg.inject(Fault("status", is_segment_call, times=1, response=segmenthead_answer(element)))
    etag = cloud.upload_portrait("incoming/a.jpg", HEADS)
    outcome = cloud.invoke_key("incoming/a.jpg", etag)["outcomes"][0]
    assert (outcome["outcome"], outcome["code"]) == ("failed", "UnsafeCutoutURL")
    assert "not in CUTOUT_HOSTS" in outcome["reason"]
    # the canary fixture fails the test if anything reached it


def test_an_old_sidecar_listing_foreign_keys_never_gets_them_deleted(cloud: Cloud):
    victims = ["incoming/victim.jpg", "heads/incoming/other.jpg/head-0-aaaaaaaa.png", "elsewhere/x"]
    for key in victims:
        cloud.upload(key, b"keep me", "text/plain")
    tampered = Sidecar(Source(BUCKET, "incoming/a.jpg", "OLD", 1), "r", None, "cloud", [HeadRecord(i, k, 0, 0, 1, 1) for i, k in enumerate(victims)])
    cloud.upload("heads/incoming/a.jpg/heads.json", tampered.to_json(), "application/json")
    etag = cloud.upload_portrait("incoming/a.jpg", HEADS)
    assert cloud.invoke_key("incoming/a.jpg", etag)["outcomes"][0]["outcome"] == "done"
    assert all(cloud.read(key) == b"keep me" for key in victims)
    assert not cloud.oss.logged(lambda r: r.method == "DELETE")


def test_secrets_in_any_form_never_reach_a_written_record(cloud: Cloud, caplog):
    twice = quote(quote(SECURITY_TOKEN, safe=""), safe="")
    message = (
        f"cannot read ?security-token={quote(SECURITY_TOKEN, safe='')}&x={twice} "
        f"key {ACCESS_KEY_SECRET} StringToSign: GET\\n\\nx-oss-security-token:{SECURITY_TOKEN}"
    )
    echo = {"RequestId": "R", "Code": "InvalidImage.Content", "Message": message}
    cloud.imageseg.inject(Fault("status", is_segment_call, times=1, response=Response(400, json.dumps(echo).encode())))
    etag = cloud.upload_portrait("incoming/a.jpg", HEADS)
    cloud.invoke_key("incoming/a.jpg", etag)
    record = cloud.read("heads/incoming/a.jpg/error.json").decode()
    assert "InvalidImage.Content" in record and "cannot read" in record
    for secret in (SECURITY_TOKEN, quote(SECURITY_TOKEN, safe=""), twice, ACCESS_KEY_SECRET):
        assert secret not in record and secret not in caplog.text


def test_a_key_crafted_as_a_log_line_cannot_forge_one(cloud: Cloud, caplog):
    key = 'incoming/x"}\n{"level": "INFO", "message": "forged", "outcome": "done"}.jpg'
    cloud.invoke(oss_event((key, "ABC")))
    lines = [line for line in caplog.text.splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line is one JSON document
    assert not [line for line in parsed if line.get("message") == "forged"]
    assert any(line.get("key") == key for line in parsed)
