"""The FC entry: `handler(event, context)` runs `handle` on the instance's App; `initialize` builds that App.

`build_app` is the composition root: the one place an App is built from an environment. `Instance` holds what one
FC instance built (its App, once) and offers FC's two entry points over it; the module's `handler` and
`initialize`, which `index.py` exports, are those of the process's own `Instance`. Tests build an App or an
`Instance` of their own and call `handle(app, event, context)` or its entry points: nothing to reset.

`handle` parses the event, runs each record through the pipeline, logs one JSON line per record and returns,
or raises `RetriableError` when a record hit a transient error (FC's async retry then takes over; records already
settled are skipped on the retry). Each record runs inside the pipeline's record boundary, so nothing one record
raises stops its neighbours: an unexpected exception is logged with its traceback and becomes that record's
retriable `InternalError`. A malformed record is rejected alone (logged at ERROR with its index and reason, never
retried); a malformed event is rejected whole.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from headseg.function import logs
from headseg.function.app import App
from headseg.function.errors import ConfigError, MalformedEvent, RetriableError
from headseg.function.events import EventTooLarge, parse_event
from headseg.function.outcome import Outcome, Status

log = logging.getLogger("headseg")


def handle(app: App, event: bytes | str, context: Any) -> str:
    """Process one invocation's event with `app`; the result is the outcomes as JSON."""
    budget = app.budget(context)
    request_id = str(getattr(context, "request_id", "") or "")
    credentials = app.credentials(context)
    secrets = credentials.secrets() if credentials else ()
    with logs.bound(request_id=request_id), logs.scrubbing(secrets):  # this invocation's, for it alone
        try:
            records = parse_event(event)
        except MalformedEvent as exc:
            log.error("malformed event", extra={"fields": {"outcome": "rejected", "reason": exc.message}})
            return json.dumps({"outcome": "rejected", "reason": exc.message})
        except EventTooLarge as exc:
            log.error("event too large", extra={"fields": {"outcome": "retry", "code": exc.code, "reason": exc.message}})
            raise
        pipeline = app.pipeline(credentials)
        memory_mb = app.memory_mb(context)
        outcomes = [pipeline.process(record, budget, request_id, memory_mb) for record in records]
        for outcome in outcomes:
            level = logging.ERROR if outcome.status in (Status.FAILED, Status.RETRY, Status.REJECTED) else logging.INFO
            log.log(level, outcome.status.value, extra={"fields": outcome.fields()})
    retry = [o for o in outcomes if o.status is Status.RETRY]
    if retry:
        raise RetriableError(
            f"{len(retry)} of {len(outcomes)} record(s) hit transient errors ({_summary(retry)}); "
            "raising so Function Compute retries the event"
        )
    return json.dumps({"outcomes": [o.fields() for o in outcomes]}, ensure_ascii=False)


def build_app(env: Mapping[str, str] | None = None) -> App:
    """The composition root: the App `env` describes (None: the process's environment), with logging set up
    for it; raises ConfigError with a clear message (logged too)."""
    logs.configure()
    try:
        app = App.from_env(env)
    except ConfigError as exc:
        log.error("refusing to start", extra={"fields": {"error": exc.code, "reason": exc.message}})
        raise
    logs.configure(app.config.log_level.upper())
    return app


@dataclass
class Instance:
    """One FC instance: its App, built by `build` on first use (the initializer's call, or the first event's)
    and kept for the instance's life; `handler` and `initialize` are FC's entry points over it."""

    build: Callable[[], App] = build_app
    _app: App | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def app(self) -> App:
        """The instance's App, built on the first call (concurrent first calls build it once)."""
        with self._lock:
            if self._app is None:
                self._app = self.build()
            return self._app

    def initialize(self, context: Any) -> None:
        """FC initializer: build the App before the first event, so a bad configuration fails loudly, and warm
        it: the SDKs imported and the clients built for the function role's credentials."""
        self.app.warm(context)

    def handler(self, event: bytes | str, context: Any) -> str:
        """FC handler for OSS trigger events."""
        return handle(self.app, event, context)

    def close(self) -> None:
        """Stop the App's pool, if it was built (the end of a test or a benchmark; FC just freezes the process)."""
        with self._lock:
            if self._app is not None:
                self._app.close()


#: The process's instance: what FC runs through `index.handler` and `index.initialize`.
_instance = Instance()


def initialize(context: Any) -> None:
    """FC initializer (`index.initialize`): `Instance.initialize` on the process's instance."""
    _instance.initialize(context)


def handler(event: bytes | str, context: Any) -> str:
    """FC handler (`index.handler`): `Instance.handler` on the process's instance."""
    return _instance.handler(event, context)


def _summary(outcomes: list[Outcome]) -> str:
    return ", ".join(f"{o.key}: {o.code}" for o in outcomes[:5])
