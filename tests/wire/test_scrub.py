"""Secrets and log lines: a known secret, or a signature field's value, is redacted in whatever JSON or URL encoding
it comes (any mix, any depth), and no message or log line carries a character that breaks or forges a line.

The properties decode the scrubbed text every way a reader could (JSON string escapes, percent-decoding, `+` as
space, chained up to four deep) and assert the secret never comes back; over the wire, a service's error reply
echoes the STS token in other encodings through the real handler, and neither the log nor the error record holds it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headseg.function.errors import HeadsegError, RetriableError
from headseg.function.logs import REDACTED, JsonFormatter, redact
from tests.conftest import Cloud, FcCredentials, fc_context, oss_event
from tests.fakes._server import Fault, Response
from tests.fakes.imageseg import is_segment_call
from tests.encodings import CONTEXT, ENCODINGS, FIELDS, SECRET_CHARS, UNPRINTABLE, encoded, hex_case, reappears



# -- by value: a known secret ---------------------------------------------------------------------------------
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secret=st.text(SECRET_CHARS, min_size=8, max_size=40), layers=ENCODINGS, before=CONTEXT, after=CONTEXT)
def test_a_secret_in_any_json_or_url_encoding_never_survives_the_scrub(secret, layers, before, after):
    text = f"{before}{encoded(secret, layers)}{after}"
    assert reappears(secret, text)  # the encoding is one a reader undoes

    scrubbed = redact(text, [secret])

    assert REDACTED in scrubbed and not reappears(secret, scrubbed)


@settings(max_examples=150, deadline=None)
@given(secret=st.text(SECRET_CHARS, min_size=8, max_size=40), layers=ENCODINGS)
def test_a_json_record_holding_an_encoded_secret_stays_valid_json_without_it(secret, layers):
    record = {"reason": f"upstream said: {encoded(secret, layers)}.", "code": "X"}
    written = json.dumps(record, ensure_ascii=False)

    scrubbed = redact(written, [secret])

    assert json.loads(scrubbed)["code"] == "X" and not reappears(secret, scrubbed)


def test_each_form_seen_leaking_is_caught():
    secret = "CAIS+fake/STS=token0123"
    forms = {
        "json \\/ and \\u002b": 'token: "CAIS\\u002bfake\\/STS=token0123"',
        "json upper hex": "CAIS\\u002Bfake\\u002FSTS\\u003Dtoken0123",
        "lower-case percent": "CAIS%2bfake%2fSTS%3dtoken0123",
        "lower-case percent, twice": "CAIS%252bfake%252fSTS%253dtoken0123",
        "json holding percent": '{"url": "x?t=CAIS%2bfake%2FSTS%3Dtoken0123"}',
        "percent holding json": "CAIS%5Cu002bfake%5C%2FSTS%3Dtoken0123",
    }
    for name, text in forms.items():
        assert not reappears(secret, redact(text, [secret])), name
        assert "token0123" not in redact(text, [secret]), name


def test_a_secret_beyond_ascii_is_caught_through_utf8_percent_runs_and_surrogate_pairs():
    secret = "clé-中文-😀-secret"
    body = lambda s: json.dumps(s)[1:-1]  # noqa: E731  (a JSON string's body: \u00e9, surrogate pairs)
    for text in (quote(secret, safe=""), quote(quote(secret, safe=""), safe="").lower(), body(secret),
                 body(quote(secret, safe="")), body(body(secret))):
        assert reappears(secret, text) and not reappears(secret, redact(f"x {text} y", [secret])), text


# -- by name: the values of signature and credential fields ---------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(FIELDS).flatmap(lambda n: st.sampled_from([n, n.lower(), n.upper()])),
    separator=st.sampled_from(["=", ":", ": ", '": "', '":"']),  # `%3D`, `\u003d`...: the encodings make them
    value=st.text(st.sampled_from("ABCXYZabcxyz0123456789+/="), min_size=12, max_size=40),
    layers=ENCODINGS,
    before=st.sampled_from(["http://h/k?Expires=1&", "{\"", "reply: ", ""]),
    after=st.sampled_from(["&Expires=1", "\"}", " (request id 1)", ""]),
)
def test_a_signature_fields_value_never_survives_whatever_encodes_the_field(name, separator, value, layers, before, after):
    text = encoded(f"{before}{name}{separator}{value}{after}", layers)

    scrubbed = redact(text)

    assert not reappears(value, scrubbed)


def test_signature_fields_are_redacted_behind_encoded_separators():
    assert redact("u?Signature%3Dabc%2Bdef%26Expires%3D1") == "u?Signature%3D***%26Expires%3D1"
    assert redact('{"x-oss-signature\\u003dQUJD\\/REVG"}') == '{"x-oss-signature\\u003d***"}'
    assert redact('{"X-Oss-Signature": "QUJD"}') == '{"X-Oss-Signature": "***"}'
    assert redact("InvalidCredential: the key is wrong") == "InvalidCredential: the key is wrong"  # a word, not a field


# -- no message or line carries a character that breaks a line --------------------------------------------------
@given(key=st.text(), code=st.text(max_size=10))
def test_a_raised_message_is_one_printable_line_whatever_the_key_holds(key, code):
    for error in (HeadsegError(f"object {key}: failed", code=code), RetriableError(f"1 record(s) hit transient errors ({key}: X)")):
        assert not UNPRINTABLE.search(str(error)) and not UNPRINTABLE.search(error.code)
        assert len(f"x{error}x".splitlines()) == 1 and str(error) == error.message
        str(error).encode("utf-8")  # a lone surrogate could not be written to FC's log


@given(key=st.text(), value=st.text())
def test_a_log_line_is_one_json_line_whatever_its_fields_hold(key, value):
    record = logging.LogRecord("headseg", logging.ERROR, __file__, 1, "failed %s", (key,), None)
    record.fields = {"key": key, f"f_{key}": value}

    line = JsonFormatter().format(record)

    assert len(f"x{line}x".splitlines()) == 1 and not UNPRINTABLE.search(line)
    line.encode("utf-8")
    parsed = json.loads(line)
    assert REDACTED in line or (parsed["key"] == key and parsed[f"f_{key}"] == value and parsed["message"] == f"failed {key}")


# -- over the wire: the real handler, the SDKs, the fakes -------------------------------------------------------
KEY_ID, SECRET, TOKEN = "STS.EncodedKey00000000000003", "Fake+Secret/4Tests=0nly9Zq7", "CAIS+fakeSTS/token+with=base64=="


@dataclass
class Base64Credentials(FcCredentials):
    """Credentials shaped like real STS ones: the token and secret hold `+`, `/` and `=`."""

    access_key_id: str = KEY_ID
    access_key_secret: str = SECRET
    security_token: str = TOKEN


def _lower_hex(text: str) -> str:
    return hex_case(text, upper=False)


def test_a_service_error_echoing_the_token_in_other_encodings_reaches_neither_log_nor_record(cloud: Cloud, caplog):
    for fake in (cloud.oss, cloud.imageseg):
        fake.credentials[KEY_ID] = SECRET
        fake.tokens[KEY_ID] = TOKEN
    etag = cloud.upload_portrait("incoming/echo.jpg", [(40, 50, 60, 80)])
    # the service quotes its upstream's JSON (escaped once more inside its own message) and the URL it was given,
    # percent-encoded in lower case: the token and the secret in forms a plain or upper-case match misses
    upstream = json.dumps({"token": TOKEN, "key": SECRET}).replace("+", "\\u002b").replace("/", "\\/")
    message = (
        f"cannot fetch the image: upstream replied {upstream}; "
        f"token {_lower_hex(quote(TOKEN, safe=''))} (twice: {_lower_hex(quote(quote(TOKEN, safe=''), safe=''))})"
    )
    body = json.dumps({"RequestId": "R-1", "Code": "InvalidImage.Content", "Message": message}).encode()
    cloud.imageseg.inject(Fault("status", is_segment_call, times=1, response=Response(400, body, {"Content-Type": "application/json"})))
    caplog.set_level(logging.DEBUG)

    result = json.loads(cloud_handler(cloud, "incoming/echo.jpg", etag))

    assert result["outcomes"][0]["code"] == "InvalidImage.Content"
    record = cloud.read("heads/incoming/echo.jpg/error.json")
    assert record is not None and "upstream replied" in json.loads(record)["reason"]
    lines = [line for line in caplog.text.splitlines() if line.startswith("{")]
    assert any("upstream replied" in line for line in lines)
    for text in (*lines, record.decode("utf-8")):
        for secret in (TOKEN, SECRET):
            assert not reappears(secret, text), text


def cloud_handler(cloud: Cloud, key: str, etag: str) -> str:
    return cloud.function.handler(oss_event((key, etag)), fc_context(credentials=Base64Credentials()))


@pytest.mark.parametrize("breaker", ["\n", "\r\n", "\x85", "\u2028", "\x1b[31m"])
def test_a_key_with_line_breaks_forges_no_line_in_what_the_handler_raises_or_logs(cloud: Cloud, caplog, breaker):
    key = f"incoming/a{breaker}{{\"level\": \"INFO\", \"message\": \"forged\"}}.jpg"
    etag = cloud.upload_portrait(key, [(40, 50, 60, 80)])
    cloud.oss.deny(times=10)  # refused credentials: the record ends in a retry, and the handler raises its summary

    with pytest.raises(RetriableError) as raised:
        cloud.invoke_key(key, etag)

    text = str(raised.value)
    assert "incoming/a" in text and not UNPRINTABLE.search(text) and len(text.splitlines()) == 1
    lines = [line for line in caplog.text.splitlines() if line.strip()]
    assert lines and all(json.loads(line)["message"] != "forged" for line in lines)
    assert any(json.loads(line).get("key") == key for line in lines)  # the key itself, intact in its field
