"""The FC entry: turns an invocation into pipeline runs, logs one JSON line per record, returns or raises.

Per instance it keeps the Config (validated once) and, per set of credentials, the storage clients and the
segmenter, so warm invocations reuse connections. It raises only for retriable outcomes (FC's async retry
then takes over) and for a configuration that refuses to start.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from headseg import logs
from headseg.config import Config
from headseg.credentials import Credentials
from headseg.errors import ConfigError, MalformedEvent, RetriableError
from headseg.events import parse_event
from headseg.pipeline import Outcome, Pipeline, Status
from headseg.retry import Budget
from headseg.segmenters import Segmenter, build_segmenter
from headseg.storage import Storage

log = logging.getLogger("headseg")

DEFAULT_TIMEOUT = 60.0


@dataclass
class App:
    """What one instance builds once: the config and, per credentials, a pipeline wired to its clients."""

    config: Config
    make_segmenter: Callable[[Config, Credentials | None], Segmenter] = build_segmenter
    _pipelines: dict[tuple[str, str | None], Pipeline] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def pipeline(self, credentials: Credentials | None) -> Pipeline:
        cache_key = (credentials.access_key_id, credentials.security_token) if credentials else ("", None)
        with self._lock:
            pipeline = self._pipelines.get(cache_key)
            if pipeline is None:
                self.close()  # rotated STS credentials: drop the old clients
                pipeline = Pipeline(
                    config=self.config,
                    segmenter=self.make_segmenter(self.config, credentials),
                    storage_for=self._storage_factory(credentials),
                )
                self._pipelines[cache_key] = pipeline
        return pipeline

    def close(self) -> None:
        for pipeline in self._pipelines.values():
            pipeline.close()
        self._pipelines.clear()

    def _storage_factory(self, credentials: Credentials | None) -> Callable[[str], Storage]:
        stores: dict[str, Storage] = {}

        def storage_for(bucket: str) -> Storage:
            if bucket not in stores:
                if self.config.bucket_dir:
                    from headseg.storage.directory import DirectoryStorage

                    stores[bucket] = DirectoryStorage(self.config.bucket_dir, bucket)
                else:
                    from headseg.storage.oss import OssStorage

                    assert credentials is not None, "OSS needs credentials"
                    stores[bucket] = OssStorage(
                        bucket,
                        endpoint=self.config.oss_url,
                        public_endpoint=self.config.oss_public_url,
                        credentials=credentials,
                        region=self.config.region,
                        signature=self.config.oss_signature,
                    )
            return stores[bucket]

        return storage_for


_app: App | None = None


def load_app() -> App:
    """Build (once per instance) the App from the environment; raises ConfigError with a clear message."""
    global _app
    if _app is None:
        logs.configure()
        try:
            config = Config.from_env()
        except ConfigError as exc:
            log.error("refusing to start", extra={"fields": {"error": exc.code, "reason": exc.message}})
            raise
        logs.configure(config.log_level.upper())
        _app = App(config=config)
    return _app


def reset() -> None:
    """Forget the instance state (tests, and `headseg invoke` between runs)."""
    global _app
    if _app is not None:
        _app.close()
    _app = None


def initialize(context: Any) -> None:
    """FC initializer: validate the configuration before the first event, so a bad one fails loudly."""
    load_app()


def handler(event: bytes | str, context: Any) -> str:
    """FC handler for OSS trigger events."""
    started = time.monotonic()
    app = load_app()
    request_id = getattr(context, "request_id", "") or ""
    timeout = float(getattr(getattr(context, "function", None), "timeout", 0) or DEFAULT_TIMEOUT)
    budget = Budget(deadline=started + max(1.0, timeout - app.config.time_margin))
    credentials = Credentials.resolve(context) if app.config.needs_credentials else None
    if credentials is not None:
        logs.add_secrets(credentials.secrets())
    try:
        records = parse_event(event)
    except MalformedEvent as exc:
        log.error("malformed event", extra={"fields": {"request_id": request_id, "outcome": "rejected", "reason": exc.message}})
        return json.dumps({"outcome": "rejected", "reason": exc.message})
    pipeline = app.pipeline(credentials)
    outcomes = [pipeline.process(record, budget, request_id) for record in records]
    for outcome in outcomes:
        level = logging.ERROR if outcome.status in (Status.FAILED, Status.RETRY) else logging.INFO
        log.log(level, outcome.status.value, extra={"fields": {"request_id": request_id, **outcome.fields()}})
    retry = [o for o in outcomes if o.status is Status.RETRY]
    if retry:
        raise RetriableError(
            f"{len(retry)} of {len(outcomes)} record(s) hit transient errors ({_summary(retry)}); "
            "raising so Function Compute retries the event"
        )
    return json.dumps({"outcomes": [o.fields() for o in outcomes]}, ensure_ascii=False)


def _summary(outcomes: list[Outcome]) -> str:
    return ", ".join(f"{o.key}: {o.code}" for o in outcomes[:5])
