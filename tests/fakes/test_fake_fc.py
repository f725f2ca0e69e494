"""The fake FC answers the real fc2 SDK, and only when its signature is right."""

from __future__ import annotations

import fc2
import pytest
from fc2.fc_exceptions import FcError

from tests.conftest import ACCESS_KEY_ID as KEY
from tests.conftest import ACCESS_KEY_SECRET as SECRET
from tests.conftest import SECURITY_TOKEN as TOKEN
from tests.fakes.fc import FakeFc


@pytest.fixture
def fake(fake_fc: FakeFc) -> FakeFc:
    return fake_fc


def client(fake: FakeFc, secret: str = SECRET, token: str = TOKEN) -> fc2.Client:
    return fc2.Client(endpoint=fake.url, accessKeyID=KEY, accessKeySecret=secret, securityToken=token)


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
