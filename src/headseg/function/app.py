"""The composition root: what one instance (FC) or one command (CLI) builds once, and nothing else builds.

`App` holds the Config, the clock and sleep (injectable), the instance's thread pool and, for the current
credentials, a `Pipeline` wired to its storages and segmenter. Rotated STS credentials get a new Pipeline;
an invocation in flight keeps the one it started with, whose clients stay usable until it lets go of them.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from headseg.function import images, memory
from headseg.function.config import Config
from headseg.function.errors import ConfigError
from headseg.function.credentials import Credentials
from headseg.function.pipeline import Pipeline
from headseg.function.retry import Budget, RetryPolicy
from headseg.function.segmenters import Segmenter, build_segmenter
from headseg.function.storage import Storage

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0  # seconds, when the context says nothing of the function's timeout
DEFAULT_MEMORY_MB = 512
RECORDING_GRACE = 0.75  # of TIME_MARGIN: how long an error record may still take once the work gave up


def build_storage(config: Config, credentials: Credentials | None, bucket: str) -> Storage:
    """The bucket's storage: OSS through oss2. (A folder standing in for it, BUCKET_DIR, is the command line's:
    `headseg.local.wiring`.)"""
    if config.bucket_dir:
        raise ConfigError("BUCKET_DIR (a folder standing in for the bucket) is for the command line, not the function")
    from headseg.function.storage.oss import OssStorage

    if credentials is None:
        raise ValueError("OSS needs credentials")
    return OssStorage(
        bucket,
        endpoint=config.oss_url,
        public_endpoint=config.oss_public_url,
        credentials=credentials,
        region=config.region,
        signature=config.oss_signature,
    )


@dataclass
class App:
    """One instance's wiring. Build it with `App.from_env()` (FC), or `App(config, ...)` with builders of one's
    own (the command line's: `headseg.local.wiring.local_app`)."""

    config: Config
    make_segmenter: Callable[[Config, Credentials | None], Segmenter] = build_segmenter
    make_storage: Callable[[Config, Credentials | None, str], Storage] = build_storage
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    env: Mapping[str, str] | None = None  # where credentials come from when the context has none (None: os.environ)
    _pool: ThreadPoolExecutor = field(init=False, repr=False)
    _current: tuple[tuple[str, str | None], Pipeline] | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        memory.release_large_buffers()  # the pool's threads would otherwise keep freed cutouts resident
        images.quiet_pillow()
        self._pool = ThreadPoolExecutor(max_workers=self.config.download_workers, thread_name_prefix="headseg")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "App":
        """The App the function's environment variables describe; raises ConfigError with a clear message."""
        return cls(Config.from_env(env), env=env)

    def budget(self, context: Any) -> Budget:
        """This invocation's budget: FC's timeout (from the context) less TIME_MARGIN, from now; three quarters of
        the margin are the grace for recording an outcome once the work gave up."""
        timeout = float(getattr(getattr(context, "function", None), "timeout", 0) or DEFAULT_TIMEOUT)
        margin = self.config.time_margin
        return Budget.seconds(max(1.0, timeout - margin), clock=self.clock, grace=margin * RECORDING_GRACE)

    def memory_mb(self, context: Any) -> int:
        """The function's memory: MEMORY_MB, else what the context says, else 512 (FC's default)."""
        memory = getattr(getattr(context, "function", None), "memory", 0)
        return self.config.memory_mb or (memory if isinstance(memory, int) and memory > 0 else DEFAULT_MEMORY_MB)

    def credentials(self, context: Any) -> Credentials | None:
        """The credentials for this invocation, or None when the configuration needs none."""
        return Credentials.resolve(context, self.env) if self.config.needs_credentials else None

    def pipeline(self, credentials: Credentials | None) -> Pipeline:
        """The pipeline for these credentials: the current one, or a new one when they rotated."""
        key = (credentials.access_key_id, credentials.security_token) if credentials else ("", None)
        with self._lock:
            if self._current is None or self._current[0] != key:
                self._current = (key, self._build(credentials))
            return self._current[1]

    def warm(self, context: Any) -> None:
        """Import the SDKs and build the clients for the context's credentials (the initializer's job), so the
        first event pays for neither. Without credentials yet, only the imports happen."""
        images.warm()
        if self.config.needs_credentials and not self.config.bucket_dir:
            import headseg.function.storage.oss  # noqa: F401  (oss2 and its dependencies)
        try:
            credentials = self.credentials(context)
        except ConfigError as exc:
            log.warning("initializer: no credentials yet, clients are built on the first event", extra={"fields": {"reason": exc.message}})
            return
        self.pipeline(credentials).segmenter.warm()

    def close(self) -> None:
        """Wait for the pool's tasks and stop it (end of a CLI command, or a test)."""
        self._pool.shutdown(wait=True)

    def _build(self, credentials: Credentials | None) -> Pipeline:
        config = self.config
        storage_for = functools.lru_cache(maxsize=None)(lambda bucket: self.make_storage(config, credentials, bucket))
        return Pipeline(
            config=config,
            segmenter=self.make_segmenter(config, credentials),
            storage_for=storage_for,
            pool=self._pool,
            policy=RetryPolicy(max_attempts=config.max_attempts, base=config.retry_base),
            sleep=self.sleep,
        )
