"""Results: what earlier runs left for a source, when that settles it, and every write and removal of outputs.

`settled` is the one rule for "nothing to do for this eTag", used by the pipeline and by backfill. `Results`
writes and removes a source's outputs, each call retried within the run's budget, and only inside the source's
output folder or its scratch copies: an old sidecar that lists another key (tampered, or of another layout)
gets it logged and left alone. JSON records are scrubbed of secrets before they are written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass

from headseg.function import logs
from headseg.function.cutouts import Stored
from headseg.function.errors import HeadsegError, ObjectNotFound, PermanentError, RetriableError, Skipped
from headseg.function.layout import Layout, Mark
from headseg.function.normalize import Normalized
from headseg.function.run import Run
from headseg.function.sidecar import MAX_RECORD_BYTES, ErrorRecord, HeadRecord, Sidecar, Source, now_iso
from headseg.function.storage import ObjectInfo, Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Previous:
    """What earlier runs left for a source: its sidecar and error record, as far as they parse."""

    sidecar: Sidecar | None = None
    error: ErrorRecord | None = None
    error_exists: bool = False  # an error record is there (readable or not): removed after a success

    @classmethod
    def parse(cls, sidecar: bytes | None, error: bytes | None) -> Previous:
        return cls(
            sidecar=Sidecar.from_json(sidecar) if sidecar is not None else None,
            error=ErrorRecord.from_json(error) if error is not None else None,
            error_exists=error is not None,
        )


def settled(previous: Previous, current: ObjectInfo, return_form: str | None) -> Skipped | None:
    """Why the source needs no work (done in this return form, or failed permanently), or None.

    Only a record of the `current` version settles it (eTag, and Last-Modified or version id where the record
    has them: an object changed and changed back keeps its eTag, not its Last-Modified). A record of an older
    version never does, whichever event arrives: a delivery always leaves the result of the version current.
    """
    sidecar, error = previous.sidecar, previous.error
    if sidecar is not None and describes(sidecar.source, current) and sidecar.return_form == return_form:
        return Skipped("already done for this version", code="AlreadyDone")
    if error is not None and not error.retriable and describes(error.source, current):
        return Skipped(f"already failed permanently for this version: {error.reason}", code="AlreadyFailed")
    return None


def done_mark(sidecar: Sidecar) -> Mark:
    """The mark of a result: its version, its heads and its return form."""
    source = sidecar.source
    return Mark("done", source.etag, source.last_modified, len(sidecar.heads), sidecar.return_form or "-")


def error_mark(record: ErrorRecord) -> Mark:
    """The mark of a failure: its version, whether it is retriable, and its code."""
    source = record.source
    return Mark("retriable" if record.retriable else "failed", source.etag, source.last_modified, 0, str(record.code))


def mark_version(mark: Mark, key: str) -> ObjectInfo:
    """The version of the source at `key` a mark describes, comparable with what a listing reports."""
    return ObjectInfo(key, 0, mark.etag, "", mark.last_modified)


def describes(source: Source, current: ObjectInfo) -> bool:
    """Whether a record's `source` is the `current` version of the object."""
    return source_info(source).is_version_of(current)


def source_info(source: Source) -> ObjectInfo:
    """The version a record describes, comparable with what storage reports."""
    return ObjectInfo(source.key, source.size, source.etag, "", source.last_modified, source.version_id)


def read_listed(storage: Storage, key: str | None) -> bytes | None:
    """A record a listing showed (`key`; None: it showed none), or None when it was removed since; at most
    one byte past MAX_RECORD_BYTES is read (a longer record then reads back as None)."""
    if key is None:
        return None
    try:
        return storage.get(key, MAX_RECORD_BYTES + 1)[1]
    except ObjectNotFound:
        return None


def sidecar_for(
    source: Source,
    stored: Stored,
    normalized: Normalized | None,
    engine: str,
    return_form: str | None,
    timings_ms: dict[str, float],
) -> Sidecar:
    """The sidecar of a run's stored cutouts, each head's box mapped back to the original's upright pixels."""
    heads = []
    for index, (key, head) in enumerate(zip(stored.keys, stored.segmentation.heads)):
        box = (head.x, head.y, head.width, head.height)
        x, y, width, height = normalized.to_original(*box) if normalized else box
        heads.append(HeadRecord(index=index, key=key, x=x, y=y, width=width, height=height))
    return Sidecar(
        source=source,
        request_id=stored.segmentation.request_id,
        return_form=return_form,
        engine=engine,
        heads=heads,
        normalization=_describe(normalized) if normalized else None,
        timings_ms=dict(timings_ms),
        created_at=now_iso(),
    )


def _describe(normalized: Normalized) -> dict[str, object]:
    """The sidecar's record of a normalization: heads are in original pixels, cutouts in normalized ones."""
    return {
        "steps": list(normalized.steps),
        "width": normalized.width,
        "height": normalized.height,
        "format": normalized.format,
        "scale": round(normalized.scale, 6),
    }


@dataclass(frozen=True)
class PreviousReads:
    """The two record reads of one source, under way on the pool."""

    sidecar: Future[bytes | None]
    error: Future[bytes | None]

    def result(self) -> Previous:
        return Previous.parse(self.sidecar.result(), self.error.result())


@dataclass(frozen=True)
class Results:
    """The outputs of one source in one storage, written and removed within one run's budget."""

    run: Run
    storage: Storage
    layout: Layout

    def read_previous(self) -> PreviousReads:
        """Start reading the sidecar and the error record at once (from the record's thread)."""
        return PreviousReads(self.run.submit(self._read, self.layout.sidecar), self.run.submit(self._read, self.layout.error))

    def put_cutout(self, index: int, etag: str, png: bytes) -> str:
        key = self.layout.cutout(index, etag)
        self._put(key, png, "image/png")
        return key

    def put_sidecar(self, sidecar: Sidecar) -> None:
        self._put(self.layout.sidecar, sidecar.to_json(), "application/json")

    def put_error(self, record: ErrorRecord) -> None:
        """The error record, then its mark; the source's other marks are removed (a failure there is logged)."""
        self._put(self.layout.error, record.to_json(), "application/json")
        self._settle_marks(error_mark(record))

    def _settle_marks(self, mark: Mark) -> list[str]:
        """Write `mark` unless the source's marks folder holds it already, then remove the other marks there;
        what is left unfinished by a transient failure (a failure to write the mark raises)."""
        key = self.layout.mark(mark)
        listed = self._listed(self.layout.marks_folder)
        if listed is None or key not in listed:
            self._put(key, mark.body, "text/plain")
        unfinished = [] if listed is not None else [f"listing {self.layout.marks_folder!r}"]
        return unfinished + [other for other in listed or [] if other != key and not self.remove(other)]

    @contextmanager
    def scratch_copy(self, etag: str, normalized: Normalized) -> Iterator[Callable[[], str]]:
        """For the block, `publish()` writes the normalized copy of the source under the scratch prefix and gives
        its key; the copy is removed after the block. Runs on one version share the key, so each SegmentHead
        attempt publishes again: a duplicate that finished first and removed it cannot starve this run."""
        key = self.layout.scratch(etag, "png" if normalized.format == "PNG" else "jpg")

        def publish() -> str:
            self._put(key, normalized.data, f"image/{normalized.format.lower()}")
            return key

        try:
            yield publish
        finally:
            self.remove(key)

    def tidy(self, current: Sidecar, previous: Previous) -> None:
        """Once `current` is written (or found to stand): leave the source's outputs as exactly what it names.

        First marks the result (the tooling's record that it is done, written unless there already) and removes
        the source's other marks. Then removes the error record, the cutouts `previous` named that `current` does
        not, and, from listings of the source's folder and scratch folder, every cutout and scratch copy of
        another version (the eTag in its name): what a run that was killed, abandoned or superseded left behind.
        Keys of this version that `current` does not name are left alone: a duplicate run of this version may be
        about to name them.

        Everything is tried; then, if a transient failure left something (a listing or a delete that failed),
        `TidyIncomplete` asks for the retry that finishes it (a permanent refusal is only logged: no retry helps).
        """
        unfinished = self.mark(done_mark(current))
        keep = {head.key for head in current.heads}
        mine = current.source.etag[:8].lower()
        stale = {head.key for head in previous.sidecar.heads} - keep if previous.sidecar else set()
        if previous.error_exists:
            stale.add(self.layout.error)
        for folder in (self.layout.folder, self.layout.scratch_folder):
            listed = self._listed(folder)
            if listed is None:
                unfinished.append(f"listing {folder!r}")
            for key in listed or []:
                version = self.layout.version_in(key)
                if key == self.layout.error or (version is not None and version != mine and key not in keep):
                    stale.add(key)
        unfinished += [key for key in sorted(stale) if not self.remove(key)]
        if unfinished:
            raise RetriableError(
                f"the result stands, but tidying its outputs is unfinished ({', '.join(unfinished)}): the retry finishes it",
                code="TidyIncomplete",
            )

    def _listed(self, folder: str) -> list[str] | None:
        """The keys directly in `folder`; None (logged) when a transient failure kept the listing from ending."""
        try:
            return [info.key for info in self.run.retry(f"list {folder!r}", lambda: list(self.storage.list(folder, "/")))]
        except HeadsegError as exc:
            log.warning("could not list leftovers", extra={"fields": {"folder": folder, "error": exc.code}})
            return None if isinstance(exc, RetriableError) else []

    def remove(self, key: str) -> bool:
        """Remove an output that is only clutter once the result stands; a failure is logged, not raised. False
        when a transient failure left it (a permanent refusal, or a key outside the outputs, is not retried)."""
        if not self.layout.owns(key):
            log.warning("not removing a key outside this source's outputs", extra={"fields": {"object": key}})
            return True
        try:
            self.run.retry(f"delete {key!r}", lambda: self.storage.delete(key, self.run.budget))
        except HeadsegError as exc:
            log.warning("could not delete a leftover object", extra={"fields": {"object": key, "error": exc.code}})
            return not isinstance(exc, RetriableError)
        return True

    def _read(self, key: str) -> bytes | None:
        """A record, read bounded like `read_listed` (None when absent)."""
        try:
            return self.run.retry(f"read {key!r}", lambda: self.storage.get(key, MAX_RECORD_BYTES + 1, self.run.budget)[1])
        except ObjectNotFound:
            return None

    def mark(self, mark: Mark) -> list[str]:
        """Write the source's mark and remove its others (`_settle_marks`), a failure to write it logged: what a
        transient one leaves unfinished is returned, for a retry to finish; after a permanent refusal the result
        stands without its mark (the other marks stay)."""
        try:
            return self._settle_marks(mark)
        except HeadsegError as exc:
            log.warning("could not write the mark", extra={"fields": {"mark": mark.name, "error": exc.code}})
            return ["writing its mark"] if isinstance(exc, RetriableError) else []

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        if not self.layout.owns(key):
            raise PermanentError(f"refusing to write {key!r}: outside OUTPUT_PREFIX and the scratch prefix", code="UnsafeKey")
        if content_type == "application/json":
            data = logs.scrub(data.decode("utf-8")).encode("utf-8")
        self.run.retry(f"write {key!r}", lambda: self.storage.put(key, data, content_type, self.run.budget))
