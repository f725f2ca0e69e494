"""Invokers: how tooling hands an event to the function, deployed (fc2, asynchronous) or in-process."""

from __future__ import annotations

import json
from typing import Any, Protocol

from headseg.credentials import Credentials
from headseg.errors import AccessDenied, ConfigError, HeadsegError, PermanentError, RetriableError
from headseg.events import parse_event
from headseg.outcome import Status
from headseg.pipeline import Pipeline
from headseg.retry import Budget, RetryPolicy, retry

INVOKE_BUDGET = 120.0  # seconds one event may spend being queued, throttling included


class Invoker(Protocol):
    def invoke(self, event: dict[str, Any]) -> str:
        """Hand over one event; returns what identifies the hand-over (request id, or the outcome)."""
        ...


class FcInvoker:
    """Queues asynchronous invocations of the deployed function through fc2 (`x-fc-invocation-type: Async`)."""

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
            raise ConfigError("invoking the deployed function needs fc2: pip install 'headseg[ops]' (or use --local)") from None
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
            raise _classify(exc) from None
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


def _classify(exc: Any) -> HeadsegError:
    status, code = int(getattr(exc, "status_code", 0) or 0), str(getattr(exc, "err_code", "") or "")
    detail = f"InvokeFunction: HTTP {status} {code} (request id {getattr(exc, 'request_id', '')})"
    if status == 429 or status >= 500 or "Throttl" in code:
        return RetriableError(detail, code=code or f"HTTP{status}")
    if status in (401, 403):
        return AccessDenied(detail + ": check the credentials and their fc:InvokeFunction permission", code=code)
    return PermanentError(detail, code=code or f"HTTP{status}")
