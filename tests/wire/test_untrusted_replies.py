"""What SegmentHead sends is untrusted: its replies and its cutout URLs, over the wire with the real SDK and HTTP
client. Every reply, however broken, ends in a classified outcome; a cutout URL is fetched only from the host and
address its check approved."""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import urllib3
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from urllib3.util import parse_url

from headseg.function.config import Config
from headseg.function.credentials import Credentials
from headseg.function.errors import BudgetExhausted, HeadsegError, RetriableError
from headseg.function.hosts import Target, UnsafeCutoutUrl, check_cutout_url, open_target
from headseg.function.layout import MAX_HEADS
from headseg.function.retry import Budget
from headseg.function.segmenters import Head, SegmentInput
from headseg.function.segmenters.cloud import CloudSegmenter
from headseg.function.segmenters.replies import MAX_COORDINATE, BadReply, read_reply
from tests.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, SECURITY_TOKEN, Cloud
from tests.fakes._server import CanaryServer, Fault, Response
from tests.fakes.imageseg import FakeImageseg, is_result_download, is_segment_call

HEAD = [(40, 50, 60, 80)]
DEEP = 100_000


def reply(body: bytes | str, status: int = 200, content_type: str = "application/json;charset=utf-8") -> Response:
    return Response(status, body.encode() if isinstance(body, str) else body, {"Content-Type": content_type})


def one_head(**fields: str | None) -> str:
    """A reply with one element whose fields are the given raw JSON texts (None leaves a field out)."""
    values = {"X": "40", "Y": "50", "Width": "60", "Height": "80", "ImageURL": '"http://127.0.0.1:1/x.png"', **fields}
    element = ", ".join(f'"{name}": {value}' for name, value in values.items() if value is not None)
    return f'{{"RequestId": "R", "Data": {{"Elements": [{{{element}}}]}}}}'


NESTED = "[" * DEEP + "]" * DEEP
HTML = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
BAD_REPLIES = {
    "a 200 cut off mid-way": reply(one_head()[:45]),
    "a 200 HTML page": reply(HTML, content_type="text/html"),
    "a 500 HTML page": reply(HTML, 500, "text/html"),
    "an empty 502": reply(b"", 502, "text/plain"),
    "JSON null": reply("null"),
    "JSON 0": reply("0"),
    "a JSON list": reply("[]"),
    "a JSON string": reply('"ok"'),
    "an empty object": reply("{}"),
    "JSON nested 10^5 deep": reply(f'{{"RequestId": "R", "Data": {{"Elements": {NESTED}}}}}'),
    "an error reply nested 10^5 deep": reply(f'{{"Code": {NESTED}}}', 400),
    "an error reply that is a list": reply("[1, 2]", 400),
    "an error reply without a code": reply('{"Message": "no"}', 400),
    "an error code that is an object": reply('{"Code": {"a": 1}, "Message": "x"}', 400),
    "an enormous error code": reply(json.dumps({"Code": "A" * 100_000, "Message": "x"}), 400),
    "Data a list": reply('{"RequestId": "R", "Data": []}'),
    "Data a string": reply('{"RequestId": "R", "Data": "none"}'),
    "Elements an object": reply('{"RequestId": "R", "Data": {"Elements": {"X": 1}}}'),
    "Elements a number": reply('{"RequestId": "R", "Data": {"Elements": 3}}'),
    "an element null": reply('{"RequestId": "R", "Data": {"Elements": [null]}}'),
    "an element a list": reply('{"RequestId": "R", "Data": {"Elements": [[40, 50, 60, 80]]}}'),
    "X null": reply(one_head(X="null")),
    "Width a string": reply(one_head(Width='"60"')),
    "Height a float": reply(one_head(Height="80.5")),
    "Y a bool": reply(one_head(Y="true")),
    "X huge": reply(one_head(X="1" + "0" * 30)),
    "Width of 5000 digits": reply(one_head(Width="9" * 5000)),
    "X missing": reply(one_head(X=None)),
    "ImageURL null": reply(one_head(ImageURL="null")),
    "ImageURL a number": reply(one_head(ImageURL="5")),
    "ImageURL enormous": reply(one_head(ImageURL=json.dumps("http://127.0.0.1:1/" + "a" * 1_000_000))),
    "ImageURL missing": reply(one_head(ImageURL=None)),
    "RequestId missing": reply('{"Data": {"Elements": []}}'),
    "RequestId with a newline": reply('{"RequestId": "R\\n{\\"forged\\": 1}", "Data": {"Elements": []}}'),
    "5000 heads": reply(json.dumps({"RequestId": "R", "Data": {"Elements": [json.loads(one_head())["Data"]["Elements"][0]] * 5000}})),
}


# -- SegmentHead replies, through the whole function --------------------------------------------------------------
@pytest.mark.parametrize("name", BAD_REPLIES)
def test_every_broken_reply_ends_in_a_retriable_bad_reply_record(cloud: Cloud, caplog, name):
    cloud.configure(RETRY_BASE="0.01")
    cloud.imageseg.inject(Fault("status", is_segment_call, times=1000, response=BAD_REPLIES[name]))
    etag = cloud.upload_portrait("incoming/a.jpg", HEAD)

    with pytest.raises(RetriableError):  # FC retries the event: never an exception headseg did not classify
        cloud.invoke_key("incoming/a.jpg", etag)

    record = cloud.read_json("heads/incoming/a.jpg/error.json")
    assert (record["code"], record["retriable"]) == ("BadReply", True)
    assert record["reason"].startswith("SegmentHead") and len(record["reason"]) < 5000
    assert record["reason"].isprintable()
    assert cloud.imageseg.calls == 6  # retried in the invocation like a 5xx (MAX_ATTEMPTS)
    assert cloud.read("heads/incoming/a.jpg/heads.json") is None and cloud.outputs("heads/incoming/a.jpg/head-") == []
    [line] = [json.loads(line) for line in caplog.text.splitlines() if '"outcome"' in line]
    assert (line["outcome"], line["code"]) == ("retry", "BadReply")


def test_a_broken_reply_then_a_good_one_completes_in_the_same_invocation(cloud: Cloud):
    cloud.imageseg.inject(Fault("status", is_segment_call, times=1, response=BAD_REPLIES["a 500 HTML page"]))
    etag = cloud.upload_portrait("incoming/a.jpg", HEAD)
    assert cloud.invoke_key("incoming/a.jpg", etag)["outcomes"][0]["outcome"] == "done"
    assert cloud.imageseg.calls == 2 and len(cloud.read_json("heads/incoming/a.jpg/heads.json")["heads"]) == 1


def test_boxes_of_the_right_type_but_outside_the_image_are_clamped_or_dropped_not_refused(cloud: Cloud):
    etag = cloud.upload_portrait("incoming/a.jpg", HEAD)
    cloud.invoke_key("incoming/a.jpg", etag)  # a real answer, to borrow a cutout URL that works
    [fetched] = [entry.request for entry in cloud.imageseg.logged(is_result_download)]
    good = f"{cloud.imageseg.url}{fetched.raw_path}"
    elements = [
        {"X": -5, "Y": 50, "Width": 65, "Height": 80, "ImageURL": good},  # past the left edge: clamped
        {"X": 40, "Y": 50, "Width": -60, "Height": 80, "ImageURL": good},  # no positive size: dropped
    ]
    answer = reply(json.dumps({"RequestId": "R", "Data": {"Elements": elements}}))
    cloud.imageseg.inject(Fault("status", is_segment_call, times=1, response=answer))
    etag = cloud.upload_portrait("incoming/b.jpg", HEAD)
    assert cloud.invoke_key("incoming/b.jpg", etag)["outcomes"][0]["outcome"] == "done"
    [head] = cloud.read_json("heads/incoming/b.jpg/heads.json")["heads"]
    assert (head["x"], head["y"], head["width"], head["height"]) == (0, 50, 60, 80)


# -- SegmentHead replies, any shape: the segmenter's wall -----------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["X", "Y", "Width", "Height", "ImageURL", "RequestId", "Data", "Elements", "Code", "Message", "k"]), inner, max_size=5),
    max_leaves=12,
)


def placed(value: object) -> st.SearchStrategy[object]:
    """`value` where a reply has a body, a Data, an Elements, an element or one of its fields."""
    element = {"X": 1, "Y": 2, "Width": 30, "Height": 40, "ImageURL": "http://127.0.0.1:1/x.png"}
    return st.sampled_from([
        value,
        {"RequestId": "R", "Data": value},
        {"RequestId": "R", "Data": {"Elements": value}},
        {"RequestId": "R", "Data": {"Elements": [element, value]}},
        *({"RequestId": "R", "Data": {"Elements": [{**element, name: value}]}} for name in element),
        {"RequestId": value, "Data": {"Elements": []}},
        {"Code": value, "Message": value, "RequestId": "R"},
    ])


def _valid_heads(heads: list[Head]) -> bool:
    return len(heads) <= MAX_HEADS and all(
        all(type(v) is int and abs(v) <= MAX_COORDINATE for v in (h.x, h.y, h.width, h.height)) and isinstance(h.url, str)
        for h in heads
    )


@settings(max_examples=300, deadline=None)
@given(JSON.flatmap(placed))
def test_read_reply_either_gives_well_typed_heads_or_bad_reply(body):
    try:
        segmentation = read_reply(body)
    except BadReply:
        return
    assert _valid_heads(segmentation.heads) and isinstance(segmentation.request_id, str)


@pytest.fixture
def segmentable() -> Iterator[tuple[FakeImageseg, CloudSegmenter]]:
    with FakeImageseg({ACCESS_KEY_ID: ACCESS_KEY_SECRET}, tokens={ACCESS_KEY_ID: SECURITY_TOKEN}) as fake:
        config = Config(input_prefix="incoming/", output_prefix="heads/", imageseg_endpoint=fake.url)
        yield fake, CloudSegmenter(config, Credentials(ACCESS_KEY_ID, ACCESS_KEY_SECRET, SECURITY_TOKEN))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(JSON.flatmap(placed), st.sampled_from([200, 200, 400, 403, 429, 500, 503]))
def test_any_reply_over_the_wire_ends_as_heads_or_a_headseg_error(segmentable, body, status):
    fake, segmenter = segmentable
    fake.clear_faults()
    fake.inject(Fault("status", is_segment_call, times=1, response=reply(json.dumps(body), status)))
    try:
        segmentation = segmenter.segment(SegmentInput(url="http://127.0.0.1:1/a.jpg"), None, Budget.seconds(10))
    except HeadsegError:
        return  # anything else fails the test
    assert status == 200 and _valid_heads(segmentation.heads)


# -- cutout downloads ------------------------------------------------------------------------------------------------
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
BROKEN_BODIES = {
    "cut off under its Content-Length": Response(200, PNG[:500], {"Content-Length": str(len(PNG)), "Connection": "close"}),
    "a chunk cut off": Response(200, b"400\r\n" + PNG[:100], {"Transfer-Encoding": "chunked", "Connection": "close"}),
    "a chunk length that is no number": Response(200, b"zz\r\n" + PNG[:100], {"Transfer-Encoding": "chunked", "Connection": "close"}),
}


@pytest.fixture
def result_url(segmentable) -> str:
    fake, _ = segmentable
    return fake.publish(PNG)


@pytest.mark.parametrize("name", BROKEN_BODIES)
def test_a_cutout_body_that_breaks_mid_way_is_a_retriable_connection_error(segmentable, result_url, name):
    fake, segmenter = segmentable
    fake.inject(Fault("status", is_result_download, times=1, response=BROKEN_BODIES[name]))
    with pytest.raises(RetriableError) as error:
        segmenter.fetch(Head(0, 0, 64, 64, url=result_url), Budget.seconds(10))
    assert error.value.code == "ConnectionError"
    assert segmenter.fetch(Head(0, 0, 64, 64, url=result_url), Budget.seconds(10)) == PNG  # the next try is whole


def test_a_trickling_cutout_stops_at_the_budget(segmentable, result_url):
    fake, segmenter = segmentable
    fake.trickle(0.05, chunk=64, match=is_result_download)  # 10 KB at 64 bytes a read: 8 s, each read in time
    with pytest.raises(BudgetExhausted):
        segmenter.fetch(Head(0, 0, 64, 64, url=result_url), Budget.seconds(0.5))


def test_a_compressed_cutout_is_never_inflated(segmentable, result_url):
    fake, segmenter = segmentable
    bomb = gzip.compress(b"\0" * 50_000_000)
    fake.inject(Fault("status", is_result_download, times=1, response=Response(200, bomb, {"Content-Encoding": "gzip"})))
    assert segmenter.fetch(Head(0, 0, 64, 64, url=result_url), Budget.seconds(10)) == bomb  # not a PNG: BadCutout


@pytest.mark.parametrize("name", BROKEN_BODIES)
def test_a_broken_cutout_body_through_the_function_is_retried(cloud: Cloud, name):
    cloud.imageseg.inject(Fault("status", is_result_download, times=1, response=BROKEN_BODIES[name]))
    etag = cloud.upload_portrait("incoming/a.jpg", HEAD)
    assert cloud.invoke_key("incoming/a.jpg", etag)["outcomes"][0]["outcome"] == "done"
    assert len(cloud.imageseg.logged(is_result_download)) == 2


# -- cutout URLs: one parser ----------------------------------------------------------------------------------------
ALLOWED = ("*.oss-cn-shanghai.aliyuncs.com", "127.0.0.1:9000", "cutouts.example:8080")
PUBLIC = "47.100.1.2"


def public(host: str, port: int) -> list[str]:
    return [PUBLIC]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:1\\@127.0.0.1:9000/x.png",  # urlsplit: 127.0.0.1:9000; urllib3: 127.0.0.1:1
        "http://127.0.0.1:9000\\@evil.example/x.png",
        "http://evil.example\\.oss-cn-shanghai.aliyuncs.com/x.png",
        "http://user@b.oss-cn-shanghai.aliyuncs.com/x.png",
        "http://evil.example@b.oss-cn-shanghai.aliyuncs.com/x.png",
        "http://127.0.0.1:1\t@127.0.0.1:9000/x.png",
        "http://127.0.0.1:9000\n/x.png",
        "http://b.oss-cn-shanghai.aliyuncs.com /x.png",
        "http://b.oss-cn-shanghai.aliyuncs.com\x00.evil.example/x.png",
        "http://b%2eoss-cn-shanghai.aliyuncs.com/x.png",
        "http://evil.example%2f.oss-cn-shanghai.aliyuncs.com/x.png",
        "http://b.oss-cn-shanghai.aliyuncs.com/x%zz.png",
        "http://bücher.oss-cn-shanghai.aliyuncs.com/x.png",
        "http://0x7f.1:9000/x.png",
        "http://127.1:9000/x.png",
        "http://2130706433:9000/x.png",
        "http://0177.0.0.1:9000/x.png",
        "http://0x7f000001.oss-cn-shanghai.aliyuncs.com.x/x.png",
        "http://b.oss-cn-shanghai.aliyuncs.com./x.png",
        "http://[::1]:9000/x.png",
        "http://127.0.0.1:09000/x.png",
        "http://127.0.0.1:/x.png",
        "http://127.0.0.1:99999/x.png",
        "http:///x.png",
        "http:/b.oss-cn-shanghai.aliyuncs.com/x.png",
        "//b.oss-cn-shanghai.aliyuncs.com/x.png",
        "https://b.oss-cn-shanghai.aliyuncs.com/" + "a" * 5000,
    ],
)
def test_urls_two_parsers_could_read_differently_are_refused(url):
    with pytest.raises(UnsafeCutoutUrl):
        check_cutout_url(url, ALLOWED, public)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://viapi-cn-shanghai-dha-segmenter.oss-cn-shanghai.aliyuncs.com/upload/result/a%2Bb.png?Expires=1&OSSAccessKeyId=LTAI&Signature=c%2Fd%3D",
            Target("https", "viapi-cn-shanghai-dha-segmenter.oss-cn-shanghai.aliyuncs.com", 443, PUBLIC, "/upload/result/a%2Bb.png?Expires=1&OSSAccessKeyId=LTAI&Signature=c%2Fd%3D"),
        ),
        ("HTTP://Cutouts.Example:8080/x.png#frag", Target("http", "cutouts.example", 8080, PUBLIC, "/x.png")),
        ("http://127.0.0.1:9000?x=@evil.example", Target("http", "127.0.0.1", 9000, "127.0.0.1", "/?x=@evil.example")),
        ("http://xn--bcher-kva.oss-cn-shanghai.aliyuncs.com/x", Target("http", "xn--bcher-kva.oss-cn-shanghai.aliyuncs.com", 80, PUBLIC, "/x")),
    ],
)
def test_plain_urls_pass_and_say_where_to_connect(url, expected):
    target = check_cutout_url(url, ALLOWED, public)
    assert target == expected
    assert target.host_header == (expected.host if expected.port in (80, 443) else f"{expected.host}:{expected.port}")


PIECES = [
    "http://", "https://", "HTTP://", "http:", "//", "/", "\\", "@", ":", "#", "?", "%", "%2e", "%40", "%5C", ".",
    "[", "]", "::1", " ", "\t", "\n", "\x00", "é", "xn--bcher-kva", "b.oss-cn-shanghai.aliyuncs.com", "oss-cn-shanghai",
    ".aliyuncs.com", "127.0.0.1", "127.1", "0x7f", "1", "9000", "8080", "0", "65536", "cutouts.example", "evil.example",
    "x.png", "&", "=", "-", "~", "+", ";", "!", "$", "'", "*",
]
HOSTS = ["b.oss-cn-shanghai.aliyuncs.com", "127.0.0.1:9000", "cutouts.example:8080", "evil.example", "127.0.0.1:1"]
SCHEMES = st.sampled_from(["http://", "https://", "HTTPS://"])
TAILS = st.lists(st.sampled_from(PIECES), max_size=8).map("".join)
URLS = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=14).map("".join),  # anything
    st.builds(  # an authority made of host-like pieces
        "{}{}{}".format, SCHEMES, st.lists(st.sampled_from(HOSTS + PIECES), min_size=1, max_size=4).map("".join), TAILS
    ),
    st.builds("{}{}{}{}".format, SCHEMES, st.sampled_from(HOSTS), st.sampled_from(["/", "?", "#", ""]), TAILS),  # near misses
)


def _connects_to(url: str) -> tuple[str, str | None, int]:
    """Where urllib3, and requests on top of it, would connect for `url`."""
    defaults = {"http": 80, "https": 443}
    readings = set()
    for text in (url, requests.Request("GET", url).prepare().url or ""):
        parsed = parse_url(text)
        readings.add((parsed.scheme or "", parsed.host, parsed.port or defaults[parsed.scheme or "http"]))
    split = urlsplit(url)
    readings.add((split.scheme.lower(), split.hostname, split.port or defaults[split.scheme.lower()]))
    assert len(readings) == 1, readings
    return readings.pop()


@settings(max_examples=2000, deadline=None)
@example("http://127.0.0.1:9000/x.png")
@example("https://b.oss-cn-shanghai.aliyuncs.com/x?y=@z")
@example("http://cutouts.example:8080?a\\b")
@given(URLS)
def test_for_every_url_the_check_accepts_every_parser_connects_to_the_checked_host(url):
    try:
        target = check_cutout_url(url, ALLOWED, public)
    except UnsafeCutoutUrl:
        event("refused")
        return
    event("accepted")
    assert _connects_to(url) == (target.scheme, target.host, target.port)
    assert target.host.endswith(".oss-cn-shanghai.aliyuncs.com") or f"{target.host}:{target.port}" in ALLOWED


# -- cutout URLs: never anywhere but the checked address, over the wire ---------------------------------------------
def tricky(canary: CanaryServer, allowed: str) -> list[str]:
    return [
        f"http://{canary.address}\\@{allowed}/results/x.png",
        f"http://{canary.address}\\\\@{allowed}/results/x.png",
        f"http://{allowed}@{canary.address}/results/x.png",
        f"http://{canary.address}\t@{allowed}/results/x.png",
        f"http://{canary.address}%40{allowed}/results/x.png",
        f"http://{canary.address}#@{allowed}/results/x.png",
        f"http://{canary.address}?@{allowed}/results/x.png",
        f"http://127.1:{canary.port}\\@{allowed}/results/x.png",
    ]


@pytest.mark.parametrize("form", range(8))
def test_a_cutout_url_with_a_tricky_authority_never_reaches_another_server(cloud: Cloud, canary: CanaryServer, form):
    url = tricky(canary, cloud.imageseg.address)[form]
    element = {"X": 40, "Y": 50, "Width": 60, "Height": 80, "ImageURL": url}
    answer = reply(json.dumps({"RequestId": "R", "Data": {"Elements": [element]}}))
    cloud.imageseg.inject(Fault("status", is_segment_call, times=1, response=answer))
    etag = cloud.upload_portrait("incoming/a.jpg", HEAD)
    outcome = cloud.invoke_key("incoming/a.jpg", etag)["outcomes"][0]
    assert (outcome["outcome"], outcome["code"]) == ("failed", "UnsafeCutoutURL")
    # the canary fixture fails the test if anything reached it


@pytest.fixture
def rebound() -> Iterator[socket.socket]:
    """A listener on 127.0.0.2, where a second DNS answer would send the download."""
    listener = socket.socket()
    yield listener
    listener.close()


def test_the_download_connects_to_the_address_the_check_resolved(segmentable, result_url, rebound):
    fake, _ = segmentable
    try:
        rebound.bind(("127.0.0.2", fake.port))
    except OSError:
        pytest.skip("127.0.0.2 is not available here")
    rebound.listen()
    rebound.setblocking(False)
    answers = iter([["127.0.0.1"]])
    asked: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        asked.append(host)
        return next(answers, ["127.0.0.2"])  # any later answer points elsewhere

    config = Config(
        input_prefix="incoming/", output_prefix="heads/", imageseg_endpoint=fake.url, cutout_hosts=f"cutouts.test:{fake.port}"
    )
    segmenter = CloudSegmenter(config, Credentials(ACCESS_KEY_ID, ACCESS_KEY_SECRET), resolve=rebinding)
    url = result_url.replace(f"127.0.0.1:{fake.port}", f"cutouts.test:{fake.port}")

    assert segmenter.fetch(Head(0, 0, 64, 64, url=url), Budget.seconds(10)) == PNG

    assert asked == ["cutouts.test"]  # resolved once, by the check; `cutouts.test` resolves nowhere else
    [download] = fake.logged(is_result_download)
    assert download.request.header("host") == f"cutouts.test:{fake.port}"
    with pytest.raises(BlockingIOError):
        rebound.accept()  # nothing connected to the second answer


@pytest.mark.parametrize(
    ("answer", "why"),
    [("169.254.169.254", "metadata"), ("::ffff:169.254.169.254", "metadata"), ("::ffff:10.0.0.1", "internal"), ("127.0.0.1", "internal")],
)
def test_a_pattern_host_resolving_inside_is_refused(answer, why):
    with pytest.raises(UnsafeCutoutUrl, match=why):
        check_cutout_url("https://b.oss-cn-shanghai.aliyuncs.com/x.png", ALLOWED, lambda host, port: [PUBLIC, answer])


def test_a_host_that_does_not_resolve_is_retriable():
    def nowhere(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(RetriableError) as error:
        check_cutout_url("https://b.oss-cn-shanghai.aliyuncs.com/x.png", ALLOWED, nowhere)
    assert error.value.code == "ConnectionError" and not isinstance(error.value, UnsafeCutoutUrl)


# -- https: pinned to the address, verified against the name --------------------------------------------------------
def _certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for `name` and its key, as PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_file, key_file


class _TlsCutouts(ThreadingHTTPServer):
    """Serves PNG at any path over TLS on 127.0.0.1, noting the SNI names and Host headers it was sent."""

    daemon_threads = True

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        seen: dict[str, list[str]] = {"sni": [], "host": []}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                seen["host"].append(self.headers.get("Host", ""))
                self.send_response(200)
                self.send_header("Content-Length", str(len(PNG)))
                self.end_headers()
                self.wfile.write(PNG)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.seen = seen
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        context.sni_callback = lambda sock, name, ctx: seen["sni"].append(name or "")  # type: ignore[assignment,misc,func-returns-value]
        self.socket = context.wrap_socket(self.socket, server_side=True)


@pytest.fixture
def tls_server(tmp_path) -> Iterator[tuple[_TlsCutouts, Path]]:
    cert_file, key_file = _certificate(tmp_path, "cutouts.test")
    server = _TlsCutouts(cert_file, key_file)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server, cert_file
    server.shutdown()
    server.server_close()


def test_https_connects_to_the_checked_address_with_the_name_as_sni_and_certificate(tls_server):
    server, cert_file = tls_server
    port = server.server_address[1]
    target = check_cutout_url(f"https://cutouts.test:{port}/x.png", (f"cutouts.test:{port}",), lambda host, p: ["127.0.0.1"])
    with open_target(urllib3.PoolManager(ca_certs=str(cert_file)), target, urllib3.Timeout(5)) as response:
        assert response.status == 200 and response.read() == PNG
    assert server.seen == {"sni": ["cutouts.test"], "host": [f"cutouts.test:{port}"]}


def test_https_refuses_a_certificate_for_another_name_at_the_checked_address(tls_server):
    server, cert_file = tls_server  # trusted, but issued to cutouts.test, not to the name the URL gives
    port = server.server_address[1]
    target = check_cutout_url(f"https://other.test:{port}/x.png", (f"other.test:{port}",), lambda host, p: ["127.0.0.1"])
    with pytest.raises(urllib3.exceptions.SSLError, match="other.test"):
        open_target(urllib3.PoolManager(ca_certs=str(cert_file)), target, urllib3.Timeout(5))
    assert server.seen == {"sni": ["other.test"], "host": []}
