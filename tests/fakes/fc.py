"""A fake Function Compute 2.0 API (what the `fc2` SDK speaks): asynchronous and synchronous invocations.

It verifies fc2's signature (`Authorization: FC <ak>:<base64 HMAC-SHA256>` over method, Content-MD5,
Content-Type, Date, the `x-fc-*` headers and the path), the date's skew and the STS token, records every
accepted invocation, and can hand each payload to a callback (the real handler, to close the loop).
Errors come back in FC's JSON shape (`ErrorCode`, `ErrorMessage`) with `x-fc-request-id`.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from ._server import FakeServer, Fault, Request, Response

API_VERSION = "2016-08-15"
MAX_DATE_SKEW = 15 * 60
_INVOCATION = re.compile(rf"/{API_VERSION}/services/([^/]+)/functions/([^/]+)/invocations")
_AUTHORIZATION = re.compile(r"FC ([^:]+):(.+)")


@dataclass(frozen=True)
class Invocation:
    service: str
    qualifier: str
    function: str
    invocation_type: str
    payload: bytes
    request_id: str


def is_invocation(request: Request) -> bool:
    return request.method == "POST" and _INVOCATION.fullmatch(request.path) is not None


class FakeFc(FakeServer):
    """FC 2.0's invocation API. `credentials`: access key id -> secret; `tokens`: id -> required STS token."""

    name = "fc"

    def __init__(self, credentials: dict[str, str], tokens: dict[str, str] | None = None) -> None:
        super().__init__()
        self.credentials = dict(credentials)
        self.tokens = dict(tokens or {})
        self.functions: set[tuple[str, str]] = set()  # (service, function) that exist
        self.invocations: list[Invocation] = []
        self.times: list[float] = []  # time.monotonic() of each accepted invocation
        self.on_invoke: Callable[[Invocation], None] | None = None
        self._state = threading.Lock()

    def add_function(self, service: str, function: str) -> None:
        self.functions.add((service, function))

    def throttle(self, times: int = 1) -> Fault:
        body = json.dumps({"ErrorCode": "ResourceThrottled", "ErrorMessage": "Reserve resource exhausted."}).encode()
        return self.inject(Fault("status", is_invocation, times, Response(429, body, _json_headers())))

    def server_error(self, times: int = 1, status: int = 503) -> Fault:
        body = json.dumps({"ErrorCode": "ServiceUnavailable", "ErrorMessage": "The service is unavailable."}).encode()
        return self.inject(Fault("status", is_invocation, times, Response(status, body, _json_headers())))

    def handle(self, request: Request) -> Response:
        match = _INVOCATION.fullmatch(request.path)
        if request.method != "POST" or match is None:
            self.fail(f"no route for {request.method} {request.raw_path}")
            return _error(404, "NotFound", "Route not found.")
        problem = self._verify(request)
        if problem is not None:
            return problem
        self.authenticated(request)  # an after-auth "stall" happens here
        service_and_qualifier, function = unquote(match[1]), unquote(match[2])
        service, _, qualifier = service_and_qualifier.partition(".")
        if (service, function) not in self.functions:
            return _error(404, "FunctionNotFound", f"function '{function}' does not exist in service '{service}'")
        invocation_type = request.header("x-fc-invocation-type", "Sync")
        if invocation_type not in ("Sync", "Async"):
            self.fail(f"invalid x-fc-invocation-type {invocation_type!r}")
            return _error(400, "InvalidArgument", "x-fc-invocation-type must be Sync or Async")
        invocation = Invocation(service, qualifier, function, invocation_type, request.body, str(uuid.uuid4()))
        with self._state:
            self.invocations.append(invocation)
            self.times.append(time.monotonic())
        if self.on_invoke is not None:
            self.on_invoke(invocation)
        headers = {"x-fc-request-id": invocation.request_id}
        return Response(202, b"", headers) if invocation_type == "Async" else Response(200, b"null", headers)

    def _verify(self, request: Request) -> Response | None:
        match = _AUTHORIZATION.fullmatch(request.header("authorization"))
        if match is None:
            return _error(403, "SignatureNotMatch", "Authorization header missing or malformed.")
        access_key_id, signature = match[1], match[2]
        secret = self.credentials.get(access_key_id)
        if secret is None:
            return _error(403, "InvalidAccessKeyID", f"access key id '{access_key_id}' does not exist")
        expected_token = self.tokens.get(access_key_id)
        if expected_token is not None and request.header("x-fc-security-token") != expected_token:
            return _error(403, "InvalidSecurityToken", "The security token is invalid or missing.")
        try:
            sent = email.utils.parsedate_to_datetime(request.header("date")).timestamp()
        except (TypeError, ValueError):
            return _error(403, "InvalidArgument", "Date header missing or malformed.")
        if abs(time.time() - sent) > MAX_DATE_SKEW:
            return _error(403, "RequestTimeTooSkewed", "The difference between the request time and the server's time is too large.")
        fc_headers = sorted((k, v) for k, v in request.headers.items() if k.startswith("x-fc-"))
        canonical = "".join(f"{k}:{v}\n" for k, v in fc_headers)
        string_to_sign = "\n".join(
            [request.method, request.header("content-md5"), request.header("content-type"), request.header("date"), canonical + unquote(request.path)]
        )
        digest = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(signature, base64.b64encode(digest).decode()):
            return _error(403, "SignatureNotMatch", "The request signature we calculated does not match the signature you provided.")
        return None


def _json_headers() -> dict[str, str]:
    return {"Content-Type": "application/json", "x-fc-request-id": str(uuid.uuid4())}


def _error(status: int, code: str, message: str) -> Response:
    return Response(status, json.dumps({"ErrorCode": code, "ErrorMessage": message}).encode(), _json_headers())
