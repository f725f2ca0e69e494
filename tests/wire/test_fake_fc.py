"""The fake FCs answer the real SDKs (fc2 for FC 2.0, alibabacloud_fc20230330 for FC 3.0), and only when their
signature is right. Only what the product's tests cannot show is here: refusals (credentials, replays, unknown
routes), the wire quirks the tooling depends on, and a stall that invokes nothing; invocations, qualifiers and
throttling are proved by the backfill and replay tests."""

from __future__ import annotations

import io
import time

import fc2
import pytest
import requests
from fc2.fc_exceptions import FcError

from tests.conftest import ACCESS_KEY_ID as KEY
from tests.conftest import ACCESS_KEY_SECRET as SECRET
from tests.conftest import SECURITY_TOKEN as TOKEN
from tests.fakes._server import CanaryServer, Fault
from tests.fakes.fc import FakeFc, is_invocation
from tests.fakes.fc3 import FakeFc3


@pytest.fixture
def fake(fake_fc: FakeFc) -> FakeFc:
    return fake_fc


def client(fake: FakeFc | CanaryServer, secret: str = SECRET, token: str = TOKEN, timeout: float = 60) -> fc2.Client:
    return fc2.Client(endpoint=fake.url, accessKeyID=KEY, accessKeySecret=secret, securityToken=token, Timeout=timeout)


@pytest.mark.parametrize("secret, token, code", [("wrong", TOKEN, "SignatureNotMatch"), (SECRET, "wrong", "InvalidSecurityToken")])
def test_bad_credentials_are_refused(fake, secret, token, code):
    with pytest.raises(FcError) as error:
        client(fake, secret, token).invoke_function("default", "headseg", payload=b"{}", headers={"x-fc-invocation-type": "Async"})
    assert error.value.status_code == 403 and error.value.err_code == code
    assert fake.invocations == []


def test_stall_after_auth_times_out_and_invokes_nothing(fake):
    fake.inject(Fault("stall", is_invocation, seconds=5, after_auth=True))
    async_call = {"payload": b"{}", "headers": {"x-fc-invocation-type": "Async"}}
    with pytest.raises(FcError) as error:  # refused at once: the stall waits for a good signature
        client(fake, secret="wrong").invoke_function("default", "headseg", **async_call)
    assert error.value.status_code == 403

    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):  # fc2 retries POSTs on connect errors only
        client(fake, timeout=0.3).invoke_function("default", "headseg", **async_call)
    assert 0.3 <= time.monotonic() - started < 1.5
    assert fake.invocations == []

    client(fake).invoke_function("default", "headseg", **async_call)
    assert len(fake.invocations) == 1
    assert [entry.status for entry in fake.logged()] == [403, 0, 202]


def test_a_non_json_error_makes_fc2_raise_a_json_decode_error_not_fcerror(canary):
    """fc2 formats its log line with r.json() before building FcError: a plain-text 4xx escapes as a
    requests JSONDecodeError (a RequestException, so it looks like a network error)."""
    canary.expect_contact()
    with pytest.raises(requests.exceptions.JSONDecodeError):
        client(canary).invoke_function("default", "headseg", payload=b"{}", headers={"x-fc-invocation-type": "Async"})
    [entry] = canary.logged()
    assert entry.status == 418 and entry.request.path.endswith("/services/default/functions/headseg/invocations")


# -- FC 3.0 (alibabacloud_fc20230330) -------------------------------------------------------------------------------
def fc3_client(fake: FakeFc3, secret: str = SECRET, token: str | None = TOKEN):
    from alibabacloud_fc20230330.client import Client
    from alibabacloud_tea_openapi import models as open_api_models

    config = open_api_models.Config(
        access_key_id=KEY, access_key_secret=secret, security_token=token, endpoint=fake.address, protocol="http",
        region_id="cn-shanghai",
    )
    return Client(config)


def fc3_invoke(fake: FakeFc3, function: str = "headseg", payload: bytes = b'{"events": []}', qualifier: str | None = None, **kwargs):
    from alibabacloud_fc20230330 import models
    from darabonba.runtime import RuntimeOptions

    request = models.InvokeFunctionRequest(body=io.BytesIO(payload), qualifier=qualifier)
    headers = models.InvokeFunctionHeaders(x_fc_invocation_type="Async")
    return fc3_client(fake, **kwargs).invoke_function_with_options(function, request, headers, RuntimeOptions())


def test_fc3_the_canonical_uri_is_the_percent_encoded_path(fake_fc3):
    """An FC 2.0 function `f` of service `s` is the FC 3.0 function `s$f`: the SDK sends and signs `s%24f`."""
    fake_fc3.add_function("default$headseg")
    fc3_invoke(fake_fc3, "default$headseg")
    assert fake_fc3.logged()[0].request.path == "/2023-03-30/functions/default%24headseg/invocations"
    assert [inv.function for inv in fake_fc3.invocations] == ["default$headseg"]


@pytest.mark.parametrize(
    "secret, token, code",
    [("wrong", TOKEN, "SignatureNotMatch"), (SECRET, "wrong", "InvalidSecurityToken"), (SECRET, None, "InvalidSecurityToken")],
)
def test_fc3_bad_credentials_are_refused_403(fake_fc3, secret, token, code):
    from Tea.exceptions import TeaException

    with pytest.raises(TeaException) as error:
        fc3_invoke(fake_fc3, secret=secret, token=token)
    assert (error.value.status_code, error.value.code) == (403, code)
    assert fake_fc3.invocations == []


def test_fc3_a_signed_request_replayed_elsewhere_or_again_is_refused(fake_fc3):
    fc3_invoke(fake_fc3)
    sent = fake_fc3.logged()[0].request
    replay = {k: v for k, v in sent.headers.items() if k not in ("content-length", "accept-encoding")}
    session = requests.Session()
    session.trust_env = False
    other = session.post(fake_fc3.url + "/2023-03-30/functions/other/invocations", data=sent.body, headers=replay)
    again = session.post(fake_fc3.url + sent.raw_path, data=sent.body, headers=replay)
    assert (other.status_code, other.json()["Code"]) == (403, "SignatureNotMatch")  # the path is signed
    assert (again.status_code, again.json()["Code"]) == (403, "SignatureNonceUsed")
    tampered = session.post(fake_fc3.url + sent.raw_path, data=b'{"events": [1]}', headers=replay)
    assert tampered.status_code == 403 and len(fake_fc3.invocations) == 1


def test_fc3_unknown_function_is_404_in_fc3_shape_and_a_failure(fake_fc3):
    from Tea.exceptions import TeaException

    with pytest.raises(TeaException) as error:
        fc3_invoke(fake_fc3, "nope")
    assert (error.value.status_code, error.value.code) == (404, "FunctionNotFound")
    assert set(error.value.data) >= {"Code", "Message", "RequestId"}
    with pytest.raises(AssertionError, match="unknown function 'nope'"):
        fake_fc3.check()


def test_fc3_unknown_route_is_404_and_a_failure(fake_fc3):
    """fc2's route on the FC 3.0 fake: what the old invoker sent to a 3.0 function."""
    with pytest.raises(FcError) as error:
        client(fake_fc3).invoke_function("default", "headseg", payload=b"{}", headers={"x-fc-invocation-type": "Async"})
    assert error.value.status_code == 404
    with pytest.raises(AssertionError, match="no route for POST /2016-08-15/services/default/functions/headseg/invocations"):
        fake_fc3.check()

