"""The pipeline: one ObjectCreated record in, one Outcome out. It knows nothing of Function Compute.

`Pipeline.process` reads top to bottom as the steps, each taking and returning values:
    guard     prefixes: headseg's own output, scratch copies and objects outside INPUT_PREFIX are skipped
    read      the object's first bytes and the previous results, at once; skipped when settled for its eTag
    inspect   format, size and dimensions from the header; refuse what nothing can rescue
    prepare   the object as SegmentHead takes it, or a normalized copy of its own (removed after)
    segment   SegmentHead, then every cutout downloaded, checked and stored (`cutouts`)
    results   the sidecar, written last, then stale outputs removed (`results`)
Every failure is `Skipped`, `PermanentError` or `RetriableError`, and `process` turns each into its Outcome.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from headseg import cputime, images, logs, memory, normalize
from headseg.config import Config, UrlMode
from headseg.cutouts import Cutouts, Stored
from headseg.errors import HeadsegError, InvalidImage, ObjectNotFound, PermanentError, RetriableError, Skipped
from headseg.events import ObjectCreated, OtherRecord, Record, RejectedRecord
from headseg.layout import Layout
from headseg.logs import scrub
from headseg.memory import MIB
from headseg.outcome import Outcome, Status
from headseg.results import Previous, Results, settled, sidecar_for
from headseg.retry import Budget, RetryPolicy
from headseg.run import Run
from headseg.segmenters import Segmenter, SegmentInput, Takes
from headseg.sidecar import ErrorRecord, Sidecar, Source, now_iso
from headseg.storage import ObjectInfo, Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Found:
    """The object as first read: its info and first bytes, where its outputs go, what earlier runs left."""

    bucket: str
    object: ObjectInfo
    head: bytes
    layout: Layout
    previous: Previous


@dataclass(frozen=True)
class Inspected:
    """What the header says, and the bytes held: the first ones, or all of them when the header needed it."""

    image: images.ImageInfo
    data: bytes


@dataclass(frozen=True)
class Pipeline:
    """Processes records with one segmenter; `storage_for(bucket)` gives the storage of a bucket."""

    config: Config
    segmenter: Segmenter
    storage_for: Callable[[str], Storage]
    pool: ThreadPoolExecutor
    policy: RetryPolicy
    sleep: Callable[[float], None] = time.sleep

    def process(self, record: Record, budget: Budget, invocation_id: str = "", memory_mb: int = 512) -> Outcome:
        """Run one record to its outcome (`invocation_id` goes into error sidecars; `memory_mb` is the function's
        memory). Raises only for bugs."""
        if isinstance(record, RejectedRecord):  # malformed: no retry can fix it, and no request is made
            return Outcome(Status.REJECTED, record.bucket, record.key, record.reason, record.code, index=record.index)
        if isinstance(record, OtherRecord):
            reason = f"event {record.event_name} is not an object creation"
            return Outcome(Status.SKIPPED, "", record.key, reason, "NotObjectCreated")
        run = Run(budget, self.policy, self.pool, self.sleep, invocation_id, memory_mb)
        found: Found | None = None
        with logs.bound(bucket=record.bucket, key=record.key):
            try:
                guard(record, self.config)
                storage = self.storage_for(record.bucket)
                found = self._read(run, storage, record)
                sidecar = self._work(run, storage, found)
                return self._outcome(run, record, found, Status.DONE, heads=len(sidecar.heads))
            except Skipped as skip:
                return self._outcome(run, record, found, Status.SKIPPED, skip)
            except PermanentError as exc:
                return self._record_failure(run, record, found, exc)
            except RetriableError as exc:
                return self._record_failure(run, record, found, exc)

    # -- the steps ---------------------------------------------------------------------------------------------
    def _read(self, run: Run, storage: Storage, record: ObjectCreated) -> Found:
        """The object's first bytes and its previous results, read at once; skipped when settled for its eTag."""
        with run.timed("read"):
            found = self._find(run, storage, record)
        etags = {found.object.etag} | ({record.etag} if record.etag else set())
        skip = settled(found.previous, etags, self.config.return_form)
        if skip is not None:
            raise skip
        return found

    def _find(self, run: Run, storage: Storage, record: ObjectCreated) -> Found:
        """The object under the event's key as given or, when that is missing or of another eTag, URL-decoded:
        of two objects that both exist, the one whose eTag is the event's wins (else the key as given)."""
        first, *others = record.key_candidates
        found = self._read_key(run, storage, first)
        if others and (found is None or not _is_version(found, record.etag)):
            other = self._read_key(run, storage, others[0])
            if other is not None and (found is None or _is_version(other, record.etag)):
                return other
        if found is None:
            raise ObjectNotFound(f"OSS GetObject {first!r}: no such object", code="NoSuchKey")
        return found

    def _read_key(self, run: Run, storage: Storage, key: str) -> Found | None:
        """The object at `key` (None when missing), with its previous results read alongside."""
        layout = self.config.layout(key)
        previous = Results(run, storage, layout).read_previous()
        try:
            info, head = run.retry(f"read {key!r}", lambda: storage.get(key, images.HEADER_BYTES, run.budget))
        except ObjectNotFound:
            previous.result()  # let both reads end before going on
            return None
        return Found(storage.bucket, info, head, layout, previous.result())

    def _work(self, run: Run, storage: Storage, found: Found) -> Sidecar:
        inspected = self._inspect(run, storage, found)
        results = Results(run, storage, found.layout)
        normalized = self._normalize(run, storage, found, inspected)
        cutouts = Cutouts(
            run,
            self.segmenter,
            self.config.return_form,
            store=lambda index, png: results.put_cutout(index, found.object.etag, png),
            size=(normalized.width, normalized.height) if normalized else (inspected.image.width, inspected.image.height),
            in_flight_bytes=int(run.memory_mb * MIB * self.config.memory_fraction / 2),
        )
        with self._prepared(run, storage, results, found, inspected, normalized) as image:
            stored = cutouts.segment_and_store(image)
        source = _source(found.bucket, found.object, inspected.image.upright_size)
        sidecar = sidecar_for(source, stored, normalized, self.segmenter.name, self.config.return_form, run.timings_ms)
        with run.timed("sidecar"):
            self._check_current(run, storage, results, found, stored)
            results.put_sidecar(sidecar)
        results.remove_stale(found.previous, sidecar)
        return sidecar

    def _inspect(self, run: Run, storage: Storage, found: Found) -> Inspected:
        """Format, size and dimensions from the first bytes; refuse what no normalization can rescue."""
        info, config = found.object, self.config
        if images.sniff(found.head) is None:
            raise Skipped(f"not an image (Content-Type {info.content_type or 'unknown'})", code="NotAnImage")
        if info.size > config.max_object_bytes:
            raise InvalidImage(
                f"object is {info.size} bytes, over MAX_OBJECT_BYTES={config.max_object_bytes}: refused unread",
                code="InvalidImage.Size",
            )
        try:
            inspected = Inspected(images.read_header(found.head, complete=len(found.head) >= info.size), found.head)
        except images.NeedMoreBytes:
            data = self._whole(run, storage, found.object, found.head)  # kept: normalizing reads it from here
            inspected = Inspected(cputime.read_header(data, run.budget, config), data)
        normalize.check_pixels(inspected.image, config.limits)
        images.check_min_side(inspected.image, config.min_image_side)
        return inspected

    def _normalize(self, run: Run, storage: Storage, found: Found, inspected: Inspected) -> normalize.Normalized | None:
        """A copy within SegmentHead's limits, or None when it takes the object as it is."""
        why = normalize.reasons(inspected.image, found.object.size, self.config.limits)
        if not why:
            return None
        memory.check_fits(inspected.image, found.object.size, run.memory_mb, self.config)
        cputime.check_head(inspected.image, found.head, found.object.size, run.budget, self.config)
        with run.timed("normalize"):
            data = self._whole(run, storage, found.object, inspected.data)
            normalized = cputime.normalize(data, inspected.image, run.budget, self.config)
        log.info("normalized", extra={"fields": {"why": why, "steps": list(normalized.steps)}})
        return normalized

    @contextmanager
    def _prepared(
        self,
        run: Run,
        storage: Storage,
        results: Results,
        found: Found,
        inspected: Inspected,
        normalized: normalize.Normalized | None,
    ) -> Iterator[Callable[[], SegmentInput]]:
        """How the segmenter gets the image, for the block: the bytes held, or a fresh signed URL per attempt of
        the object or of its normalized copy (which is removed after the block)."""
        if self.segmenter.takes is Takes.BYTES:
            data = normalized.data if normalized else self._whole(run, storage, found.object, inspected.data)
            yield lambda: SegmentInput(data=data)
        elif normalized is None:
            yield lambda: SegmentInput(url=self._sign(storage, found.object.key))
        else:
            with results.scratch_copy(found.object.etag, normalized) as key:
                yield lambda: SegmentInput(url=self._sign(storage, key))

    def _check_current(self, run: Run, storage: Storage, results: Results, found: Found, stored: Stored) -> None:
        """Right before the sidecar: skip, removing this run's cutouts, when a newer upload (or a deletion)
        superseded the version read, so a sidecar always describes the version current when it is written."""
        try:
            current: ObjectInfo | None = run.retry("head source", lambda: storage.head(found.object.key, run.budget))
        except ObjectNotFound:
            current = None
        if current is not None and current.etag == found.object.etag:
            return
        for key in stored.keys:
            results.remove(key)
        now = f"a newer upload (eTag {current.etag})" if current else "its deletion"
        raise Skipped(f"superseded by {now} while processing; that event does the work", code="Superseded")

    # -- helpers -----------------------------------------------------------------------------------------------
    def _whole(self, run: Run, storage: Storage, info: ObjectInfo, held: bytes) -> bytes:
        """The whole object: the bytes held when they are all of it, else one more read (at most
        MAX_OBJECT_BYTES, checked before)."""
        if len(held) >= info.size:
            return held
        return run.retry(f"read {info.key!r}", lambda: storage.get(info.key, None, run.budget))[1]

    def _sign(self, storage: Storage, key: str) -> str:
        return segmenthead_url(storage, self.config, key)

    def _record_failure(self, run: Run, record: ObjectCreated, found: Found | None, exc: HeadsegError) -> Outcome:
        """Write the error record (retried within the budget), then the outcome.

        A permanent error that cannot be recorded becomes a retry, so FC tries until it is; one that no output
        key can hold (too long, unsafe) keeps the log line as its record. A retriable error's record only helps
        `headseg replay`: failing to write it changes nothing.
        """
        retriable = isinstance(exc, RetriableError)
        info = found.object if found else ObjectInfo(record.key_candidates[0], record.size or 0, record.etag or "")
        source = _source(record.bucket, info, None)
        error = ErrorRecord(source, exc.code, scrub(exc.message), retriable, run.invocation_id, now_iso())
        try:
            layout = found.layout if found else self.config.layout(info.key)
            Results(run.recording(), self.storage_for(record.bucket), layout).put_error(error)
        except RetriableError as unrecorded:
            if not retriable:
                reason = f"{exc.message}; and the error sidecar could not be written: {unrecorded.message}"
                return self._outcome(run, record, found, Status.RETRY, RetriableError(reason, code=unrecorded.code))
            log.warning("could not write the error sidecar", extra={"fields": {"error": unrecorded.code}})
        except PermanentError:
            pass
        return self._outcome(run, record, found, Status.RETRY if retriable else Status.FAILED, exc)

    def _outcome(
        self, run: Run, record: ObjectCreated, found: Found | None, status: Status, exc: HeadsegError | None = None, heads: int = 0
    ) -> Outcome:
        run.timings_ms["total"] = run.elapsed_ms()
        written = {Status.DONE: "sidecar", Status.FAILED: "error"}.get(status)
        sidecar = getattr(found.layout, written) if found and written else ""
        reason, code = (scrub(exc.message), exc.code) if exc else ("", "")
        key = found.object.key if found else record.key_candidates[0]
        return Outcome(status, record.bucket, key, reason, code, heads, sidecar, dict(run.timings_ms))


def guard(record: ObjectCreated, config: Config) -> None:
    """Skip headseg's own outputs, its scratch copies and objects outside INPUT_PREFIX, before any request."""
    for key in record.key_candidates:
        if key.startswith(config.output_prefix):
            raise Skipped(f"object is under OUTPUT_PREFIX {config.output_prefix!r}: headseg's own output", code="OutputPrefix")
        if key.startswith(config.scratch):
            raise Skipped(f"object is under SCRATCH_PREFIX {config.scratch!r}: a normalized copy", code="ScratchPrefix")
    if not any(key.startswith(config.input_prefix) for key in record.key_candidates):
        raise Skipped(f"object is outside INPUT_PREFIX {config.input_prefix!r}", code="OutsideInputPrefix")


def _is_version(found: Found, etag: str | None) -> bool:
    """Whether `found` is the version the event announced (any version, when it named none)."""
    return not etag or found.object.etag == etag


def _source(bucket: str, info: ObjectInfo, upright: tuple[int, int] | None) -> Source:
    width, height = upright if upright else (None, None)
    return Source(bucket=bucket, key=info.key, etag=info.etag, size=info.size, width=width, height=height)


def segmenthead_url(storage: Storage, config: Config, key: str) -> str:
    """The URL SegmentHead is handed for `key`: signed for SIGNED_URL_EXPIRES, on the public endpoint with
    URL_MODE=public, else on the storage's own (the internal one, in FC)."""
    return storage.signed_url(key, config.signed_url_expires, public=config.url_mode is UrlMode.PUBLIC)
