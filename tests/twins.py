"""In-memory twins for unit tests of the pipeline's stages: a bucket, a segmenter, a clock. No HTTP, no sleeping."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from headseg.function.errors import ObjectNotFound
from headseg.function.segmenters import Head, Segmentation, SegmentInput, Takes
from headseg.function.storage import ObjectInfo

Hook = Callable[[str, str], None]  # (operation, key), called before each operation: raise to inject a fault


@dataclass
class MemoryStorage:
    """A bucket in a dict. `hook(operation, key)` runs before every call; `calls` records them in order. Each
    write stamps the object with the next tick of `modified` (its Last-Modified)."""

    bucket: str = "twin"
    objects: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    hook: Hook = lambda operation, key: None
    modified: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _enter(self, operation: str, key: str) -> None:
        with self._lock:
            self.calls.append((operation, key))
        self.hook(operation, key)

    def _info(self, key: str) -> ObjectInfo:
        if key not in self.objects:
            raise ObjectNotFound(f"no object {key!r}")
        data, content_type = self.objects[key]
        return ObjectInfo(key, len(data), hashlib.md5(data).hexdigest().upper(), content_type, self.modified.get(key, 0))

    def get(self, key: str, length: int | None = None, budget: object = None) -> tuple[ObjectInfo, bytes]:
        self._enter("get", key)
        info = self._info(key)
        data = self.objects[key][0]
        return info, data if length is None else data[:length]

    def stream(self, key: str, block: int = 4096) -> Iterator[bytes]:
        """The object `block` bytes at a time (OssStorage's `stream`, which verifies it: nothing here can differ)."""
        self._enter("stream", key)
        self._info(key)
        data = self.objects[key][0]
        for start in range(0, len(data), block):
            yield data[start : start + block]

    def head(self, key: str, budget: object = None) -> ObjectInfo:
        self._enter("head", key)
        return self._info(key)

    def put(self, key: str, data: bytes, content_type: str, budget: object = None) -> None:
        self._enter("put", key)
        self.objects[key] = (data, content_type)
        with self._lock:
            self.modified[key] = max(self.modified.values(), default=1_700_000_000) + 1

    def delete(self, key: str, budget: object = None) -> None:
        self._enter("delete", key)
        self.objects.pop(key, None)

    def list(self, prefix: str, delimiter: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        self._enter("list", prefix)
        for key in sorted(k for k in self.objects if k.startswith(prefix) and k > start_after):
            if not (delimiter and delimiter in key[len(prefix) :]):
                yield self._info(key)

    def signed_url(self, key: str, expires: int, public: bool = False, version_id: str = "") -> str:
        return f"memory://{self.bucket}/{key}?expires={expires}"

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))

    def done(self, operation: str) -> list[str]:
        return [key for op, key in self.calls if op == operation]


PNG = b"\x89PNG\r\n\x1a\n" + b"cutout"


@dataclass
class ScriptedSegmenter:
    """SegmentHead's contract, scripted: `segment` returns `boxes` as heads; `fetch` returns `png(head)`,
    or runs `on_fetch(head)` first (raise there to inject a download fault)."""

    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    takes: Takes = Takes.URL
    name: str = "twin"
    on_segment: Callable[[SegmentInput], None] = lambda image: None
    on_fetch: Callable[[Head], None] = lambda head: None
    inputs: list[SegmentInput] = field(default_factory=list)
    fetched: int = 0

    def segment(self, image: SegmentInput, return_form: str | None, budget: object) -> Segmentation:
        self.inputs.append(image)
        self.on_segment(image)
        heads = [Head(x, y, w, h, url=f"memory://cutout/{i}") for i, (x, y, w, h) in enumerate(self.boxes)]
        return Segmentation(request_id=f"twin-{len(self.inputs)}", heads=heads)

    def fetch(self, head: Head, budget: object) -> bytes:
        self.fetched += 1
        self.on_fetch(head)
        return PNG + (head.url or "").encode()


@dataclass
class Clock:
    """A clock that only moves when told to: `sleep` advances it, so retries take no real time."""

    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
