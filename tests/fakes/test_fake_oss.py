"""Tests of the fake OSS server, driven through the real oss2 SDK (and `requests` for presigned URLs)."""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import oss2
import pytest
import requests
from oss2 import exceptions as oss_errors
from oss2.credentials import StaticCredentialsProvider

from tests.fakes._server import CanaryServer, Fault, Request, Response
from tests.fakes.oss import FakeOss

BUCKET = "headseg-test"
REGION = "cn-shanghai"
AK, SK = "LTAI-test-key", "test-secret"
STS_AK, STS_SK, TOKEN = "STS.test-key", "sts-secret", "CAIS/token+with=odd/chars"

AUTHS: dict[str, Callable[[], object]] = {
    "v1": lambda: oss2.Auth(AK, SK),
    "sts-v1": lambda: oss2.StsAuth(STS_AK, STS_SK, TOKEN),
    "v4": lambda: oss2.ProviderAuthV4(StaticCredentialsProvider(AK, SK)),
    "sts-v4": lambda: oss2.ProviderAuthV4(StaticCredentialsProvider(STS_AK, STS_SK, TOKEN)),
    "sts-v4-stsauth": lambda: oss2.StsAuth(STS_AK, STS_SK, TOKEN, auth_version=oss2.AUTH_VERSION_4),
}
KEYS = [
    "plain.txt",
    "with space/and+plus.bin",
    "100%/literal%20percent.txt",
    "照片/头像 1.jpg",
    "deep/a/b/c/d/e.png",
    "odd~chars*(x)!'=&?#.dat",
]


@pytest.fixture
def fake():
    server = FakeOss({AK: SK, STS_AK: STS_SK}, tokens={STS_AK: TOKEN}, region=REGION).start()
    server.create_bucket(BUCKET)
    yield server
    server.stop()


def bucket(fake: FakeOss, auth: str | object = "v1", name: str = BUCKET, region: str = REGION) -> oss2.Bucket:
    auth_object = AUTHS[auth]() if isinstance(auth, str) else auth
    return oss2.Bucket(auth_object, fake.address, name, region=region)


def error_code(response: requests.Response) -> str:
    return ET.fromstring(response.content).findtext("Code") or ""


def wait_until(condition: Callable[[], bool], timeout: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def with_param(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = [(k, value if k == name else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


# -- round trips --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("auth", list(AUTHS))
def test_put_get_head_delete_round_trip(fake: FakeOss, auth: str, key: str, tmp_path) -> None:
    b = bucket(fake, auth)
    data = f"payload for {key}".encode() * 50

    put = b.put_object(key, data, headers={"Content-Type": "image/png", "x-oss-meta-origin": "test"})

    stored = fake.object(BUCKET, key)
    assert stored is not None and stored.data == data
    assert stored.content_type == "image/png" and stored.metadata == {"x-oss-meta-origin": "test"}
    assert put.etag == stored.etag == hashlib.md5(data).hexdigest().upper()
    assert put.resp.headers["etag"] == f'"{stored.etag}"'
    assert put.crc == stored.crc64  # oss2 already compared it with its own CRC64

    got = b.get_object(key)
    assert got.read() == data
    assert (got.etag, got.content_type, got.content_length) == (put.etag, "image/png", len(data))
    assert got.server_crc == put.crc
    b.get_object_to_file(key, str(tmp_path / "copy"))  # checks the client CRC64 against x-oss-hash-crc64ecma
    assert (tmp_path / "copy").read_bytes() == data

    head = b.head_object(key)
    assert (head.content_length, head.etag, head.headers["x-oss-meta-origin"]) == (len(data), put.etag, "test")
    assert b.object_exists(key)
    assert [o.key for o in oss2.ObjectIteratorV2(b, prefix=key)] == [key]

    b.delete_object(key)
    assert fake.get(BUCKET, key) is None
    assert not b.object_exists(key)
    with pytest.raises(oss_errors.NoSuchKey):
        b.get_object(key)
    with pytest.raises(oss_errors.NoSuchKey):  # HEAD has no body: the error travels in x-oss-err
        b.head_object(key)
    b.delete_object(key)  # deleting a missing object is still 204


def test_helpers_and_defaults(fake: FakeOss) -> None:
    etag = fake.put("other-bucket", "a/b.txt", b"abc", content_type="text/plain")
    assert etag == "900150983CD24FB0D6963F7D28E17F72"
    assert fake.get("other-bucket", "a/b.txt") == b"abc" and fake.get("other-bucket", "missing") is None
    assert fake.keys("other-bucket") == ["a/b.txt"] and fake.keys("other-bucket", "b") == []
    b = bucket(fake, name="other-bucket")
    assert b.get_object("a/b.txt").content_type == "text/plain"
    b.put_object("no-extension", b"x")  # oss2 sends no Content-Type here
    assert fake.object("other-bucket", "no-extension").content_type == "application/octet-stream"
    fake.delete("other-bucket", "a/b.txt")
    assert fake.keys("other-bucket") == ["no-extension"]


def test_missing_bucket(fake: FakeOss) -> None:
    b = bucket(fake, name="no-such-bucket")
    with pytest.raises(oss_errors.NoSuchBucket):
        b.put_object("k", b"x")
    with pytest.raises(oss_errors.NoSuchBucket):
        b.get_object("k")
    with pytest.raises(oss_errors.NoSuchBucket):
        b.list_objects_v2()


def test_content_md5_is_verified(fake: FakeOss) -> None:
    b = bucket(fake)
    b.put_object("k", b"data", headers={"Content-MD5": oss2.utils.content_md5(b"data")})
    with pytest.raises(oss_errors.InvalidDigest):
        b.put_object("k", b"data", headers={"Content-MD5": oss2.utils.content_md5(b"other")})
    assert fake.get(BUCKET, "k") == b"data"


def test_batch_delete(fake: FakeOss) -> None:
    keys = ["a.txt", "照片/b c.jpg", "x+y%z"]
    for key in keys:
        fake.put(BUCKET, key, b"x")
    result = bucket(fake, "v4").batch_delete_objects(keys + ["never-existed"])
    assert sorted(result.deleted_keys) == sorted(keys + ["never-existed"])
    assert fake.keys(BUCKET) == []


# -- ranges -------------------------------------------------------------------------------------------------------
DATA = b"0123456789abcdef"  # 16 bytes


@pytest.mark.parametrize(
    "byte_range, standard, status, body, content_range",
    [
        ((2, 5), True, 206, b"2345", "bytes 2-5/16"),
        ((2, 5), False, 206, b"2345", "bytes 2-5/16"),
        ((10, None), True, 206, b"abcdef", "bytes 10-15/16"),
        ((None, 3), False, 206, b"def", "bytes 13-15/16"),
        ((10, 99), True, 206, b"abcdef", "bytes 10-15/16"),  # standard: the end is clamped
        ((10, 99), False, 200, DATA, None),  # OSS legacy: a range past the end is ignored
        ((16, 20), False, 200, DATA, None),
        ((None, 99), False, 200, DATA, None),
        ((None, 99), True, 206, DATA, "bytes 0-15/16"),
        ((5, 2), True, 200, DATA, None),  # a reversed range is not a range at all
    ],
)
def test_ranged_get(fake: FakeOss, byte_range, standard: bool, status: int, body: bytes, content_range) -> None:
    fake.put(BUCKET, "r.bin", DATA)
    headers = {"x-oss-range-behavior": "standard"} if standard else None
    result = bucket(fake, "v4").get_object("r.bin", byte_range=byte_range, headers=headers)
    assert (result.status, result.read(), result.content_range) == (status, body, content_range)
    assert result.server_crc == fake.object(BUCKET, "r.bin").crc64  # always the whole object's CRC


@pytest.mark.parametrize("size", [16, 0])
def test_unsatisfiable_standard_range_is_416(fake: FakeOss, size: int) -> None:
    fake.put(BUCKET, "r.bin", DATA[:size])
    with pytest.raises(oss_errors.ServerError) as caught:
        bucket(fake).get_object("r.bin", byte_range=(size, size + 9), headers={"x-oss-range-behavior": "standard"})
    assert (caught.value.status, caught.value.code) == (416, "InvalidRange")


# -- signature failures ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", ["v1", "v4"])
def test_wrong_secret_is_signature_does_not_match(fake: FakeOss, version: str) -> None:
    auth = oss2.Auth(AK, "not-the-secret") if version == "v1" else oss2.AuthV4(AK, "not-the-secret")
    fake.put(BUCKET, "k", b"x")
    b = bucket(fake, auth)
    for call in (lambda: b.put_object("k", b"y"), lambda: b.get_object("k"), lambda: b.head_object("k"),
                 lambda: b.list_objects_v2(prefix="照片/ +")):
        with pytest.raises(oss_errors.SignatureDoesNotMatch) as caught:
            call()
        assert caught.value.status == 403 and caught.value.request_id
    assert "StringToSign" in caught.value.details
    assert fake.get(BUCKET, "k") == b"x"


@pytest.mark.parametrize(
    "version, access_key, token, code",
    [
        (version, access_key, token, code)
        for version in ("v1", "v4")
        for access_key, token, code in [
            ("unknown-key", None, "InvalidAccessKeyId"),
            (STS_AK, None, "InvalidAccessKeyId"),  # an STS key without its token is unknown
            (STS_AK, "forged-token", "InvalidSecurityToken"),
            (AK, "a-token-for-a-permanent-key", "InvalidSecurityToken"),
        ]
    ],
)
def test_bad_key_or_token_is_rejected(fake: FakeOss, version: str, access_key: str, token, code: str) -> None:
    secret = STS_SK if access_key == STS_AK else SK
    provider = StaticCredentialsProvider(access_key, secret, token)
    auth = oss2.ProviderAuth(provider) if version == "v1" else oss2.ProviderAuthV4(provider)
    with pytest.raises(oss_errors.ServerError) as caught:
        bucket(fake, auth).put_object("k", b"x")
    assert (caught.value.status, caught.value.code) == (403, code)
    assert fake.get(BUCKET, "k") is None


def test_anonymous_request_is_access_denied(fake: FakeOss) -> None:
    fake.put(BUCKET, "k", b"x")
    with pytest.raises(oss_errors.AccessDenied):
        bucket(fake, oss2.AnonymousAuth()).get_object("k")


def test_v4_wrong_region_is_rejected(fake: FakeOss) -> None:
    with pytest.raises(oss_errors.SignatureDoesNotMatch):
        bucket(fake, "v4", region="cn-hangzhou").put_object("k", b"x")


@pytest.mark.parametrize("auth", ["v1", "v4"])
def test_clock_skew_tolerance(fake: FakeOss, auth: str) -> None:
    b = bucket(fake, auth)
    fake.clock_offset = 14 * 60
    b.put_object("k", b"x")
    fake.clock_offset = -16 * 60
    with pytest.raises(oss_errors.ServerError) as caught:
        b.put_object("k", b"x")
    assert (caught.value.status, caught.value.code) == (403, "RequestTimeTooSkewed")


# -- presigned URLs ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("slash_safe", [False, True])
@pytest.mark.parametrize("auth", list(AUTHS))
def test_presigned_url(fake: FakeOss, auth: str, slash_safe: bool) -> None:
    key = "照片/a b+c%d.jpg"
    fake.put(BUCKET, key, b"image bytes", content_type="image/jpeg")
    b = bucket(fake, auth)

    got = requests.get(b.sign_url("GET", key, 60, slash_safe=slash_safe), timeout=5)
    assert (got.status_code, got.content, got.headers["content-type"]) == (200, b"image bytes", "image/jpeg")
    head = requests.head(b.sign_url("HEAD", key, 60, slash_safe=slash_safe), timeout=5)
    assert (head.status_code, head.headers["content-length"]) == (200, "11")
    missing = requests.get(b.sign_url("GET", "missing.jpg", 60), timeout=5)
    assert (missing.status_code, error_code(missing)) == (404, "NoSuchKey")


@pytest.mark.parametrize("auth, param", [("v1", "Signature"), ("v1", "Expires"), ("sts-v1", "security-token"),
                                         ("v4", "x-oss-signature"), ("v4", "x-oss-expires"),
                                         ("sts-v4", "x-oss-security-token")])
def test_tampered_presigned_url_is_rejected(fake: FakeOss, auth: str, param: str) -> None:
    fake.put(BUCKET, "k.jpg", b"x")
    url = bucket(fake, auth).sign_url("GET", "k.jpg", 60)
    original = dict(parse_qsl(urlsplit(url).query))[param]
    tampered = str(int(original) + 60) if original.isdecimal() else original[:-2] + "AA"
    response = requests.get(with_param(url, param, tampered), timeout=5)
    expected = "InvalidSecurityToken" if "token" in param else "SignatureDoesNotMatch"
    assert (response.status_code, error_code(response)) == (403, expected)


@pytest.mark.parametrize("auth", ["v1", "sts-v4"])
def test_expired_presigned_url_is_rejected(fake: FakeOss, auth: str) -> None:
    fake.put(BUCKET, "k.jpg", b"x")
    url = bucket(fake, auth).sign_url("GET", "k.jpg", 60)
    assert requests.get(url, timeout=5).status_code == 200
    fake.clock_offset = 61
    response = requests.get(url, timeout=5)
    assert (response.status_code, error_code(response)) == (403, "AccessDenied")
    assert ET.fromstring(response.content).findtext("Message") == "Request has expired."


def test_v4_presigned_url_with_additional_headers(fake: FakeOss) -> None:
    fake.put(BUCKET, "k", DATA)
    url = bucket(fake, "v4").sign_url("GET", "k", 60, headers={"Range": "bytes=0-3"}, additional_headers=["range"])
    assert "x-oss-additional-headers=range" in url
    ranged = requests.get(url, headers={"Range": "bytes=0-3"}, timeout=5)
    assert (ranged.status_code, ranged.content) == (206, b"0123")
    assert requests.get(url, timeout=5).status_code == 403  # the signed header is missing


# -- listing ------------------------------------------------------------------------------------------------------
@pytest.fixture
def many(fake: FakeOss) -> list[str]:
    keys = [f"many/{i:04d}{' 照片+%' if i % 7 == 0 else ''}.jpg" for i in range(1050)]
    for key in keys:
        fake.put(BUCKET, key, key.encode())
    fake.put(BUCKET, "manx", b"outside the prefix")
    fake.put(BUCKET, "other/x", b"outside the prefix")
    return sorted(keys)


@pytest.mark.parametrize("max_keys", [100, 1000])
@pytest.mark.parametrize("iterator", [oss2.ObjectIterator, oss2.ObjectIteratorV2])
@pytest.mark.parametrize("auth", ["v1", "v4"])
def test_listing_pages_through_every_key_once(fake: FakeOss, many: list[str], auth, iterator, max_keys) -> None:
    listed = list(iterator(bucket(fake, auth), prefix="many/", max_keys=max_keys))
    assert [o.key for o in listed] == many
    assert all(o.size == len(o.key.encode()) and o.etag == fake.object(BUCKET, o.key).etag for o in listed)
    pages = fake.logged(FakeOss.match(method="GET", key=""))
    assert len(pages) == -(-1050 // max_keys) and all(entry.status == 200 for entry in pages)


def test_listing_with_delimiter_and_start_after(fake: FakeOss) -> None:
    for key in ["a/1", "a/2", "b/c/3", "top.txt", "z"]:
        fake.put(BUCKET, key, b"x")
    b = bucket(fake, "v4")
    result = b.list_objects(delimiter="/")
    assert ([o.key for o in result.object_list], result.prefix_list) == (["top.txt", "z"], ["a/", "b/"])
    result = b.list_objects_v2(delimiter="/", max_keys=2)
    assert (result.prefix_list, result.is_truncated) == (["a/", "b/"], True)
    result = b.list_objects_v2(delimiter="/", continuation_token=result.next_continuation_token)
    assert ([o.key for o in result.object_list], result.is_truncated) == (["top.txt", "z"], False)
    assert [o.key for o in oss2.ObjectIteratorV2(b, start_after="a/2")] == ["b/c/3", "top.txt", "z"]
    assert [o.key for o in oss2.ObjectIterator(b, prefix="b/")] == ["b/c/3"]


def test_listing_rejects_too_many_keys(fake: FakeOss) -> None:
    with pytest.raises(oss_errors.InvalidArgument):
        bucket(fake).list_objects_v2(max_keys=1001)


# -- faults -------------------------------------------------------------------------------------------------------
def test_throttle_then_success(fake: FakeOss) -> None:
    b = bucket(fake, "v4")
    fake.throttle(times=1)
    with pytest.raises(oss_errors.ServerError) as caught:
        b.put_object("k", b"x")  # oss2 itself does not retry
    assert (caught.value.status, caught.value.code) == (503, "SlowDown") and caught.value.request_id
    b.put_object("k", b"x")
    assert [entry.status for entry in fake.logged()] == [503, 200]


def test_server_error_matches_one_key_and_reaches_head(fake: FakeOss) -> None:
    fake.put(BUCKET, "ok.jpg", b"x")
    fake.put(BUCKET, "a/b.jpg", b"x")
    fake.server_error(times=2, match=FakeOss.match(key="a/b.jpg"))
    b = bucket(fake)
    assert b.get_object("ok.jpg").read() == b"x"
    with pytest.raises(oss_errors.ServerError) as caught:
        b.head_object("a/b.jpg")
    assert (caught.value.status, caught.value.code) == (500, "InternalError")
    with pytest.raises(oss_errors.ServerError):
        b.get_object("a/b.jpg")
    assert b.get_object("a/b.jpg").read() == b"x"


def test_object_iterator_retries_through_throttling(fake: FakeOss, many: list[str]) -> None:
    fake.throttle(times=2, match=FakeOss.match(method="GET", key=""))
    assert [o.key for o in oss2.ObjectIteratorV2(bucket(fake), prefix="many/", max_keys=1000)] == many


def test_dropped_connection_is_request_error(fake: FakeOss) -> None:
    fake.put(BUCKET, "k", b"x")
    fake.drop(match=FakeOss.match(method="GET"))
    b = bucket(fake)
    with pytest.raises(oss_errors.RequestError):
        b.get_object("k")
    assert b.get_object("k").read() == b"x"
    assert [entry.status for entry in fake.logged()] == [0, 200]


def test_delay_is_observed(fake: FakeOss) -> None:
    fake.put(BUCKET, "k", b"x")
    fake.delay(0.3, match=FakeOss.match(method="GET", key="k"))
    b = bucket(fake)
    started = time.monotonic()
    assert b.get_object("k").read() == b"x"
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    b.get_object("k")
    assert time.monotonic() - started < 0.3


def test_trickled_body_outlasts_a_per_read_timeout(fake: FakeOss) -> None:
    data = bytes(range(20))
    fake.put(BUCKET, "slow.bin", data)
    fault = fake.trickle(0.05, chunk=2, match=FakeOss.match(method="GET", key="slow.bin"))
    b = oss2.Bucket(AUTHS["v4"](), fake.address, BUCKET, region=REGION, connect_timeout=0.3)  # per read
    started = time.monotonic()
    result = b.get_object("slow.bin")
    assert result.content_length == 20 and result.read() == data
    assert time.monotonic() - started >= 0.5  # 10 chunks 0.05 s apart: longer than the 0.3 s read timeout
    assert fault.hits == 1 and [entry.status for entry in fake.logged()] == [200]
    started = time.monotonic()
    assert b.get_object("slow.bin").read() == data  # once only; the connection is still usable
    assert time.monotonic() - started < 0.3


@pytest.mark.parametrize("kind", ["trickle", "stall"])
def test_a_slow_fault_ends_when_the_client_hangs_up(fake: FakeOss, kind: str) -> None:
    fake.put(BUCKET, "k", b"x" * 10_000)
    fake.inject(Fault(kind, seconds=0.02 if kind == "trickle" else 60, chunk=10))  # 20 s or 60 s if nobody stops it
    url = bucket(fake).sign_url("GET", "k", 60)
    with requests.Session() as http:
        if kind == "trickle":
            reply = http.get(url, stream=True, timeout=2)
            assert reply.headers["Content-Length"] == "10000" and reply.raw.read(30) == b"x" * 30
            reply.close()
        else:
            with pytest.raises(requests.ReadTimeout):
                http.get(url, timeout=0.2)
    assert wait_until(lambda: fake.open_connections == 0), "the handler thread kept going after the hang-up"
    assert [entry.status for entry in fake.logged()] == [200 if kind == "trickle" else 0]


@pytest.mark.parametrize(
    "fault",
    [Fault("trickle", seconds=0.05), Fault("stall", seconds=60), Fault("stall", seconds=60, after_auth=True),
     Fault("delay", seconds=60)],
    ids=["trickle", "stall", "stall-after-auth", "delay"],
)
def test_stop_cuts_slow_faults_short_and_leaves_no_thread(fault: Fault) -> None:
    server = FakeOss({AK: SK}).start()
    try:
        server.put(BUCKET, "k", b"x" * 1000)
        server.inject(fault)
        url = bucket(server).sign_url("GET", "k", 60)
        outcome: dict[str, object] = {}

        def fetch() -> None:
            try:
                outcome["body"] = requests.get(url, timeout=10).content
            except requests.RequestException as exc:
                outcome["error"] = exc

        client = threading.Thread(target=fetch)
        client.start()
        assert wait_until(lambda: server.connections == 1)
        time.sleep(0.15)  # the request is read and its fault under way
        threads = f"{server.name}@{server.port} "
    finally:
        started = time.monotonic()
        server.stop()
    assert time.monotonic() - started < 0.5
    assert [t.name for t in threading.enumerate() if t.name.startswith(threads)] == []
    client.join(2)
    assert not client.is_alive() and "error" in outcome and "body" not in outcome


def test_stall_comes_after_the_signature_check(fake: FakeOss) -> None:
    fault = fake.stall(5)
    started = time.monotonic()
    with pytest.raises(oss_errors.SignatureDoesNotMatch):  # a bad signature is still answered at once
        bucket(fake, oss2.Auth(AK, "not-the-secret")).put_object("k", b"x")
    assert time.monotonic() - started < 0.3 and fault.hits == 0
    b = oss2.Bucket(AUTHS["v4"](), fake.address, BUCKET, region=REGION, connect_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(oss_errors.RequestError):
        b.put_object("k", b"x")
    assert 0.3 <= time.monotonic() - started < 2
    assert fault.hits == 1 and fake.get(BUCKET, "k") is None  # stalled before the operation ran
    b.put_object("k", b"y")
    assert fake.get(BUCKET, "k") == b"y"
    assert [entry.status for entry in fake.logged()] == [403, 0, 200]


def test_stall_before_auth_leaves_even_a_bad_signature_unanswered(fake: FakeOss) -> None:
    fake.stall(5, after_auth=False)
    b = oss2.Bucket(oss2.Auth(AK, "not-the-secret"), fake.address, BUCKET, connect_timeout=0.3)
    with pytest.raises(oss_errors.RequestError):
        b.get_object("k")
    with pytest.raises(oss_errors.SignatureDoesNotMatch):
        b.get_object("k")
    assert [entry.status for entry in fake.logged()] == [0, 403]


def test_404_without_a_body_is_not_found_rather_than_no_such_key(fake: FakeOss) -> None:
    """OSS answers some 404s with no body and no x-oss-err: oss2 then raises the NotFound base class."""
    fake.put(BUCKET, "k", b"x")
    fake.script(FakeOss.match(method="HEAD", key="k"), [Response(404), Response(404)])
    fake.script(FakeOss.match(method="GET", key="k"), [Response(404)])
    b = bucket(fake)
    with pytest.raises(oss_errors.NotFound) as head:
        b.head_object("k")
    with pytest.raises(oss_errors.NotFound) as get:
        b.get_object("k")
    for caught in (head, get):
        assert type(caught.value) is oss_errors.NotFound and not isinstance(caught.value, oss_errors.NoSuchKey)
        assert (caught.value.status, caught.value.code, caught.value.body) == (404, "", b"")
    assert b.object_exists("k") is False  # its HEAD ?objectMeta got the second scripted 404
    with pytest.raises(oss_errors.NoSuchKey):  # the fake's own 404 carries the code, in x-oss-err for HEAD
        b.head_object("missing")
    assert b.get_object("k").read() == b"x"  # script used up: served again


def test_script_answers_in_order_then_serves(fake: FakeOss) -> None:
    fake.put(BUCKET, "k", b"real")
    fake.put(BUCKET, "other", b"other")
    faults = fake.script(FakeOss.match(method="GET", key="k"), [Response(503, b"busy"), Response(200, b"scripted")])
    b = bucket(fake)
    url = b.sign_url("GET", "k", 60)
    first = requests.get(url, timeout=5)
    assert b.get_object("other").read() == b"other"  # not matched: served, and the script does not advance
    second, third = requests.get(url, timeout=5), requests.get(url, timeout=5)
    assert [(r.status_code, r.content) for r in (first, second, third)] == [
        (503, b"busy"), (200, b"scripted"), (200, b"real")
    ]
    assert [fault.hits for fault in faults] == [1, 1]


def test_a_hook_sees_each_request_on_arrival_and_after_its_reply(fake: FakeOss) -> None:
    fake.put(BUCKET, "k", b"kept")
    seen: list[str] = []

    def arrived(request: Request) -> bool:
        seen.append(f"arrived {request.method}")
        return request.method != "DELETE"  # a DELETE is dropped unserved

    def replied(request: Request) -> None:
        seen.append(f"replied {request.method}")

    fault = fake.inject(Fault("hook", times=3, hook=arrived, replied=replied))
    b = bucket(fake)
    assert b.head_object("k").content_length == 4
    b.put_object("k", b"new")
    with pytest.raises(oss_errors.RequestError):
        b.delete_object("k")
    assert seen == ["arrived HEAD", "replied HEAD", "arrived PUT", "replied PUT", "arrived DELETE"]
    assert fake.get(BUCKET, "k") == b"new" and fault.hits == 3
    assert [entry.status for entry in fake.logged()] == [200, 200, 0]


def test_fault_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="needs a response"):
        Fault("status")
    with pytest.raises(ValueError, match="only a \"stall\""):
        Fault("drop", after_auth=True)
    with pytest.raises(ValueError, match="unknown"):
        Fault("hang")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunk"):
        Fault("trickle", chunk=0)
    with pytest.raises(ValueError, match="needs a hook"):
        Fault("hook")
    with pytest.raises(ValueError, match="needs a hook"):
        Fault("drop", replied=lambda request: None)


# -- the canary ---------------------------------------------------------------------------------------------------
def test_canary_fails_the_test_when_contacted() -> None:
    canary = CanaryServer().start()
    with pytest.raises(oss_errors.ServerError) as caught:
        oss2.Bucket(oss2.Auth(AK, SK), canary.address, BUCKET).get_object("k")
    assert caught.value.status == 418
    assert [(e.request.method, e.request.path, e.status) for e in canary.logged()] == [("GET", f"/{BUCKET}/k", 418)]
    with pytest.raises(AssertionError, match=f"canary was contacted: 1 connection.*GET /{BUCKET}/k"):
        canary.stop()
    canary.check()  # reported once


def test_canary_counts_a_connection_without_a_request() -> None:
    canary = CanaryServer().start()
    socket.create_connection(("127.0.0.1", canary.port), timeout=1).close()
    with pytest.raises(AssertionError, match="1 connection.*requests \\[\\]"):
        canary.stop()


def test_canary_counts_a_connection_it_never_accepted() -> None:
    canary = CanaryServer().start()
    assert canary._httpd is not None
    canary._httpd.shutdown()  # the accept loop is gone; the listener still queues connections
    socket.create_connection(("127.0.0.1", canary.port), timeout=1).close()
    with pytest.raises(AssertionError, match="1 connection"):
        canary.stop()


def test_canary_fixture_is_quiet_when_unused(canary: CanaryServer) -> None:
    canary.check()
    assert not canary.contacted and canary.requests == []


def test_canary_expecting_contact_fails_without_it(canary: CanaryServer) -> None:
    canary.expect_contact()
    with pytest.raises(AssertionError, match="expected a connection"):
        canary.check()
    assert requests.get(canary.url + "/anything", timeout=5).status_code == 418  # from now on: fine either way
    assert canary.contacted


# -- what the fake does not understand ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, reason",
    [
        (lambda b: b.get_object_tagging("k"), "['tagging']"),
        (lambda b: b.copy_object(BUCKET, "k", "k2"), "x-oss-copy-source"),
        (lambda b: b.get_object("k", headers={"If-None-Match": '"abc"'}), "if-none-match"),
        (lambda b: b.create_bucket(), "a bucket"),
        (lambda b: oss2.Bucket(oss2.AuthV2(AK, SK), b.endpoint, BUCKET).get_object("k"), "OSS2"),
    ],
)
def test_unknown_request_fails_the_test(fake: FakeOss, call, reason: str) -> None:
    fake.put(BUCKET, "k", b"x")
    with pytest.raises(oss_errors.ServerError) as caught:
        call(bucket(fake))
    assert caught.value.status == 501
    with pytest.raises(AssertionError, match="unexpected traffic") as failure:
        fake.check()
    assert reason in str(failure.value)
    fake.check()  # reported once


def test_error_body_is_oss_xml(fake: FakeOss) -> None:
    response = requests.get(f"{fake.url}/{BUCKET}/missing", timeout=5)
    root = ET.fromstring(response.content)
    assert root.tag == "Error" and root.findtext("Code") == "AccessDenied"
    assert root.findtext("RequestId") == response.headers["x-oss-request-id"]
    head = requests.head(f"{fake.url}/{BUCKET}/missing", timeout=5)
    assert ET.fromstring(base64.b64decode(head.headers["x-oss-err"])).findtext("Code") == "AccessDenied"
