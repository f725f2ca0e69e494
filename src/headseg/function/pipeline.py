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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from headseg.function import images, logs, normalize
from headseg.function.config import Config, UrlMode
from headseg.function.cutouts import Cutouts, Stored
from headseg.function.errors import (
    HeadsegError,
    InternalError,
    ObjectNotFound,
    PermanentError,
    RetriableError,
    Skipped,
)
from headseg.function.events import ObjectCreated, OtherRecord, Record, RejectedRecord
from headseg.function.examine import Inspected, examine, whole
from headseg.function.inputs import guard
from headseg.function.layout import Layout
from headseg.function.logs import scrub
from headseg.function.memory import MIB
from headseg.function.outcome import Outcome, Status
from headseg.function.results import Previous, Results, error_mark, settled, sidecar_for
from headseg.function.retry import Budget, RetryPolicy
from headseg.function.run import Run
from headseg.function.segmenters import Segmenter, SegmentInput, Takes
from headseg.function.sidecar import ErrorRecord, Sidecar, Source, now_iso
from headseg.function.storage import ObjectInfo, Storage

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
        memory).

        This is the record boundary: whatever happens inside becomes this record's outcome and nothing raised
        inside reaches the caller, so the other records of the event still run. Known failures end as their
        family says; anything else is logged with its traceback and recorded as a retriable `InternalError`.
        """
        if isinstance(record, RejectedRecord):  # malformed: no retry can fix it, and no request is made
            return Outcome(Status.REJECTED, record.bucket, record.key, record.reason, record.code, index=record.index)
        if isinstance(record, OtherRecord):
            reason = f"event {record.event_name} is not an object creation"
            return Outcome(Status.SKIPPED, "", record.key, reason, "NotObjectCreated")
        if budget.remaining() <= 0:  # an event of many records: FC's retry reaches it (settled ones are skipped)
            reason = "the invocation's time ran out before this record was reached; FC's retry processes it"
            return Outcome(Status.RETRY, record.bucket, record.key, reason, "NotReached")
        run = Run(budget, self.policy, self.pool, self.sleep, invocation_id, memory_mb)
        seen: list[Found] = []  # the object once read, for the failure's record
        with logs.bound(bucket=record.bucket, key=record.key):
            try:
                return self._settle(run, record, seen)
            except Exception as exc:
                log.exception("unexpected error: recorded as retriable (a bug, or a failure no boundary classified)")
                error = InternalError(f"unexpected {type(exc).__name__}: {_brief(exc)}")
                found = seen[-1] if seen else None
                try:
                    return self._record_failure(run, record, found, error)
                except Exception:
                    log.exception("could not record the unexpected error")
                    return self._outcome(run, record, found, Status.RETRY, error)

    def _settle(self, run: Run, record: ObjectCreated, seen: list[Found]) -> Outcome:
        """The record's outcome by the three families; other exceptions are `process`'s to catch."""
        found: Found | None = None
        try:
            guard(record, self.config)
            storage = self.storage_for(record.bucket)
            found = self._read(run, storage, record)
            seen.append(found)
            sidecar = self._work(run, storage, found)
            return self._outcome(run, record, found, Status.DONE, heads=len(sidecar.heads))
        except Skipped as skip:
            return self._outcome(run, record, found, Status.SKIPPED, skip)
        except (PermanentError, RetriableError) as exc:
            return self._record_failure(run, record, found, exc)

    # -- the steps ---------------------------------------------------------------------------------------------
    def _read(self, run: Run, storage: Storage, record: ObjectCreated) -> Found:
        """The object's first bytes and its previous results, read at once; skipped when settled for its eTag."""
        with run.timed("read"):
            found = self._find(run, storage, record)
        skip = settled(found.previous, found.object, self.config.return_form)
        if skip is not None:
            sidecar = found.previous.sidecar
            if skip.code == "AlreadyDone" and sidecar is not None:
                run.standing.add(found.layout.sidecar)
                Results(run, storage, found.layout).tidy(sidecar, Previous())  # what a killed run left undone
            elif skip.code == "AlreadyFailed" and found.previous.error is not None:  # its mark may be lost: a
                Results(run, storage, found.layout).mark(error_mark(found.previous.error))  # failure is only logged
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
        inspected, normalized = examine(run, storage, found.object, found.head, self.config)
        results = Results(run, storage, found.layout)
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
            run.standing.add(found.layout.sidecar)
        if not self._still_current(run, storage, found):  # a newer upload landed while the sidecar was written
            raise RetriableError(
                "a newer upload landed while the sidecar was written; the redelivery settles which result stands",
                code="SupersededWhileWriting",
            )
        results.tidy(sidecar, found.previous)  # only while this version is current: a newer one's outputs stay
        return sidecar

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
            data = normalized.data if normalized else whole(run, storage, found.object, inspected.data)
            yield lambda: SegmentInput(data=data)
        elif normalized is None:
            yield lambda: SegmentInput(url=segmenthead_url(storage, self.config, found.object.key, found.object.version_id))
        else:
            with results.scratch_copy(found.object.etag, normalized) as publish:
                yield lambda: SegmentInput(url=segmenthead_url(storage, self.config, publish()))

    def _check_current(self, run: Run, storage: Storage, results: Results, found: Found, stored: Stored) -> None:
        """Right before the sidecar: skip, removing this run's cutouts, when a newer upload (or a deletion)
        superseded the version read, so a sidecar always describes the version current when it is written."""
        current = self._current(run, storage, found)
        if current is not None and current.is_version_of(found.object):
            return
        for key in stored.keys:
            results.remove(key)
        now = f"a newer upload (eTag {current.etag}, last modified {current.last_modified})" if current else "its deletion"
        raise Skipped(f"superseded by {now} while processing; that event does the work", code="Superseded")

    # -- helpers -----------------------------------------------------------------------------------------------
    def _current(self, run: Run, storage: Storage, found: Found) -> ObjectInfo | None:
        """The source as it is now (None: deleted)."""
        try:
            return run.retry("head source", lambda: storage.head(found.object.key, run.budget))
        except ObjectNotFound:
            return None

    def _still_current(self, run: Run, storage: Storage, found: Found) -> bool:
        current = self._current(run, storage, found)
        return current is not None and current.is_version_of(found.object)

    def _record_failure(self, run: Run, record: ObjectCreated, found: Found | None, exc: HeadsegError) -> Outcome:
        """Write the error record (retried within the budget), then the outcome.

        A permanent error that cannot be recorded becomes a retry, so FC tries until it is; one that no output
        key can hold (too long, unsafe) keeps the log line as its record. A retriable error's record only helps
        `headseg replay`: failing to write it changes nothing. Once this run wrote or found the version's sidecar,
        no error record is written: the failure (e.g. unfinished tidying) is a retry the redelivery settles.
        """
        retriable = isinstance(exc, RetriableError)
        info = found.object if found else ObjectInfo(record.key_candidates[0], record.size or 0, record.etag or "")
        if run.standing:  # this record's result stands: an error record would outlive the success
            return self._outcome(run, record, found, Status.RETRY, exc if retriable else RetriableError(exc.message, code=exc.code))
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


def _brief(exc: BaseException, limit: int = 300) -> str:
    """An unexpected exception's text for the record: scrubbed of secrets, cut short."""
    text = scrub(str(exc)) or "(no message)"
    return text if len(text) <= limit else text[:limit] + "…"


def _is_version(found: Found, etag: str | None) -> bool:
    """Whether `found` is the version the event announced (any version, when it named none)."""
    return not etag or found.object.etag == etag


def _source(bucket: str, info: ObjectInfo, upright: tuple[int, int] | None) -> Source:
    width, height = upright if upright else (None, None)
    return Source(bucket, info.key, info.etag, info.size, width, height, info.last_modified, info.version_id)


def segmenthead_url(storage: Storage, config: Config, key: str, version_id: str = "") -> str:
    """The URL SegmentHead is handed for `key`: signed for SIGNED_URL_EXPIRES, on the public endpoint with
    URL_MODE=public, else on the storage's own (the internal one, in FC); pinned to `version_id` in a versioned
    bucket, so the service reads the version that was checked."""
    return storage.signed_url(key, config.signed_url_expires, public=config.url_mode is UrlMode.PUBLIC, version_id=version_id)
