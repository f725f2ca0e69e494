"""The tooling's side of wire tests: the deployed function as backfill and replay reach it (FC 3.0 or FC 2.0),
and the command line run against the fakes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from headseg.cli import main
from headseg.function.credentials import Credentials
from headseg.function.events import ObjectCreated, parse_event
from headseg.function.retry import RetryPolicy
from headseg.ops.invoker import Fc2Invoker, Fc3Invoker, Invoker
from tests.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, BUCKET, SECURITY_TOKEN, Cloud
from tests.fakes._server import Request
from tests.fakes.fc import is_invocation as is_fc2_invocation
from tests.fakes.fc3 import is_invocation as is_fc3_invocation

CREDENTIALS = Credentials(ACCESS_KEY_ID, ACCESS_KEY_SECRET, SECURITY_TOKEN)


@dataclass
class Fc:
    """The deployed function as the tooling reaches it: through FC 3.0 (the default) or FC 2.0 (`--api fc2`)."""

    api: str
    fake: Any  # FakeFc3 or FakeFc: both record `invocations` and take `throttle()`, `on_invoke`
    options: list[str]

    def invoker(self, policy: RetryPolicy = RetryPolicy(max_attempts=8), endpoint: str | None = None, seconds: float = 120) -> Invoker:
        endpoint = endpoint or self.fake.url
        if self.api == "fc2":
            return Fc2Invoker(endpoint, CREDENTIALS, "default", "headseg", policy=policy, seconds=seconds)
        return Fc3Invoker(endpoint, CREDENTIALS, "headseg", policy=policy, seconds=seconds)

    def is_invocation(self, request: Request) -> bool:
        return (is_fc2_invocation if self.api == "fc2" else is_fc3_invocation)(request)


def cli(fc: Fc, cloud: Cloud, *args: str) -> int:
    target = ["--bucket", BUCKET, "--oss-endpoint", cloud.oss.url, *fc.options, "--quiet"]
    return main([args[0], *target, *args[1:]])


def invoked(fc: Fc) -> list[ObjectCreated]:
    return [record for inv in fc.fake.invocations for record in parse_event(inv.payload)]


def status_report(out: str) -> dict[str, Any]:
    """`headseg status --json`'s lines as one document: the summary (the last line), and under each class not
    done its keys, sorted (`errors`: key -> reason)."""
    assert out.isascii()  # a key's U+2028 or U+0085 would end a line for some readers
    *lines, summary = [json.loads(line) for line in out.split("\n") if line.strip()]
    report: dict[str, Any] = {**summary, "errors": {}}
    for name in ("pending", "stale", "failed", "retriable", "orphans"):
        report[name] = sorted(line["key"] for line in lines if line["class"] == name)
    report["errors"] = {line["key"]: line["detail"] for line in lines if line["class"] == "errors"}
    assert all(line["class"] != "done" for line in lines)
    return report
