"""The FC API for the tooling: the signed FC 3.0 client, what FC's error replies mean, and the reads `doctor` makes.

`classify_reply` / `classify_fc3` turn an FC error (fc2's or `alibabacloud_fc20230330`'s) into headseg's
families, for invocations and reads alike: 429, 5xx and `Throttl*` codes are retriable, 401/403 are
`AccessDenied`, anything else is permanent; a request that got no answer is retriable, and so is a reply that
is not the API's (`unreadable_reply`). Only what the SDKs' exceptions carry publicly is read.

`Fc3Reader` answers what a deployment looks like: a function's settings, its triggers, every function's
name, and a function's async-invocation settings, as plain values; what does not exist (HTTP 404) is None.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from headseg.function.credentials import Credentials
from headseg.function.errors import AccessDenied, ConfigError, HeadsegError, PermanentError, RetriableError
from headseg.function.retry import CALL_TIMEOUT, CONNECT_TIMEOUT
from headseg.function.tea import is_network_error

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

    def watches(self) -> tuple[str, str, frozenset[str]] | None:
        """(bucket, key prefix, ObjectCreated event names) of an OSS or EventBridge-on-OSS trigger, else None."""
        config = self.config
        if self.type == "oss":
            prefix = ((config.get("filter") or {}).get("key") or {}).get("prefix") or ""
            return self.source_arn.rpartition(":")[2], prefix, _created(config.get("events", []))
        if self.type == "eventbridge":
            try:
                pattern = json.loads(config.get("eventRuleFilterPattern") or "{}")
            except ValueError:
                return None
            if "acs.oss" not in pattern.get("source", []):
                return None
            subjects = [s.get("prefix", "") for s in pattern.get("subject", []) if isinstance(s, dict)] or [""]
            bucket, _, prefix = subjects[0].rpartition(":")[2].partition("/")
            return bucket, prefix, _created(pattern.get("type", []))
        return None


def _created(names: list[str]) -> frozenset[str]:
    """The ObjectCreated event names among a trigger's (`oss:ObjectCreated:PutObject` -> `PutObject`)."""
    prefix = "oss:ObjectCreated:"
    return frozenset(name.removeprefix(prefix) for name in names if name.startswith(prefix))


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
        except TeaException as exc:
            if _fc3_status(exc) == 404:
                return None
            raise classify_fc3(exc, action, self.endpoint) from None


def classify_reply(action: str, status: int, code: str, request_id: Any = "") -> HeadsegError:
    """An FC error reply to `action` (HTTP status and service code) as one of headseg's families."""
    detail = f"{action}: HTTP {status} {code}".rstrip() + (f" (request id {request_id})" if request_id else "")
    if status == 429 or status >= 500 or "Throttl" in code:
        return RetriableError(detail, code=code or f"HTTP{status}")
    if status in (401, 403):
        return AccessDenied(detail + f": check the credentials and their fc:{action} permission", code=code or f"HTTP{status}")
    return PermanentError(detail, code=code or f"HTTP{status}")


def classify_fc3(exc: Exception, action: str, endpoint: str) -> HeadsegError:
    """A tea-openapi exception of an FC 3.0 call to `endpoint` as one of headseg's families.

    An error reply whose body is JSON raises `ClientException`/`ServerException`/`ThrottlingException` (`.code`,
    `.status_code`, the body in `.data`). Anything else the request raised comes wrapped in an
    `UnretryableException` (`.inner_exception`): darabonba's `RetryError` when no answer came (a connection
    failure), a `RuntimeError` when a reply's body was not JSON.
    """
    inner = getattr(exc, "inner_exception", None)
    if inner is not None and not getattr(inner, "code", None):
        if is_network_error(inner):
            return RetriableError(f"{action}: cannot reach {endpoint}: connection failed: {type(inner).__name__}", code="ConnectionError")
        if isinstance(inner, RuntimeError):
            return unreadable_reply(inner, action)
        # a failure of the SDK itself: surfaces as this object's failure (hand-overs report every HeadsegError)
        return PermanentError(f"{action}: the SDK failed: {type(inner).__name__}: {inner}", code="SdkError")
    data = getattr(exc, "data", None)
    code = str(getattr(exc, "code", "") or "")
    code = "" if code == "None" else code  # tea-openapi formats a missing Code as f'{code}'
    request_id = (data.get("RequestId") or data.get("requestId") or "") if isinstance(data, dict) else ""
    return classify_reply(action, _fc3_status(exc) or 0, code, request_id)


def unreadable_reply(exc: BaseException, action: str) -> HeadsegError:
    """A reply to `action` whose body an SDK could not parse (fc2 raises requests' JSONDecodeError, tea-openapi a
    RuntimeError): not FC's answer, whose errors are JSON, but a proxy's or a gateway's page. Neither SDK tells
    its status then, so it is retried like the passing 502 it mostly is; its code tells it from a connection
    failure, and from the API's own errors when the attempts run out."""
    return RetriableError(
        f"{action}: a reply whose body is not JSON (a proxy or gateway answered?): {type(exc).__name__}", code="UnreadableReply"
    )


def _fc3_status(exc: Exception) -> int | None:
    """The HTTP status of an FC error reply, as tea-openapi's exceptions carry it (none for a request that got no
    readable reply)."""
    return int(getattr(exc, "status_code", None) or getattr(exc, "statusCode", None) or 0) or None


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
