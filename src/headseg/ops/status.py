"""Where every upload stands: two listings (sources, results) and a read of each sidecar that exists.

Each source under the prefix is exactly one of: done (a sidecar for its eTag and return form), failed (a
permanent error record for its eTag, or a key too long for any output to hold), retriable (a retriable error record for its eTag: what `headseg replay`
hands over), stale (results, but for another version or return form) or pending (no result at all). Results
whose source is gone are orphans. headseg's own outputs and scratch copies are never counted as sources.
Reading and classifying each source is one `per_object.attempt`: a source whose results cannot be read or
judged is listed under `errors` with the reason, and every other source is still classified.
"""

from __future__ import annotations

import contextvars
import heapq
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Iterable

from headseg.function.config import Config
from headseg.function.errors import PermanentError
from headseg.function.layout import ERROR_NAME, SIDECAR_NAME
from headseg.ops.per_object import Failed, attempt
from headseg.function.results import Previous, describes, read_listed, settled
from headseg.function.inputs import is_input
from headseg.function.storage import ObjectInfo, Storage

RECENT = 12  # the done sources whose cutouts the report shows, newest first
SHOWN = 100  # the first keys of each class the report shows (`headseg status --list CLASS` prints them all)
READERS = 8  # sidecars read at once (oss2 pools 10 connections a session)
CLASSES = ("done", "pending", "stale", "failed", "retriable")
LISTABLE = (*CLASSES, "orphans", "errors")  # what `headseg status --list` takes
MEANINGS = {  # each class in one line, for the table and the report
    "done": "cut out: a sidecar for the current version and RETURN_FORM",
    "pending": "no result yet: `headseg backfill` hands them over",
    "stale": "a result for another version or return form: `headseg backfill` redoes them",
    "failed": "failed for good (not an image, corrupt, too small...): fix or replace the upload",
    "retriable": "failed for a transient cause: `headseg replay` hands them over",
    "orphans": "results whose source is gone",
    "errors": "results that could not be read or classified (the log has each one's traceback)",
}


@dataclass
class Failure:
    """The sources that failed permanently with one code, and how often each reason was given."""

    keys: list[str] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Verdict:
    """Where one source stands: its class, and what the report keeps of it."""

    name: str  # one of CLASSES
    failure: tuple[str, str] | None = None  # (code, reason) of a permanent failure
    recent: tuple[str, str, str] | None = None  # (created_at, source key, first cutout) of a done source
    detail: str = ""  # what the report says beside the key: a failure's code and reason


@dataclass
class Status:
    """Every source under a prefix by class, the permanent failures by code, the orphaned results, and the
    sources whose results could not be read or classified (`errors`, with the reason)."""

    bucket: str
    prefix: str
    keys: dict[str, list[str]] = field(default_factory=lambda: {name: [] for name in CLASSES})
    failures: dict[str, Failure] = field(default_factory=dict)
    orphans: list[str] = field(default_factory=list)  # source keys whose results remain
    errors: dict[str, str] = field(default_factory=dict)  # source key -> why it could not be classified
    sidecars_read: int = 0
    _recent: list[tuple[str, str, str]] = field(default_factory=list, repr=False)  # a heap: (created_at, key, cutout)
    _shown: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: {name: [] for name in CLASSES}, repr=False)

    def recent(self) -> list[tuple[str, str]]:
        """(source key, first cutout key) of the most recently done sources, newest first."""
        return [(key, cutout) for _, key, cutout in sorted(self._recent, reverse=True)]

    def first(self, name: str) -> list[tuple[str, str]]:
        """(key, detail) of the first SHOWN keys of a class (or of the orphans, or the errors), as listed."""
        if name == "orphans":
            return [(key, "") for key in self.orphans[:SHOWN]]
        if name == "errors":
            return sorted(self.errors.items())[:SHOWN]
        return list(self._shown[name])

    def every(self, name: str) -> list[str]:
        """Every key of a class (or the orphans, or the errors), as listed."""
        if name == "orphans":
            return self.orphans
        if name == "errors":
            return sorted(self.errors)
        return self.keys[name]

    def add(self, key: str, verdict: Verdict) -> None:
        self.keys[verdict.name].append(key)
        if len(self._shown[verdict.name]) < SHOWN:
            self._shown[verdict.name].append((key, verdict.detail))
        if verdict.failure is not None:
            code, reason = verdict.failure
            failure = self.failures.setdefault(code, Failure())
            failure.keys.append(key)
            failure.reasons[reason] += 1
        if verdict.recent is not None:
            (heapq.heappush if len(self._recent) < RECENT else heapq.heappushpop)(self._recent, verdict.recent)

    def failures_by_count(self) -> list[tuple[str, Failure]]:
        """(code, its failures), the most common code first."""
        return sorted(self.failures.items(), key=lambda item: -len(item[1].keys))

    def count(self, name: str) -> int:
        if name in ("orphans", "errors"):
            return len(getattr(self, name))
        return len(self.keys[name])

    def to_json(self) -> dict[str, object]:
        """The report as JSON: counts, the failures by code (most common reasons first), every key not done, and
        each source that could not be classified with the reason."""
        return {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "counts": {name: self.count(name) for name in (*CLASSES, "orphans", "errors")},
            "failed_by_code": {
                code: {"count": len(f.keys), "reasons": [[r, n] for r, n in f.reasons.most_common()]}
                for code, f in self.failures_by_count()
            },
            **{name: sorted(self.keys[name]) for name in CLASSES if name != "done"},
            "orphans": sorted(self.orphans),
            "errors": dict(sorted(self.errors.items())),
            "sidecars_read": self.sidecars_read,
        }


def survey(storage: Storage, bucket: str, prefix: str, config: Config, progress: Callable[[int], None] = lambda n: None) -> Status:
    """List the sources under `prefix` and their results, read the sidecars that exist, and classify."""
    results = _by_source(_listed(storage.list(config.output_prefix + prefix), progress), config)
    sources = {info.key: info for info in _listed(storage.list(prefix), progress) if is_input(info.key, config)}
    status = Status(bucket, prefix)
    status.orphans = sorted(set(results) - set(sources))
    with_results = [info for key, info in sources.items() if key in results]

    command = contextvars.copy_context()  # each reader runs in a copy: its lines are scrubbed of the command's secrets

    def read(info: ObjectInfo) -> Previous | Failed:
        return command.copy().run(attempt, info.key, "reading its results", partial(_previous, storage, results[info.key]))

    with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="status") as pool:
        previous = dict(zip((i.key for i in with_results), pool.map(read, with_results)))
    status.sidecars_read = sum(len(names) for key, names in results.items() if key in sources)
    for key, info in sources.items():
        found = previous.get(key)
        verdict = found if isinstance(found, Failed) else attempt(key, "classifying it", partial(_verdict, info, found, config))
        if isinstance(verdict, Failed):
            status.errors[key] = verdict.reason
        else:
            status.add(key, verdict)
    return status


def _verdict(info: ObjectInfo, previous: Previous | None, config: Config) -> Verdict:
    """The source's class from its results; what the report keeps of it made of strings (a record's fields may
    hold anything), so adding it to the Status cannot fail."""
    try:
        layout = config.layout(info.key)
    except PermanentError as exc:  # no key can hold its outputs: the function fails it for good, and can record nothing
        return _failed(exc.code, exc.message)
    if previous is None or (previous.sidecar is None and previous.error is None):  # nothing, or cutouts alone
        return Verdict("pending")
    done = settled(previous, info, config.return_form)
    sidecar, error = previous.sidecar, previous.error
    if done is not None and done.code == "AlreadyDone" and sidecar is not None:
        cutouts = [h.key for h in sidecar.heads if layout.owns(h.key)]  # never a key it does not own
        return Verdict("done", recent=(str(sidecar.created_at), info.key, cutouts[0]) if cutouts else None)
    if done is not None and error is not None:  # a permanent error for this eTag
        return _failed(str(error.code), str(error.reason))
    if error is not None and error.retriable and describes(error.source, info):
        return Verdict("retriable", detail=f"{error.code}: {error.reason}")
    return Verdict("stale")


def _failed(code: str, reason: str) -> Verdict:
    return Verdict("failed", failure=(code, reason), detail=f"{code}: {reason}")


def _listed(infos: Iterable[ObjectInfo], progress: Callable[[int], None]) -> Iterable[ObjectInfo]:
    for info in infos:
        progress(1)
        yield info


def _by_source(results: Iterable[ObjectInfo], config: Config) -> dict[str, dict[str, str]]:
    """Result folders by source key: the sidecar and error record keys each holds ({} when only cutouts)."""
    folders: dict[str, dict[str, str]] = {}
    for info in results:
        if info.key.startswith(config.scratch) or "/" not in info.key:
            continue
        source, _, name = info.key[len(config.output_prefix):].rpartition("/")
        names = folders.setdefault(source, {})
        if name in (SIDECAR_NAME, ERROR_NAME):
            names[name] = info.key
    return folders


def _previous(storage: Storage, names: dict[str, str]) -> Previous:
    return Previous.parse(read_listed(storage, names.get(SIDECAR_NAME)), read_listed(storage, names.get(ERROR_NAME)))
