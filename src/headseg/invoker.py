"""Invokers: how tooling hands an event to the function, deployed (asynchronous invocations) or in-process.

The function s.yaml deploys is an FC 3.0 function: `Fc3Invoker` (the default) queues its invocations through
the FC 3.0 API (`alibabacloud_fc20230330`: `POST /2023-03-30/functions/{name}/invocations`, ACS3-signed).
`Fc2Invoker` speaks the FC 2.0 API (`fc2`: `/2016-08-15/services/{service}/functions/{name}/invocations`), for
functions deployed with FC 2.0. Both turn the SDK's failures into headseg's families the same way: 429, 5xx
and `Throttl*` codes are retriable, 401/403 are `AccessDenied`, anything else is permanent; a request that got
no answer (connection refused, reset, timed out) is retriable.
"""

from __future__ import annotations

import io
import json
from types import TracebackType
from typing import Any, Protocol

from headseg.credentials import Credentials
from headseg.errors import AccessDenied, ConfigError, HeadsegError, PermanentError, RetriableError
from headseg.events import parse_event
from headseg.outcome import Status
from headseg.pipeline import Pipeline
from headseg.retry import Budget, RetryPolicy, retry
from headseg.tea import is_network_error

INVOKE_BUDGET = 120.0  # seconds one event may spend being queued, throttling included
CALL_TIMEOUT = 10.0  # seconds per FC 3.0 call (the SDK's default read timeout): an async invocation is only queued
CONNECT_TIMEOUT = 5.0
FC3_API_VERSION = "2023-03-30"


class Invoker(Protocol):
    def invoke(self, event: dict[str, Any]) -> str:
        """Hand over one event; returns what identifies the hand-over (request id, or the outcome)."""
        ...


class Fc3Invoker:
    """Queues asynchronous invocations of an FC 3.0 function (`x-fc-invocation-type: Async`) through the FC 3.0
    API with `alibabacloud_fc20230330`. `endpoint`: `https://<account id>.<region>.fc.aliyuncs.com` (or any
    `scheme://host[:port]`)."""

    def __init__(
        self,
        endpoint: str,
        credentials: Credentials,
        function: str,
        qualifier: str | None = None,
        policy: RetryPolicy = RetryPolicy(max_attempts=8),
        region: str = "cn-shanghai",
    ) -> None:
        from headseg.fcapi import fc3_client

        self._client = fc3_client(endpoint, credentials, region)
        self.function, self.qualifier, self.policy = function, qualifier or None, policy

    def invoke(self, event: dict[str, Any]) -> str:
        payload = json.dumps(event, ensure_ascii=False).encode("utf-8")
        budget = Budget.seconds(INVOKE_BUDGET)
        return retry(lambda: self._invoke_once(payload, budget), what="InvokeFunction", budget=budget, policy=self.policy)

    def _invoke_once(self, payload: bytes, budget: Budget) -> str:
        from alibabacloud_fc20230330 import models
        from darabonba.runtime import RuntimeOptions
        from Tea.exceptions import TeaException

        runtime = RuntimeOptions(
            read_timeout=int(budget.timeout(CALL_TIMEOUT) * 1000),
            connect_timeout=int(budget.timeout(CONNECT_TIMEOUT) * 1000),
        )
        request = models.InvokeFunctionRequest(body=io.BytesIO(payload), qualifier=self.qualifier)
        headers = models.InvokeFunctionHeaders(x_fc_invocation_type="Async")
        try:
            response = self._client.invoke_function_with_options(self.function, request, headers, runtime)
        except TeaException as exc:
            raise _classify_fc3(exc) from None
        status = int(response.status_code or 0)
        request_id = str((response.headers or {}).get("x-fc-request-id", ""))
        if not 200 <= status < 300:  # the SDK raises for 4xx/5xx only: a 3xx is not a queued invocation either
            raise PermanentError(f"InvokeFunction: unexpected HTTP {status} (request id {request_id})", code=f"HTTP{status}")
        return request_id


class Fc2Invoker:
    """Queues asynchronous invocations of an FC 2.0 function (`x-fc-invocation-type: Async`) through fc2."""

    def __init__(
        self,
        endpoint: str,
        credentials: Credentials,
        service: str,
        function: str,
        qualifier: str | None = None,
        policy: RetryPolicy = RetryPolicy(max_attempts=8),
    ) -> None:
        try:
            import fc2
        except ImportError:
            raise ConfigError("invoking an FC 2.0 function needs fc2: pip install 'headseg[ops]' (or use --local)") from None
        self._client = fc2.Client(
            endpoint=endpoint,
            accessKeyID=credentials.access_key_id,
            accessKeySecret=credentials.access_key_secret,
            securityToken=credentials.security_token or "",
        )
        self.service, self.function, self.qualifier, self.policy = service, function, qualifier, policy

    def invoke(self, event: dict[str, Any]) -> str:
        payload = json.dumps(event, ensure_ascii=False).encode("utf-8")
        return retry(lambda: self._invoke_once(payload), what="InvokeFunction", budget=Budget.seconds(INVOKE_BUDGET), policy=self.policy)

    def _invoke_once(self, payload: bytes) -> str:
        import requests
        from fc2.fc_exceptions import FcError

        try:
            response = self._client.invoke_function(
                self.service, self.function, payload=payload, headers={"x-fc-invocation-type": "Async"}, qualifier=self.qualifier
            )
        except FcError as exc:
            raise _classify(int(getattr(exc, "status_code", 0) or 0), str(getattr(exc, "err_code", "") or ""), getattr(exc, "request_id", "")) from None
        except requests.exceptions.JSONDecodeError as exc:
            # fc2 logs an error reply with r.json() before it builds its FcError: a body that is not JSON (a
            # gateway's HTML page) escapes as this RequestException. It is a reply, not a connection failure.
            raise _unreadable_reply(exc) from None
        except requests.RequestException as exc:
            raise RetriableError(f"InvokeFunction: connection failed: {type(exc).__name__}", code="ConnectionError") from None
        return str(response.headers.get("x-fc-request-id", ""))


class LocalInvoker:
    """Runs each event through the pipeline in this process (`--local`): no deployed function needed."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def invoke(self, event: dict[str, Any]) -> str:
        outcomes = [self.pipeline.process(record, Budget.seconds(INVOKE_BUDGET)) for record in parse_event(event)]
        failed = [o for o in outcomes if o.status in (Status.FAILED, Status.RETRY, Status.REJECTED)]
        if failed:
            raise HeadsegError(f"{failed[0].key}: {failed[0].reason}", code=failed[0].code)
        return ",".join(o.status.value for o in outcomes)


def _classify(status: int, code: str, request_id: Any = "", note: str = "") -> HeadsegError:
    """An FC error reply (HTTP status and service code) as one of headseg's families."""
    detail = f"InvokeFunction: HTTP {status} {code}".rstrip() + (f" (request id {request_id})" if request_id else "") + note
    if status == 429 or status >= 500 or "Throttl" in code:
        return RetriableError(detail, code=code or f"HTTP{status}")
    if status in (401, 403):
        return AccessDenied(detail + ": check the credentials and their fc:InvokeFunction permission", code=code or f"HTTP{status}")
    return PermanentError(detail, code=code or f"HTTP{status}")


def _classify_fc3(exc: Exception) -> HeadsegError:
    """A tea-openapi exception of an FC 3.0 call as one of headseg's families.

    An error reply whose body is JSON raises `ClientException`/`ServerException`/`ThrottlingException` (`.code`,
    `.status_code`, the body in `.data`). Anything else the request raised comes wrapped in an
    `UnretryableException` (`.inner_exception`): darabonba's `RetryError` when no answer came (a connection
    failure), a `RuntimeError` when an error reply's body was not JSON.
    """
    inner = getattr(exc, "inner_exception", None)
    if inner is not None and not getattr(inner, "code", None):
        status = _reply_status(inner.__traceback__)
        if status is not None:
            return _unreadable(status)
        if is_network_error(inner):
            return RetriableError(f"InvokeFunction: connection failed: {type(inner).__name__}", code="ConnectionError")
        # a failure of the SDK itself: surfaces as this object's failure (hand-overs report every HeadsegError)
        return PermanentError(f"InvokeFunction: the SDK failed: {type(inner).__name__}: {inner}", code="SdkError")
    data = getattr(exc, "data", None)
    status = getattr(exc, "status_code", None) or getattr(exc, "statusCode", None) or 0
    code = str(getattr(exc, "code", "") or "")
    code = "" if code == "None" else code  # tea-openapi formats a missing Code as f'{code}'
    request_id = (data.get("RequestId") or data.get("requestId") or "") if isinstance(data, dict) else ""
    return _classify(int(status), code, request_id)


def _unreadable_reply(exc: BaseException) -> HeadsegError:
    status = _reply_status(exc.__traceback__)
    if status is None:  # no reply to be found: treat it as the hiccup a missing answer is
        return RetriableError(f"InvokeFunction: unreadable reply: {type(exc).__name__}", code="UnreadableReply")
    return _unreadable(status)


def _unreadable(status: int) -> HeadsegError:
    return _classify(status, "", note=" (a reply whose body is not JSON: a proxy or gateway answered?)")


# (function, local) of the SDK frames that hold the HTTP response while they read an error reply's body
_REPLY_FRAMES = {("_do_request", "r"), ("do_request", "_response")}  # fc2.Client, tea-openapi's Client


def _reply_status(traceback: TracebackType | None) -> int | None:
    """The HTTP status of the error reply an SDK failed to parse. Neither SDK keeps the response on the exception
    it raises then (fc2: requests' JSONDecodeError; tea-openapi: a RuntimeError), but the SDK frame that held it
    is still in the exception's traceback."""
    while traceback is not None:
        frame = traceback.tb_frame
        for function, local in _REPLY_FRAMES:
            if frame.f_code.co_name == function:
                status = getattr(frame.f_locals.get(local), "status_code", None)
                if isinstance(status, int) and status >= 400:
                    return status
        traceback = traceback.tb_next
    return None
