"""The fake OSS, driven through the real oss2 SDK (and `requests` for presigned URLs): only what the product's
tests cannot show for it. That it refuses what OSS refuses (signatures v1 and v4, tokens, presigned URLs, MD5,
clock skew, oversized listings), that it fails the test on what it does not understand or was not expected to see
(unknown requests, a canary contacted, a fault never met), and that its faults behave as their docstring says where
a passing product test could not tell (stalls before and after authentication, a prompt stop). Serving objects,
listings, scripts and the other faults are proved by every wire test that uses them: an armed fault that no
request meets fails its test."""

from __future__ import annotations

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

from tests.fakes._server import CanaryServer, Fault
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
def test_content_md5_is_verified(fake: FakeOss) -> None:
    b = bucket(fake)
    b.put_object("k", b"data", headers={"Content-MD5": oss2.utils.content_md5(b"data")})
    with pytest.raises(oss_errors.InvalidDigest):
        b.put_object("k", b"data", headers={"Content-MD5": oss2.utils.content_md5(b"other")})
    assert fake.get(BUCKET, "k") == b"data"


# -- ranges -------------------------------------------------------------------------------------------------------
DATA = b"0123456789abcdef"  # 16 bytes


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


@pytest.mark.parametrize("version", ["v1", "v2", "v2 unencoded"])
def test_listings_page_through_a_prefix_and_roll_up_folders(fake: FakeOss, many: list[str], version: str) -> None:
    """Pages found by bisection of the sorted keys, names escaped in XML when not url-encoded, folders rolled up
    under a delimiter, and a start equal to a folder skipping that folder, as OSS does."""
    folders = ["many/sub/a&b<c>.jpg", "many/sub/z", "many/sub2/x"]
    for key in folders:
        fake.put(BUCKET, key, b"")
    b = bucket(fake)

    def keys(**options: object) -> list[tuple[str, bool]]:
        if version == "v1":
            options["marker"] = options.pop("start_after", "")
            return [(o.key, o.is_prefix()) for o in oss2.ObjectIterator(b, prefix="many/", **options)]
        encoding = {"encoding_type": ""} if version == "v2 unencoded" else {}
        return [(o.key, o.is_prefix()) for o in oss2.ObjectIteratorV2(b, prefix="many/", **encoding, **options)]

    assert keys(max_keys=100) == [(key, False) for key in sorted(many + folders)]
    expected = sorted([(key, False) for key in many] + [("many/sub/", True), ("many/sub2/", True)])
    assert keys(delimiter="/", max_keys=7) == expected
    assert keys(delimiter="/", start_after="many/sub/") == [("many/sub2/", True)]
    fake.delete(BUCKET, many[5])
    assert fake.keys(BUCKET, "many/") == sorted(many[:5] + many[6:] + folders)


def test_listing_rejects_too_many_keys(fake: FakeOss) -> None:
    with pytest.raises(oss_errors.InvalidArgument):
        bucket(fake).list_objects_v2(max_keys=1001)


# -- faults -------------------------------------------------------------------------------------------------------
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


def test_a_fault_no_request_meets_fails_the_test_unless_optional() -> None:
    server = FakeOss({AK: SK}).start()
    server.inject(Fault("drop", FakeOss.match("GET", BUCKET, "never-read")))
    server.inject(Fault("drop", FakeOss.match("GET", BUCKET, "maybe"), optional=True))
    with pytest.raises(AssertionError, match="1 fault.s. armed but never met by a request: drop x1 matching"):
        server.stop()

