"""Configuration: one frozen object read from environment variables and validated once, at cold start.

Only this module and `credentials` read `os.environ`, and nothing writes it: the CLI builds its Config with
`Config.from_env(defaults=..., overrides=...)` and takes its own options' defaults from `env_default`. Every
problem is reported at once, with the variable's name.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, fields
from typing import Callable, Mapping, TypeVar
from urllib.parse import urlsplit

from headseg.function.errors import ConfigError
from headseg.function.hosts import default_cutout_hosts
from headseg.function.limits import Limits
from headseg.function.layout import Layout, default_scratch, key_room

T = TypeVar("T")

#: The prefixes a laptop run (the CLI) uses when the environment sets none.
LOCAL_PREFIXES = {"INPUT_PREFIX": "incoming/", "OUTPUT_PREFIX": "heads/"}

#: SegmentHead's ReturnForm values headseg passes on; unset (None) means RGBA cutouts. The service takes any other
#: value silently as unset, so headseg refuses it: a typo would otherwise cut RGBA where masks were meant.
RETURN_FORMS = ("mask",)

#: The most DOWNLOAD_WORKERS: the bytes in flight are bounded by their budget whatever the count, but each
#: worker also holds a thread and a connection outside it; P3 measures the function's peak at this many.
MAX_DOWNLOAD_WORKERS = 32


def env_default(name: str, fallback: str = "") -> str:
    """The environment variable `name`, or `fallback`: the default of a CLI option that mirrors a setting."""
    return os.environ.get(name, fallback)


class UrlMode(str, enum.Enum):
    """How SegmentHead gets the image: a signed URL on the internal or public OSS endpoint, or an upload."""

    INTERNAL = "internal"
    PUBLIC = "public"
    ADVANCE = "advance"


class Engine(str, enum.Enum):
    """Who segments: imageseg SegmentHead in the cloud, or the offline engine (the `local` extra)."""

    CLOUD = "cloud"
    LOCAL = "local"


class OssSignature(str, enum.Enum):
    V1 = "v1"
    V4 = "v4"


@dataclass(frozen=True)
class Config:
    """Everything headseg needs to know besides the event. Build it with `Config.from_env()`."""

    input_prefix: str
    output_prefix: str
    return_form: str | None = None
    engine: Engine = Engine.CLOUD
    url_mode: UrlMode = UrlMode.INTERNAL
    region: str = "cn-shanghai"
    oss_endpoint: str = ""  # where the function reads and writes; default: the region's internal endpoint
    oss_public_endpoint: str = ""  # only used to sign URLs in URL_MODE=public
    oss_signature: OssSignature = OssSignature.V4
    imageseg_endpoint: str = ""  # default: https://imageseg.<region>.aliyuncs.com
    cutout_hosts: str = ""  # comma-separated `*.suffix` or `host[:port]`; default: the region's OSS domains
    scratch_prefix: str = ""  # normalized copies for SegmentHead, deleted after; default: OUTPUT_PREFIX + ".scratch/"
    signed_url_expires: int = 60  # seconds: each SegmentHead attempt gets a fresh URL, fetched at once
    max_image_bytes: int = Limits.max_bytes  # SegmentHead's limits (`limits.Limits`): at most 3 MB,
    min_image_side: int = Limits.min_side  # larger than 32x32,
    max_image_side: int = Limits.max_side  # smaller than 2000x2000
    max_object_bytes: int = 50 * 1024 * 1024  # larger objects are refused without being read
    max_pixels: int = Limits.max_pixels  # decompression-bomb guard: larger images are refused from their header
    memory_mb: int = 0  # the function's memory; default: what FC's context says (512 when it says nothing)
    memory_fraction: float = 0.6  # of memory: what decoding an image may take (cutouts in flight: half of that)
    memory_reserved_mb: int = 96  # of that share, what an instance holds before any image (measured: 68 MB)
    time_margin: float = 3.0  # seconds kept free at the end of an invocation to record the outcome
    vcpu: float = 0.35  # the function's vCPU (s.yaml's cpu; fc3 picks 0.35 at 512 MB): decode time estimates use it
    max_attempts: int = 6  # per cloud call, within the time budget
    retry_base: float = 0.5  # seconds: the first backoff; each further one doubles (with jitter), up to 8 s
    download_workers: int = 8
    bucket_dir: str = ""  # a local directory standing in for the event's bucket (local runs, `headseg invoke`)
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems))

    # ----------------------------------------------------------------------------------------------------
    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        defaults: Mapping[str, str] | None = None,
        overrides: Mapping[str, str] | None = None,
    ) -> "Config":
        """Read the configuration from environment variables (the names are the fields' in upper case), over
        `defaults` and under `overrides` (a command's options)."""
        env = {**(defaults or {}), **(os.environ if env is None else env), **(overrides or {})}
        problems: list[str] = []
        values: dict[str, object] = {}
        for f in fields(cls):
            name = f.name.upper()
            if name not in env:
                continue
            raw = env[name].strip()
            parse = _PARSERS.get(f.name, str)
            try:
                values[f.name] = parse(raw)
            except ValueError as exc:
                problems.append(f"{name}={raw!r}: {exc}")
        for required in ("input_prefix", "output_prefix"):
            if required not in values:
                problems.append(f"{required.upper()} is not set")
        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems))
        return cls(**values)  # type: ignore[arg-type]

    def problems(self) -> list[str]:
        """Everything wrong with this configuration, in words a person can act on."""
        problems = []
        if not self.input_prefix:
            problems.append(
                "INPUT_PREFIX is empty: the trigger would fire on headseg's own output (an infinite loop); "
                "set it to the trigger's prefix, e.g. 'incoming/'"
            )
        if not self.output_prefix:
            problems.append("OUTPUT_PREFIX is empty: set it to a prefix outside INPUT_PREFIX, e.g. 'heads/'")
        if self.input_prefix and self.output_prefix and prefixes_overlap(self.output_prefix, self.input_prefix):
            problems.append(
                f"OUTPUT_PREFIX {self.output_prefix!r} overlaps INPUT_PREFIX {self.input_prefix!r}: every "
                "cutout would re-trigger the function (an infinite loop and a large bill); "
                "use disjoint prefixes such as 'incoming/' and 'heads/'"
            )
        for prefix in ("input_prefix", "output_prefix"):
            value = getattr(self, prefix)
            if value.startswith("/"):
                problems.append(f"{prefix.upper()} {value!r} must not start with '/' (OSS keys never do)")
        if self.return_form is not None and self.return_form not in RETURN_FORMS:
            problems.append(
                f"RETURN_FORM {self.return_form!r} must be {' or '.join(RETURN_FORMS)} (masks), or empty for RGBA cutouts"
            )
        if not 30 <= self.signed_url_expires <= 3600:
            problems.append(f"SIGNED_URL_EXPIRES={self.signed_url_expires} must be between 30 and 3600 seconds")
        if self.input_prefix and prefixes_overlap(self.scratch, self.input_prefix):
            problems.append(
                f"SCRATCH_PREFIX {self.scratch!r} overlaps INPUT_PREFIX {self.input_prefix!r}: normalized copies "
                "would re-trigger the function; leave it empty (it defaults to inside OUTPUT_PREFIX)"
            )
        if not 0 < self.min_image_side <= self.max_image_side:
            problems.append("MIN_IMAGE_SIDE must be positive and not above MAX_IMAGE_SIDE")
        if self.max_image_bytes <= 0 or self.max_object_bytes <= 0 or self.max_pixels <= 0:
            problems.append("MAX_IMAGE_BYTES, MAX_OBJECT_BYTES and MAX_PIXELS must be positive")
        if self.max_attempts < 1:
            problems.append("MAX_ATTEMPTS must be at least 1")
        if not 1 <= self.download_workers <= MAX_DOWNLOAD_WORKERS:
            problems.append(
                f"DOWNLOAD_WORKERS={self.download_workers} must be between 1 and {MAX_DOWNLOAD_WORKERS}: the "
                "cutouts in flight share one memory budget, so more workers fetch no faster, and each adds a thread "
                f"and a connection (the function's memory is measured up to {MAX_DOWNLOAD_WORKERS})"
            )
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            problems.append(f"LOG_LEVEL {self.log_level!r} must be DEBUG, INFO, WARNING or ERROR")
        if not 0 < self.retry_base <= 10:
            problems.append(f"RETRY_BASE={self.retry_base} must be between 0 and 10 seconds")
        if not 0 < self.memory_fraction <= 0.9 or self.memory_mb < 0 or self.memory_reserved_mb < 0:
            problems.append("MEMORY_FRACTION must be in (0, 0.9]; MEMORY_MB and MEMORY_RESERVED_MB must not be negative")
        if self.time_margin < 0:
            problems.append("TIME_MARGIN must not be negative")
        if not 0.05 <= self.vcpu <= 16:
            problems.append(f"VCPU={self.vcpu} must be between 0.05 and 16 (the function's cpu in s.yaml)")
        for name in ("oss_endpoint", "oss_public_endpoint", "imageseg_endpoint"):
            value = getattr(self, name)
            if value and urlsplit(value).scheme not in ("http", "https"):
                problems.append(f"{name.upper()} {value!r} must be a URL such as https://host[:port]")
        return problems

    # -- derived values ---------------------------------------------------------------------------------------
    @property
    def needs_credentials(self) -> bool:
        """Only the local engine over a directory bucket runs without an Alibaba Cloud account."""
        return self.engine is Engine.CLOUD or not self.bucket_dir

    @property
    def scratch(self) -> str:
        """Where normalized copies go: SCRATCH_PREFIX, or a folder inside OUTPUT_PREFIX."""
        return self.scratch_prefix or default_scratch(self.output_prefix)

    @property
    def key_room(self) -> int:
        """The bytes a source key may take for every output key of it to fit OSS's limit (`layout.key_room`)."""
        return key_room(self.output_prefix, self.scratch)

    def layout(self, source_key: str) -> Layout:
        """Where the outputs of `source_key` go (raises `PermanentError` when a key would be too long)."""
        return Layout(self.output_prefix, source_key, self.scratch)

    @property
    def limits(self) -> Limits:
        """SegmentHead's limits as configured (the service's, unless a setting narrows them)."""
        return Limits(self.max_image_bytes, self.min_image_side, self.max_image_side, self.max_pixels)

    @property
    def oss_url(self) -> str:
        return self.oss_endpoint or f"https://oss-{self.region}-internal.aliyuncs.com"

    @property
    def oss_public_url(self) -> str:
        return self.oss_public_endpoint or f"https://oss-{self.region}.aliyuncs.com"

    @property
    def allowed_cutout_hosts(self) -> tuple[str, ...]:
        """Where cutouts may be downloaded from (`hosts.check_cutout_url`)."""
        listed = tuple(host.strip() for host in self.cutout_hosts.split(",") if host.strip())
        return listed or default_cutout_hosts(self.region, self.imageseg_endpoint)

    @property
    def imageseg_url(self) -> str:
        return self.imageseg_endpoint or f"https://imageseg.{self.region}.aliyuncs.com"


def prefixes_overlap(a: str, b: str) -> bool:
    """Whether a key could start with both prefixes."""
    return a.startswith(b) or b.startswith(a)


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("expected a whole number") from None


def _float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError("expected a number of seconds") from None


def _choice(kind: Callable[[str], T]) -> Callable[[str], T]:
    def parse(raw: str) -> T:
        try:
            return kind(raw.lower())
        except ValueError:
            options = ", ".join(m.value for m in kind)  # type: ignore[attr-defined]
            raise ValueError(f"expected one of {options}") from None

    return parse


_PARSERS: dict[str, Callable[[str], object]] = {
    "return_form": lambda raw: raw.lower() or None,
    "url_mode": _choice(UrlMode),
    "engine": _choice(Engine),
    "oss_signature": _choice(OssSignature),
    "signed_url_expires": _int,
    "max_image_bytes": _int,
    "min_image_side": _int,
    "max_image_side": _int,
    "max_object_bytes": _int,
    "max_pixels": _int,
    "time_margin": _float,
    "vcpu": _float,
    "memory_mb": _int,
    "memory_fraction": _float,
    "memory_reserved_mb": _int,
    "retry_base": _float,
    "max_attempts": _int,
    "download_workers": _int,
}
