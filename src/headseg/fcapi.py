"""The FC 3.0 API for the tooling (`alibabacloud_fc20230330`): the signed client, and the reads `doctor` makes.

`Fc3Reader` answers what a deployment looks like: a function's settings, its triggers, every function's
name, and a function's async-invocation settings, as plain values. Errors become headseg's: a function or a
setting that does not exist is None, refused credentials are AccessDenied, an unreachable endpoint is one
RetriableError naming it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from headseg.credentials import Credentials
from headseg.errors import AccessDenied, ConfigError, PermanentError, RetriableError
from headseg.tea import is_network_error

CALL_TIMEOUT = 10.0  # seconds per call (the SDK's default read timeout)
CONNECT_TIMEOUT = 5.0
T = TypeVar("T")


def fc3_client(endpoint: str, credentials: Credentials, region: str) -> Any:
    """An FC 3.0 API client signing with `credentials` (ACS3-HMAC-SHA256), for `scheme://host[:port]`."""
    try:
        from alibabacloud_fc20230330.client import Client
        from alibabacloud_tea_openapi import models as open_api_models
    except ImportError:
        raise ConfigError("the FC 3.0 API needs alibabacloud_fc20230330: pip install 'headseg[ops]'") from None
    scheme, netloc = _split_endpoint(endpoint)
    return Client(
        open_api_models.Config(
            access_key_id=credentials.access_key_id,
            access_key_secret=credentials.access_key_secret,
            security_token=credentials.security_token or None,
            endpoint=netloc,  # the SDK wants host[:port], the scheme apart
            protocol=scheme,
            region_id=region,
        )
    )


@dataclass(frozen=True)
class Function:
    name: str
    runtime: str
    handler: str
    timeout: int
    memory_mb: int
    environment: dict[str, str]
    role: str
    initializer: str  # "" when none


@dataclass(frozen=True)
class Trigger:
    function: str
    name: str
    type: str  # oss | eventbridge | ...
    source_arn: str
    invocation_role: str
    config: dict[str, Any] = field(default_factory=dict)  # triggerConfig, parsed


@dataclass(frozen=True)
class AsyncConfig:
    max_retries: int | None
    max_event_age_s: int | None
    on_failure: str  # the destination ARN, or ""


class Fc3Reader:
    """Read-only calls to the FC 3.0 API at `endpoint`."""

    def __init__(self, endpoint: str, credentials: Credentials, region: str = "cn-shanghai") -> None:
        self.endpoint = endpoint
        self._client = fc3_client(endpoint, credentials, region)

    def function(self, name: str) -> Function | None:
        from alibabacloud_fc20230330 import models

        found = self._call("GetFunction", lambda runtime: self._client.get_function_with_options(name, models.GetFunctionRequest(), {}, runtime))
        if found is None:
            return None
        body = found.body
        lifecycle = body.instance_lifecycle_config
        initializer = lifecycle.initializer.handler if lifecycle and lifecycle.initializer else ""
        return Function(
            name=body.function_name or name, runtime=body.runtime or "", handler=body.handler or "",
            timeout=int(body.timeout or 0), memory_mb=int(body.memory_size or 0),
            environment=dict(body.environment_variables or {}), role=body.role or "", initializer=initializer or "",
        )

    def function_names(self) -> list[str]:
        from alibabacloud_fc20230330 import models

        def page(token: str | None) -> Any:
            request = models.ListFunctionsRequest(limit=100, next_token=token)
            return self._call("ListFunctions", lambda runtime: self._client.list_functions_with_options(request, {}, runtime))

        return [f.function_name for body in _pages(page) for f in (body.functions or [])]

    def triggers(self, function: str) -> list[Trigger]:
        from alibabacloud_fc20230330 import models

        def page(token: str | None) -> Any:
            request = models.ListTriggersRequest(limit=100, next_token=token)
            return self._call("ListTriggers", lambda runtime: self._client.list_triggers_with_options(function, request, {}, runtime))

        return [
            Trigger(function, t.trigger_name or "", t.trigger_type or "", t.source_arn or "", t.invocation_role or "", _parsed(t.trigger_config))
            for body in _pages(page) for t in (body.triggers or [])
        ]

    def async_config(self, function: str) -> AsyncConfig | None:
        from alibabacloud_fc20230330 import models

        found = self._call(
            "GetAsyncInvokeConfig",
            lambda runtime: self._client.get_async_invoke_config_with_options(function, models.GetAsyncInvokeConfigRequest(), {}, runtime),
        )
        if found is None:
            return None
        body = found.body
        failure = body.destination_config.on_failure if body.destination_config else None
        return AsyncConfig(body.max_async_retry_attempts, body.max_async_event_age_in_seconds, (failure.destination if failure else "") or "")

    def _call(self, action: str, call: Callable[[Any], T]) -> T | None:
        """One call, or None when what it reads does not exist (HTTP 404)."""
        from darabonba.runtime import RuntimeOptions
        from Tea.exceptions import TeaException

        runtime = RuntimeOptions(read_timeout=int(CALL_TIMEOUT * 1000), connect_timeout=int(CONNECT_TIMEOUT * 1000), autoretry=False)
        try:
            return call(runtime)
        except Exception as exc:
            if is_network_error(getattr(exc, "inner_exception", None) or exc):  # tea wraps what got no answer
                raise RetriableError(f"FC {action}: cannot reach {self.endpoint}", code="FcUnreachable") from None
            if not isinstance(exc, TeaException):
                raise
            status, code, text = int(getattr(exc, "status_code", 0) or 0), str(exc.code or ""), str(exc.message or "")
        if status == 404:
            return None
        message = f"FC {action}: {code} (HTTP {status}): {text}"
        if status in (401, 403):
            raise AccessDenied(message, code=code or "AccessDenied")
        raise (RetriableError if status >= 500 or status == 429 else PermanentError)(message, code=code or f"HTTP{status}")


def _split_endpoint(endpoint: str) -> tuple[str, str]:
    """`scheme://host[:port]` (https when no scheme is given) as (scheme, host[:port])."""
    parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") or parts.query:
        raise ConfigError(f"FC endpoint {endpoint!r} is not http(s)://host[:port]")
    return parts.scheme, parts.netloc


def _pages(page: Callable[[str | None], Any]) -> Iterator[Any]:
    token: str | None = None
    while True:
        response = page(token)
        if response is None:
            return
        yield response.body
        token = response.body.next_token
        if not token:
            return


def _parsed(config: Any) -> dict[str, Any]:
    if isinstance(config, dict):
        return config
    try:
        parsed = json.loads(config or "{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
