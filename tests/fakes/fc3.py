"""A fake Function Compute 3.0 API (what `alibabacloud_fc20230330` speaks): invocations of FC 3.0 functions, and
the reads `headseg doctor` makes (GetFunction, ListFunctions, ListTriggers, GetAsyncInvokeConfig).

`POST /2023-03-30/functions/{name}/invocations[?qualifier=Q]`, checked the way FC's gateway checks it:
ACS3-HMAC-SHA256 recomputed with `headseg.local.acs3` the ROA way (the canonical URI is the path as sent, still
percent-encoded; the query is only `qualifier`; tea-openapi signs every header it sets, `x-acs-action:
InvokeFunction` and `x-acs-version: 2023-03-30` included), the body's hash, the date's skew, nonce reuse and
the STS token (`x-acs-security-token`, with `x-acs-accesskey-id`). Accepted invocations are recorded and can
be handed to a callback (the real handler, to close the loop); an Async one is answered 202 with
`x-fc-request-id`. Errors come back in FC 3.0's JSON shape (`Code`, `Message`, `RequestId`); a route or a
function the fake does not know is answered 404 *and* recorded as a failure.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from headseg.local import acs3

from ._server import FakeServer, Fault, Request, Response

API_VERSION = "2023-03-30"
ACTION = "InvokeFunction"
MAX_ASYNC_PAYLOAD = 128 * 1024
_INVOCATION = re.compile(rf"/{API_VERSION}/functions/([^/]+)/invocations")
#: The read routes: (path pattern, action, method of FakeFc3 that answers with the function's name).
_READS = [
    (re.compile(rf"/{API_VERSION}/functions"), "ListFunctions", "_list_functions"),
    (re.compile(rf"/{API_VERSION}/functions/([^/]+)"), "GetFunction", "_get_function"),
    (re.compile(rf"/{API_VERSION}/functions/([^/]+)/triggers"), "ListTriggers", "_list_triggers"),
    (re.compile(rf"/{API_VERSION}/functions/([^/]+)/async-invoke-config"), "GetAsyncInvokeConfig", "_get_async_config"),
]
PAGE = 2  # the fake pages every listing this small, so pagination is exercised
# FC's codes for what acs3.verify refuses (FC answers every authentication failure 403)
_AUTH_CODES = {
    "SignatureDoesNotMatch": "SignatureNotMatch",
    "InvalidAccessKeyId.NotFound": "InvalidAccessKeyID",
    "InvalidTimeStamp.Expired": "RequestTimeTooSkewed",
}


@dataclass(frozen=True)
class Invocation:
    function: str
    qualifier: str  # "" when none was given (LATEST)
    invocation_type: str
    payload: bytes
    request_id: str


def is_invocation(request: Request) -> bool:
    return request.method == "POST" and _INVOCATION.fullmatch(request.path) is not None


class FakeFc3(FakeServer):
    """FC 3.0's API: invocations, and the reads doctor makes. `credentials`: access key id -> secret; `tokens`: id ->
    required STS token."""

    name = "fc3"

    def __init__(self, credentials: dict[str, str], tokens: dict[str, str] | None = None) -> None:
        super().__init__()
        self.credentials = dict(credentials)
        self.tokens = dict(tokens or {})
        self.functions: dict[str, dict[str, object]] = {}  # name -> GetFunction's JSON
        self.triggers: dict[str, list[dict[str, object]]] = {}  # function name -> ListTriggers' entries
        self.async_configs: dict[str, dict[str, object]] = {}  # function name -> GetAsyncInvokeConfig's JSON
        self.invocations: list[Invocation] = []
        self.times: list[float] = []  # time.monotonic() of each accepted invocation
        self.on_invoke: Callable[[Invocation], None] | None = None
        self._state = threading.Lock()
        self._nonces: set[tuple[str, str]] = set()

    def add_function(self, function: str, **config: object) -> None:
        """A function, with GetFunction's fields (`runtime`, `handler`, `timeout`, `memorySize`, ...)."""
        self.functions[function] = {"functionName": function, **config}
        self.triggers.setdefault(function, [])

    def add_trigger(self, function: str, trigger_name: str, trigger_type: str, config: dict[str, object], **fields: object) -> None:
        """A trigger as ListTriggers returns it (`triggerConfig` is a JSON string there)."""
        entry = {"triggerName": trigger_name, "triggerType": trigger_type, "triggerConfig": json.dumps(config), **fields}
        self.triggers.setdefault(function, []).append(entry)

    def throttle(self, times: int = 1) -> Fault:
        return self.inject(Fault("status", is_invocation, times, _error(429, "ResourceThrottled", "Reserve resource exhausted.")))

    def server_error(self, times: int = 1, status: int = 503) -> Fault:
        return self.inject(Fault("status", is_invocation, times, _error(status, "ServiceUnavailable", "The service is unavailable.")))

    def handle(self, request: Request) -> Response:
        if request.method == "GET":
            return self._read(request)
        match = _INVOCATION.fullmatch(request.path)
        if request.method != "POST" or match is None:
            self.fail(f"no route for {request.method} {request.raw_path}")
            return _error(404, "PathNotSupported", f"'{request.method}' against '{request.path}' is not supported")
        problem = self._authenticate(request)
        if problem is not None:
            return problem
        action, version = request.header("x-acs-action"), request.header("x-acs-version")
        if (action, version) != (ACTION, API_VERSION):
            self.fail(f"x-acs-action {action!r}, x-acs-version {version!r} on an invocation")
            return _error(400, "InvalidArgument", f"action {action!r} of version {version!r} is not InvokeFunction")
        self.authenticated(request)  # an after-auth "stall" happens here
        function = unquote(match[1])
        if function not in self.functions:
            self.fail(f"invocation of unknown function {function!r}")
            return _error(404, "FunctionNotFound", f"function '{function}' does not exist")
        invocation_type = request.header("x-fc-invocation-type", "Sync")
        if invocation_type not in ("Sync", "Async"):
            self.fail(f"invalid x-fc-invocation-type {invocation_type!r}")
            return _error(400, "InvalidArgument", "x-fc-invocation-type must be Sync or Async")
        if invocation_type == "Async" and len(request.body) > MAX_ASYNC_PAYLOAD:
            return _error(400, "EntityTooLarge", f"payload size exceeds maximum allowed size ({MAX_ASYNC_PAYLOAD} bytes)")
        invocation = Invocation(function, request.param("qualifier") or "", invocation_type, request.body, str(uuid.uuid4()))
        with self._state:
            self.invocations.append(invocation)
            self.times.append(time.monotonic())
        if self.on_invoke is not None:
            self.on_invoke(invocation)
        headers = {"x-fc-request-id": invocation.request_id}
        return Response(202, b"", headers) if invocation_type == "Async" else Response(200, b"null", headers)

    def _read(self, request: Request) -> Response:
        for pattern, action, method in _READS:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            problem = self._authenticate(request)
            if problem is not None:
                return problem
            if (request.header("x-acs-action"), request.header("x-acs-version")) != (action, API_VERSION):
                self.fail(f"x-acs-action {request.header('x-acs-action')!r} on {request.path}")
                return _error(400, "InvalidArgument", f"not {action}")
            self.authenticated(request)
            if match.groups() and unquote(match[1]) not in self.functions:
                return _error(404, "FunctionNotFound", f"function '{unquote(match[1])}' does not exist")
            answer: Response = getattr(self, method)(request, *(unquote(g) for g in match.groups()))
            return answer
        self.fail(f"no route for GET {request.raw_path}")
        return _error(404, "PathNotSupported", f"'GET' against '{request.path}' is not supported")

    def _list_functions(self, request: Request) -> Response:
        names = sorted(n for n in self.functions if n.startswith(request.param("prefix") or ""))
        return _page(request, "functions", [self.functions[n] for n in names])

    def _get_function(self, request: Request, function: str) -> Response:
        return _json(self.functions[function])

    def _list_triggers(self, request: Request, function: str) -> Response:
        return _page(request, "triggers", self.triggers.get(function, []))

    def _get_async_config(self, request: Request, function: str) -> Response:
        if function not in self.async_configs:
            return _error(404, "AsyncConfigNotExists", f"async config for function '{function}' does not exist")
        return _json(self.async_configs[function])

    def _authenticate(self, request: Request) -> Response | None:
        """The ACS3 signature (ROA: the canonical URI is the path as sent), the nonce, the STS token."""
        try:
            access_key_id = acs3.verify(
                request.method, request.path, request.query, request.headers, request.body, self.credentials.get
            )
        except acs3.SignatureError as err:
            return _error(403, _AUTH_CODES.get(err.code, err.code), err.message)
        nonce = request.header("x-acs-signature-nonce")
        with self._state:
            if (access_key_id, nonce) in self._nonces:
                return _error(403, "SignatureNonceUsed", "Specified signature nonce was used already.")
            self._nonces.add((access_key_id, nonce))
        token, expected = request.header("x-acs-security-token"), self.tokens.get(access_key_id)
        if (expected is not None or token) and token != expected:
            return _error(403, "InvalidSecurityToken", "The security token is invalid or missing.")
        if token and request.header("x-acs-accesskey-id") != access_key_id:
            return _error(403, "InvalidSecurityToken", "x-acs-accesskey-id does not match the signing access key.")
        return None


def _error(status: int, code: str, message: str) -> Response:
    request_id = str(uuid.uuid4())
    body = json.dumps({"Code": code, "Message": message, "RequestId": request_id}).encode()
    return Response(status, body, {"Content-Type": "application/json", "x-fc-request-id": request_id})


def _json(document: object) -> Response:
    return Response(200, json.dumps(document).encode(), {"Content-Type": "application/json", "x-fc-request-id": str(uuid.uuid4())})


def _page(request: Request, name: str, entries: list[dict[str, object]]) -> Response:
    """One page of a listing: `limit` (at most PAGE here) from `nextToken` (an index, as a string)."""
    start = int(request.param("nextToken") or 0)
    limit = min(int(request.param("limit") or PAGE), PAGE)
    page: dict[str, object] = {name: entries[start:start + limit]}
    if start + limit < len(entries):
        page["nextToken"] = str(start + limit)
    return _json(page)
