"""The pipeline: one ObjectCreated record in, one Outcome out. It knows nothing of Function Compute.

For each record: guard (prefixes, done already) → inspect the object → SegmentHead → store each cutout →
write the sidecar last. Every path ends in exactly one Outcome:
    done       cutouts and sidecar written
    skipped    nothing to do (not an image, under the output prefix, done already for this eTag)
    failed     permanent error, recorded in the error sidecar; FC must not retry
    retry      transient error that outlived the retries or the time budget; the caller raises so FC retries
"""

from __future__ import annotations

import enum
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from headseg import images, normalize
from headseg.config import Config
from headseg.errors import (
    CutoutExpired,
    HeadsegError,
    InvalidImage,
    ObjectNotFound,
    PermanentError,
    RetriableError,
)
from headseg.events import ObjectCreated, OtherRecord, Record
from headseg.logs import redact
from headseg.retry import Budget, RetryPolicy, retry
from headseg.segmenters import Head, ImageSource, Segmentation, Segmenter
from headseg.sidecar import ErrorRecord, HeadRecord, Layout, Sidecar, Source, now_iso
from headseg.storage import ObjectInfo, Storage

T = TypeVar("T")
log = logging.getLogger(__name__)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_SEGMENT_ROUNDS = 2  # a second SegmentHead call when the cutout URLs expired before they were read


class Status(str, enum.Enum):
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    RETRY = "retry"


@dataclass(frozen=True)
class Outcome:
    """How one record ended. `reason` is for people; `code` is stable for machines."""

    status: Status
    bucket: str
    key: str
    reason: str = ""
    code: str = ""
    heads: int = 0
    sidecar: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)

    def fields(self) -> dict[str, object]:
        """The outcome as log fields."""
        data: dict[str, object] = {"outcome": self.status.value, "bucket": self.bucket, "key": self.key}
        for name in ("reason", "code", "sidecar"):
            if getattr(self, name):
                data[name] = getattr(self, name)
        if self.status is Status.DONE:
            data["heads"] = self.heads
        if self.timings_ms:
            data["timings_ms"] = self.timings_ms
        return data


class _Skip(Exception):
    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.reason, self.code = reason, code


@dataclass
class Pipeline:
    """Processes records with one segmenter; `storage_for(bucket)` gives the storage of a bucket."""

    config: Config
    segmenter: Segmenter
    storage_for: Callable[[str], Storage]
    policy: RetryPolicy | None = None  # default: from config.max_attempts and config.retry_base
    sleep: Callable[[float], None] = time.sleep
    _pool: ThreadPoolExecutor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.policy is None:
            self.policy = RetryPolicy(max_attempts=self.config.max_attempts, base=self.config.retry_base)
        self._pool = ThreadPoolExecutor(max_workers=self.config.download_workers, thread_name_prefix="headseg")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # -- entry -----------------------------------------------------------------------------------------------
    def process(self, record: Record, budget: Budget, invocation_id: str = "") -> Outcome:
        """Run one record to its outcome (`invocation_id` goes into error sidecars). Never raises for
        expected failures."""
        if isinstance(record, OtherRecord):
            return Outcome(Status.SKIPPED, "", record.key, f"event {record.event_name} is not an object creation", "NotObjectCreated")
        return _Run(self, record, budget, invocation_id).execute()


class _Run:
    """The state of one record's processing."""

    def __init__(self, pipeline: Pipeline, record: ObjectCreated, budget: Budget, invocation_id: str) -> None:
        self.p = pipeline
        self.config = pipeline.config
        self.record = record
        self.budget = budget
        self.invocation_id = invocation_id
        self.key = record.key
        self.head_bytes = b""  # the object's first bytes (all of them once a header needed more)
        self.normalized: normalize.Normalized | None = None
        self.timings: dict[str, float] = {}
        self.started = time.monotonic()
        self.info: ObjectInfo | None = None
        self.image: images.ImageInfo | None = None
        self.layout: Layout | None = None
        self.storage: Storage | None = None

    def execute(self) -> Outcome:
        try:
            return self._execute()
        except _Skip as skip:
            return self._outcome(Status.SKIPPED, skip.reason, skip.code)
        except (PermanentError, ObjectNotFound) as exc:
            try:
                self._record_error(exc, retriable=False)
            except RetriableError as unrecorded:  # a permanent outcome must be recorded: let FC retry until it is
                return self._outcome(
                    Status.RETRY, f"{exc.message}; and the error sidecar could not be written: {unrecorded.message}", unrecorded.code
                )
            except PermanentError:  # no output key can hold it (too long, unsafe): the log line is the record
                pass
            return self._outcome(Status.FAILED, exc.message, exc.code)
        except RetriableError as exc:
            try:
                self._record_error(exc, retriable=True)
            except HeadsegError as unrecorded:  # FC retries anyway; the record only helps `headseg replay`
                log.warning("could not write the error sidecar", extra={"fields": {"key": self.key, "error": unrecorded.code}})
            return self._outcome(Status.RETRY, exc.message, exc.code)

    # -- steps -----------------------------------------------------------------------------------------------
    def _execute(self) -> Outcome:
        self._guard_prefixes()
        self.storage = self.p.storage_for(self.record.bucket)
        previous = self._read_object_and_state()
        self._inspect()
        source = self._source_for_segmenthead()
        try:
            segmentation, cutouts = self._segment_and_store(source)
        finally:
            if source.key != self.key:
                self._delete_quietly(source.key)
        sidecar = self._write_sidecar(segmentation, cutouts)
        self._clean_up(previous, sidecar)
        return self._outcome(Status.DONE, heads=len(sidecar.heads))

    def _guard_prefixes(self) -> None:
        for key in self.record.key_candidates:
            if key.startswith(self.config.output_prefix):
                raise _Skip(f"object is under OUTPUT_PREFIX {self.config.output_prefix!r}: headseg's own output", "OutputPrefix")
            if key.startswith(self.config.scratch):
                raise _Skip(f"object is under SCRATCH_PREFIX {self.config.scratch!r}: a normalized copy", "ScratchPrefix")
        if not any(key.startswith(self.config.input_prefix) for key in self.record.key_candidates):
            raise _Skip(f"object is outside INPUT_PREFIX {self.config.input_prefix!r}", "OutsideInputPrefix")

    def _read_object_and_state(self) -> "_Previous":
        """Read the object's first bytes and both sidecars, all three at once; skip when done already."""
        started = time.monotonic()
        candidates = self.record.key_candidates
        head = self.p._pool.submit(self._read_head, candidates[0])
        state = self._read_state(candidates[0])
        try:
            self.info, self.head_bytes = head.result()
        except ObjectNotFound:
            if len(candidates) == 1:
                raise
            state.result()
            self.info, self.head_bytes = self._read_head(candidates[1])  # the event's key was URL-encoded
            state = self._read_state(candidates[1])
        previous = state.result()
        self.key = self.info.key
        self.timings["read"] = _ms(started)
        etags = {self.info.etag} | ({self.record.etag} if self.record.etag else set())
        if previous.sidecar and any(previous.sidecar.is_done_for(etag, self.config.return_form) for etag in etags):
            raise _Skip("already done for this eTag", "AlreadyDone")
        if previous.error and not previous.error.retriable and previous.error.source.etag in etags:
            raise _Skip(f"already failed permanently for this eTag: {previous.error.reason}", "AlreadyFailed")
        return previous

    def _read_head(self, key: str) -> tuple[ObjectInfo, bytes]:
        assert self.storage is not None
        return self._retry(f"read {key!r}", lambda: self.storage.get(key, images.HEADER_BYTES))

    def _read_state(self, key: str) -> "_StateReads":
        """Start reading both sidecars of `key`. Submitted from this thread: pool tasks never wait on others."""
        layout = Layout(self.config.output_prefix, key)
        return _StateReads(
            layout, self.p._pool.submit(self._read_optional, layout.sidecar), self.p._pool.submit(self._read_optional, layout.error)
        )

    def _read_optional(self, key: str) -> bytes | None:
        assert self.storage is not None
        try:
            return self._retry(f"read {key!r}", lambda: self.storage.get(key)[1])
        except ObjectNotFound:
            return None

    def _inspect(self) -> None:
        """Format, size and dimensions from the first bytes; refuse what no normalization can rescue."""
        assert self.info is not None and self.storage is not None
        self.layout = Layout(self.config.output_prefix, self.key)
        if images.sniff(self.head_bytes) is None:
            raise _Skip(f"not an image (Content-Type {self.info.content_type or 'unknown'})", "NotAnImage")
        if self.info.size > self.config.max_object_bytes:
            raise InvalidImage(
                f"object is {self.info.size} bytes, over MAX_OBJECT_BYTES={self.config.max_object_bytes}: refused unread",
                code="InvalidImage.Size",
            )
        try:
            self.image = images.read_header(self.head_bytes, complete=len(self.head_bytes) >= self.info.size)
        except images.NeedMoreBytes:
            self.head_bytes = self._read_whole()  # kept: normalizing reads it from here, not from OSS again
            self.image = images.read_header(self.head_bytes, complete=True)
        normalize.check_pixels(self.image, self.config.limits)
        images.check_min_side(self.image, self.config.min_image_side)

    def _read_whole(self) -> bytes:
        """The whole object (at most MAX_OBJECT_BYTES, checked before)."""
        assert self.info is not None and self.storage is not None
        if len(self.head_bytes) >= self.info.size:
            return self.head_bytes
        return self._retry(f"read {self.key!r}", lambda: self.storage.get(self.key))[1]

    def _source_for_segmenthead(self) -> ImageSource:
        """The object itself when SegmentHead takes it as it is; otherwise a normalized copy under the scratch
        prefix (deleted after), with `self.normalized` saying how to map boxes back."""
        assert self.info is not None and self.image is not None and self.storage is not None
        why = normalize.reasons(self.image, self.info.size, self.config.limits)
        if not why:
            return ImageSource(self.storage, self.info)
        started = time.monotonic()
        self.normalized = normalize.normalize(self._read_whole(), self.config.limits)
        extension = "png" if self.normalized.format == "PNG" else "jpg"
        key = f"{self.config.scratch}{self.key}/{self.info.etag[:8].lower()}.{extension}"
        data = self.normalized.data
        content_type = f"image/{self.normalized.format.lower()}"
        self._retry(f"write {key!r}", lambda: self.storage.put(key, data, content_type))
        self.timings["normalize"] = _ms(started)
        log.info(
            "normalized",
            extra={"fields": {"key": self.key, "why": why, "steps": list(self.normalized.steps)}},
        )
        return ImageSource(self.storage, ObjectInfo(key, len(data), self.info.etag, content_type))

    def _segment_and_store(self, source: ImageSource) -> tuple[Segmentation, list[str]]:
        for round_ in range(1, MAX_SEGMENT_ROUNDS + 1):
            started = time.monotonic()
            segmentation = self._retry(
                "SegmentHead", lambda: self.p.segmenter.segment(source, self.config.return_form, self.budget)
            )
            self.timings["segment"] = _ms(started)
            started = time.monotonic()
            try:
                keys = self._store_cutouts(segmentation.heads)
            except CutoutExpired as exc:
                if round_ == MAX_SEGMENT_ROUNDS:
                    raise RetriableError(f"cutout URLs expired {round_} times in a row: {exc.message}", code=exc.code) from exc
                log.warning("cutout URLs expired; calling SegmentHead again", extra={"fields": {"key": self.key}})
                continue
            self.timings["cutouts"] = _ms(started)
            return segmentation, keys
        raise AssertionError("unreachable")

    def _store_cutouts(self, heads: list[Head]) -> list[str]:
        """Download each cutout and write it, all heads at once; each head's PUT starts when its GET ends.

        Meanwhile a HEAD of the source checks that no newer upload superseded this one; if one did, the
        cutouts just written are removed and the newer upload's own event does the work.
        """
        assert self.storage is not None and self.info is not None
        current = self.p._pool.submit(self._retry, f"head {self.key!r}", lambda: self.storage.head(self.key))
        futures: list[Future[str]] = [self.p._pool.submit(self._store_cutout, i, head) for i, head in enumerate(heads)]
        errors = []
        keys = []
        for future in futures:
            try:
                keys.append(future.result())
            except HeadsegError as exc:
                errors.append(exc)
        if errors:  # the most decisive error wins: permanent, then expired (re-segment), then transient
            for kind in (PermanentError, CutoutExpired, HeadsegError):
                for exc in errors:
                    if isinstance(exc, kind):
                        raise exc
        try:
            etag = current.result().etag
        except ObjectNotFound:
            etag = ""
        if etag != self.info.etag:
            for key in keys:
                self._delete_quietly(key)
            now = f"a newer upload (eTag {etag})" if etag else "its deletion"
            raise _Skip(f"superseded by {now} while processing; that event does the work", "Superseded")
        return keys

    def _store_cutout(self, index: int, head: Head) -> str:
        assert self.layout is not None and self.storage is not None
        assert self.info is not None
        png = self._fetch(head)
        key = self.layout.cutout(index, self.info.etag)
        self._retry(f"write {key!r}", lambda: self.storage.put(key, png, "image/png"))
        return key

    def _fetch(self, head: Head) -> bytes:
        def fetch_png() -> bytes:
            png = self.p.segmenter.fetch(head, self.budget)
            if not png.startswith(PNG_MAGIC):
                raise RetriableError("the cutout is not a PNG", code="BadCutout")
            return png

        return self._retry("download cutout", fetch_png)

    def _write_sidecar(self, segmentation: Segmentation, keys: list[str]) -> Sidecar:
        assert self.layout is not None and self.info is not None and self.image is not None and self.storage is not None
        started = time.monotonic()
        normalized = self.normalized
        heads = []
        for i, (key, h) in enumerate(zip(keys, segmentation.heads)):
            x, y, width, height = normalized.to_original(h.x, h.y, h.width, h.height) if normalized else (h.x, h.y, h.width, h.height)
            heads.append(HeadRecord(index=i, key=key, x=x, y=y, width=width, height=height))
        sidecar = Sidecar(
            source=self._source(),
            request_id=segmentation.request_id,
            return_form=self.config.return_form,
            engine=self.p.segmenter.name,
            heads=heads,
            normalization=_describe(normalized) if normalized else None,
            timings_ms=dict(self.timings),
            created_at=now_iso(),
        )
        data = sidecar.to_json()
        self._retry("write sidecar", lambda: self.storage.put(self.layout.sidecar, data, "application/json"))
        self.timings["sidecar"] = _ms(started)
        return sidecar

    def _clean_up(self, previous: "_Previous", sidecar: Sidecar) -> None:
        """After the sidecar: remove cutouts an older result had beyond the new head count, and the old error."""
        assert self.storage is not None and self.layout is not None
        stale = []
        if previous.sidecar is not None and previous.layout == self.layout:
            stale = [h.key for h in previous.sidecar.heads if h.key not in {n.key for n in sidecar.heads}]
        if previous.error_exists and previous.layout == self.layout:
            stale.append(self.layout.error)
        for key in stale:
            self._delete_quietly(key)

    def _delete_quietly(self, key: str) -> None:
        """Delete an object that is only clutter once the result stands; a failure is logged, not raised."""
        assert self.storage is not None
        try:
            self._retry(f"delete {key!r}", lambda: self.storage.delete(key))
        except HeadsegError as exc:
            log.warning("could not delete a leftover object", extra={"fields": {"key": key, "error": exc.code}})

    # -- helpers ---------------------------------------------------------------------------------------------
    def _retry(self, what: str, call: Callable[[], T]) -> T:
        assert self.p.policy is not None
        return retry(call, what=what, budget=self.budget, policy=self.p.policy, sleep=self.p.sleep)

    def _source(self) -> Source:
        info = self.info
        return Source(
            bucket=self.record.bucket,
            key=self.key,
            etag=info.etag if info else (self.record.etag or ""),
            size=info.size if info else (self.record.size or 0),
            width=self.image.upright_size[0] if self.image else None,
            height=self.image.upright_size[1] if self.image else None,
        )

    def _record_error(self, exc: HeadsegError, *, retriable: bool) -> None:
        """Write the error sidecar, with retries within the budget."""
        if self.storage is None:
            return
        layout = self.layout or Layout(self.config.output_prefix, self.key)
        record = ErrorRecord(
            source=self._source(),
            code=exc.code,
            reason=redact(exc.message),
            retriable=retriable,
            request_id=self.invocation_id,
            created_at=now_iso(),
        )
        data = record.to_json()
        self._retry("write error sidecar", lambda: self.storage.put(layout.error, data, "application/json"))

    def _outcome(self, status: Status, reason: str = "", code: str = "", heads: int = 0) -> Outcome:
        self.timings["total"] = _ms(self.started)
        sidecar = ""
        if self.layout is not None and status in (Status.DONE, Status.FAILED):
            sidecar = self.layout.sidecar if status is Status.DONE else self.layout.error
        return Outcome(status, self.record.bucket, self.key, redact(reason), code, heads, sidecar, dict(self.timings))


@dataclass(frozen=True)
class _StateReads:
    """The two sidecar reads of one key, under way."""

    layout: Layout
    sidecar: "Future[bytes | None]"
    error: "Future[bytes | None]"

    def result(self) -> "_Previous":
        sidecar, error = self.sidecar.result(), self.error.result()
        return _Previous(
            layout=self.layout,
            sidecar=Sidecar.from_json(sidecar) if sidecar is not None else None,
            error=ErrorRecord.from_json(error) if error is not None else None,
            error_exists=error is not None,
        )


@dataclass(frozen=True)
class _Previous:
    """What an earlier run left for this source."""

    layout: Layout
    sidecar: Sidecar | None
    error: ErrorRecord | None
    error_exists: bool


def _describe(normalized: normalize.Normalized) -> dict[str, object]:
    """The sidecar's record of a normalization: heads are in original pixels, cutouts in normalized ones."""
    return {
        "steps": list(normalized.steps),
        "width": normalized.width,
        "height": normalized.height,
        "format": normalized.format,
        "scale": round(normalized.scale, 6),
    }


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
