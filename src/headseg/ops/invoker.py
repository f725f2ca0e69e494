"""Invokers: how tooling hands an event to the function, deployed (asynchronous invocations) or in-process.

The function s.yaml deploys is an FC 3.0 function: `Fc3Invoker` (the default) queues its invocations through
the FC 3.0 API (`alibabacloud_fc20230330`: `POST /2023-03-30/functions/{name}/invocations`, ACS3-signed).
`Fc2Invoker` speaks the FC 2.0 API (`fc2`: `/2016-08-15/services/{service}/functions/{name}/invocations`), for
functions deployed with FC 2.0. Both turn the SDK's failures into headseg's families the same way
(`headseg.ops.fcapi.classify_reply`): 429, 5xx and `Throttl*` codes are retriable, 401/403 are `AccessDenied`,
anything else is permanent; a request that got no answer (connection refused, reset, timed out) is retriable.
"""

from __future__ import annotations

import io
import json
from typing import Any, Protocol

from headseg.function.credentials import Credentials
from headseg.function.errors import ConfigError, HeadsegError, PermanentError, RetriableError
from headseg.function.events import parse_event
from headseg.function.outcome import Status
from headseg.function.pipeline import Pipeline
from headseg.function.retry import Budget, RetryPolicy, retry
from headseg.function.retry import CALL_TIMEOUT, CONNECT_TIMEOUT
from headseg.ops.fcapi import classify_fc3, classify_reply, unreadable_reply

INVOKE_BUDGET = 120.0  # seconds one event may spend being queued, throttling included


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
        seconds: float = INVOKE_BUDGET,
    ) -> None:
        from headseg.ops.fcapi import fc3_client

        self.endpoint = endpoint
        self._client = fc3_client(endpoint, credentials, region)
        self.function, self.qualifier, self.policy, self.seconds = function, qualifier or None, policy, seconds

    def invoke(self, event: dict[str, Any]) -> str:
        payload = json.dumps(event, ensure_ascii=False).encode("utf-8")
        budget = Budget.seconds(self.seconds)
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
            raise classify_fc3(exc, "InvokeFunction", self.endpoint) from None
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
        seconds: float = INVOKE_BUDGET,
    ) -> None:
        """`seconds`: what one event's hand-over may take, fc2's own retries included (it retries a connection
        that fails five times with backoff, about 30 s, and no public setting changes that)."""
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
        self.service, self.function, self.qualifier, self.policy, self.seconds = service, function, qualifier, policy, seconds

    def invoke(self, event: dict[str, Any]) -> str:
        payload = json.dumps(event, ensure_ascii=False).encode("utf-8")
        return retry(lambda: self._invoke_once(payload), what="InvokeFunction", budget=Budget.seconds(self.seconds), policy=self.policy)

    def _invoke_once(self, payload: bytes) -> str:
        import requests
        from fc2.fc_exceptions import FcError

        try:
            response = self._client.invoke_function(
                self.service, self.function, payload=payload, headers={"x-fc-invocation-type": "Async"}, qualifier=self.qualifier
            )
        except FcError as exc:
            status, code = int(getattr(exc, "status_code", 0) or 0), str(getattr(exc, "err_code", "") or "")
            raise classify_reply("InvokeFunction", status, code, getattr(exc, "request_id", "")) from None
        except requests.exceptions.JSONDecodeError as exc:
            # fc2 logs an error reply with r.json() before it builds its FcError: a body that is not JSON (a
            # gateway's HTML page) escapes as this RequestException. It is a reply, not a connection failure.
            raise unreadable_reply(exc, "InvokeFunction") from None
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
