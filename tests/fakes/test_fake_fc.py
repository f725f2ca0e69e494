"""The fake FC answers the real fc2 SDK, and only when its signature is right."""

from __future__ import annotations

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


@pytest.fixture
def fake(fake_fc: FakeFc) -> FakeFc:
    return fake_fc


def client(fake: FakeFc | CanaryServer, secret: str = SECRET, token: str = TOKEN, timeout: float = 60) -> fc2.Client:
    return fc2.Client(endpoint=fake.url, accessKeyID=KEY, accessKeySecret=secret, securityToken=token, Timeout=timeout)


def test_async_invocation_is_accepted_and_recorded(fake):
    response = client(fake).invoke_function("default", "headseg", payload=b'{"events": []}', headers={"x-fc-invocation-type": "Async"})
    assert response.headers["x-fc-request-id"]
    [invocation] = fake.invocations
    assert (invocation.service, invocation.function, invocation.invocation_type, invocation.payload) == ("default", "headseg", "Async", b'{"events": []}')


def test_qualifier(fake):
    client(fake).invoke_function("default", "headseg", payload=b"{}", headers={"x-fc-invocation-type": "Async"}, qualifier="LATEST")
    assert fake.invocations[0].qualifier == "LATEST"


@pytest.mark.parametrize("secret, token, code", [("wrong", TOKEN, "SignatureNotMatch"), (SECRET, "wrong", "InvalidSecurityToken")])
def test_bad_credentials_are_refused(fake, secret, token, code):
    with pytest.raises(FcError) as error:
        client(fake, secret, token).invoke_function("default", "headseg", payload=b"{}", headers={"x-fc-invocation-type": "Async"})
    assert error.value.status_code == 403 and error.value.err_code == code
    assert fake.invocations == []


def test_missing_function_and_throttling(fake):
    with pytest.raises(FcError) as error:
        client(fake).invoke_function("default", "nope", payload=b"{}", headers={"x-fc-invocation-type": "Async"})
    assert error.value.err_code == "FunctionNotFound"
    fake.throttle()
    with pytest.raises(FcError) as error:
        client(fake).invoke_function("default", "headseg", payload=b"{}", headers={"x-fc-invocation-type": "Async"})
    assert (error.value.status_code, error.value.err_code) == (429, "ResourceThrottled")


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
