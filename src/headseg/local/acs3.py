"""Alibaba Cloud's RPC gateway, server side (`headseg serve`, the tests' fakes): the call a request makes, and
who may make it.

`Call.parse` reads an RPC call the two ways a client sends one: the SDK's (Action and Version in the
`x-acs-action`/`x-acs-version` headers, the parameters in the query) and the plain form a person types
(Action, Version and the parameters as query or form fields). `Gateway` lets a call in: its ACS3-HMAC-SHA256
signature, its STS token, its nonce (good once). The canonical request is built the way
`alibabacloud_tea_openapi.utils.get_authorization` builds it: method, path, the query sorted and quoted with
`safe='~'`, every signed header as `name:value`, the signed header names, and the SHA-256 of the body.
Refusals are `ApiError`s, carrying the HTTP status and the gateway's code.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol, Sequence
from urllib.parse import parse_qsl, quote

ALGORITHM = "ACS3-HMAC-SHA256"
REQUIRED_SIGNED_HEADERS = frozenset(
    {"host", "x-acs-date", "x-acs-content-sha256", "x-acs-signature-nonce", "x-acs-action", "x-acs-version"}
)
MAX_DATE_SKEW = 15 * 60
_AUTHORIZATION = re.compile(r"(\S+) Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]+)")


class ApiError(Exception):
    """An error answer of an Alibaba Cloud API: the HTTP status, the service's error code, a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class SignatureError(ApiError):
    """The request's signature is missing, malformed or wrong."""


class HttpRequest(Protocol):
    """A request as a server read it: the path and the query decoded, header names lower case."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def query(self) -> Sequence[tuple[str, str]]: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def body(self) -> bytes: ...


@dataclass
class Reply:
    """An HTTP answer."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def request_id() -> str:
    return str(uuid.uuid4()).upper()


@dataclass(frozen=True)
class Call:
    """The RPC call a request makes: its Action, its Version and its parameters."""

    action: str
    version: str
    params: dict[str, str]

    @classmethod
    def parse(cls, request: HttpRequest) -> Call:
        """The SDK's headers win over the plain form's fields; a form body adds to the query's parameters."""
        params = dict(request.query)
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            params.update(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        action, version = params.pop("Action", ""), params.pop("Version", "")
        headers = request.headers
        return cls(headers.get("x-acs-action") or action, headers.get("x-acs-version") or version, params)


class Gateway:
    """Lets calls in. `credentials` (access key id -> secret): each request's ACS3 signature is checked, a nonce
    is good once, and a key in `tokens` (access key id -> STS token) must present its token. Without
    credentials every request is let in, signed or not. Its `credentials` and `tokens` (copies) may change
    while it runs."""

    def __init__(
        self, credentials: Mapping[str, str] | None = None, tokens: Mapping[str, str] | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.credentials = dict(credentials) if credentials is not None else None
        self.tokens = dict(tokens or {})
        self._now = now
        self._nonces: dict[tuple[str, str], float] = {}  # (key, nonce) -> when seen, oldest first
        self._lock = threading.Lock()

    def admit(self, request: HttpRequest) -> str | None:
        """The caller's access key id (None when signatures are not checked), or `ApiError`."""
        if self.credentials is None:
            return None
        headers = request.headers
        key = verify(request.method, request.path, request.query, headers, request.body, self.credentials.get, self._now)
        expected, token = self.tokens.get(key), headers.get("x-acs-security-token", "")
        if expected is not None and not token:
            raise ApiError(400, "MissingSecurityToken", "SecurityToken is mandatory for this action.")
        if token and token != expected:
            message = "Specified SecurityToken mismatch with the AccessKey."
            raise ApiError(400, "InvalidSecurityToken.MismatchWithAccessKey", message)
        self._use_nonce(key, headers.get("x-acs-signature-nonce", ""))
        return key

    def _use_nonce(self, key: str, nonce: str) -> None:
        """A nonce is remembered while a request carrying it could still pass the date check."""
        now = self._now()
        with self._lock:
            while self._nonces and next(iter(self._nonces.values())) < now - 2 * MAX_DATE_SKEW:
                del self._nonces[next(iter(self._nonces))]
            if (key, nonce) in self._nonces:
                raise ApiError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
            self._nonces[(key, nonce)] = now


def canonical_query(query: Sequence[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(dict(query).items()))


def string_to_sign(
    method: str, path: str, query: Sequence[tuple[str, str]], headers: Mapping[str, str], signed: Sequence[str],
    payload_hash: str,
) -> str:
    names = sorted(signed)
    canonical = "\n".join(
        [
            method,
            path or "/",
            canonical_query(query),
            "".join(f"{name}:{headers[name].strip()}\n" for name in names),
            ";".join(names),
            payload_hash,
        ]
    )
    return f"{ALGORITHM}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"


def verify(
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    secret_for: Callable[[str], str | None],
    now: Callable[[], float] = time.time,
) -> str:
    """Check the request's ACS3 signature (header names lower case); returns the caller's access key id."""
    match = _AUTHORIZATION.fullmatch(headers.get("authorization", ""))
    if match is None or match[1] != ALGORITHM:
        raise SignatureError(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
    access_key_id, signed, signature = match[2], match[3].split(";"), match[4]
    secret = secret_for(access_key_id)
    if secret is None:
        raise SignatureError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    unsigned = REQUIRED_SIGNED_HEADERS - set(signed)
    absent = [name for name in signed if name not in headers]
    if unsigned or absent:
        raise SignatureError(
            400, "IncompleteSignature", f"Headers not signed: {sorted(unsigned)}; signed but absent: {absent}."
        )
    payload_hash = headers["x-acs-content-sha256"]
    if payload_hash != hashlib.sha256(body).hexdigest():
        raise SignatureError(400, "SignatureDoesNotMatch", "x-acs-content-sha256 does not match the request body.")
    _check_date(headers["x-acs-date"], now())
    expected_string = string_to_sign(method, path, query, headers, signed, payload_hash)
    expected = hmac.new(secret.encode(), expected_string.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature, expected):
        raise SignatureError(
            400,
            "SignatureDoesNotMatch",
            f"Specified signature does not match our calculation. server string to sign is:{expected_string}",
        )
    return access_key_id


def _check_date(value: str, now: float) -> None:
    try:
        stamp = calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        raise SignatureError(400, "InvalidTimeStamp.Format", f"Specified time stamp {value!r} is malformed.") from None
    if abs(now - stamp) > MAX_DATE_SKEW:
        raise SignatureError(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
