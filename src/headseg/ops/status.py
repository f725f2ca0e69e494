"""Where every upload stands, in counts and bounded samples: `standing.classify`'s stream, tallied.

A Status keeps, whatever the bucket holds: the count of each class, the first SHOWN keys of each, the failures
by code with the reasons of a sample (SAMPLED sources a code: the error records a person reads, when the
marks say only the code), and the RECENT most recently done sources. Every key of a class goes by `each`
(`headseg status --list`, `--json`), never into memory.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from headseg.function.config import Config
from headseg.function.storage import Storage
from headseg.ops.per_object import Failed, attempt
from headseg.ops.standing import CLASSES, Entry, Lister, Survey, classify, plan, reason_of

RECENT = 12  # the done sources whose cutouts the report shows, newest first
SHOWN = 100  # the first keys of each class the report shows (`headseg status --list CLASS` prints them all)
SAMPLED = 10  # the error records read a failure code, for its reasons, when the marks say only the code
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
    """The sources that failed permanently with one code: how many, and the reasons of those whose record was
    read (all of them by records; a sample of SAMPLED by marks)."""

    count: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    sample: list[str] = field(default_factory=list)  # keys whose reason is still to read

    @property
    def sampled(self) -> int:
        return sum(self.reasons.values())


@dataclass
class Status:
    """Counts by class, failures by code, and bounded samples of keys."""

    bucket: str
    prefix: str
    marked: bool = False  # classified by marks (else by reading records)
    counts: Counter[str] = field(default_factory=Counter)
    failures: dict[str, Failure] = field(default_factory=dict)
    records_read: int = 0
    _recent: list[tuple[str, str, str]] = field(default_factory=list, repr=False)  # a heap: (at, key, cutout)
    _shown: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: {name: [] for name in LISTABLE}, repr=False)

    def add(self, entry: Entry) -> None:
        """Count one classified source (or orphan, or error)."""
        self.counts[entry.name] += 1
        self.records_read += entry.reads
        if entry.name in self._shown and len(self._shown[entry.name]) < SHOWN:
            self._shown[entry.name].append((entry.key, entry.detail))
        if entry.name == "failed":
            failure = self.failures.setdefault(entry.code, Failure())
            failure.count += 1
            if entry.reason:
                failure.reasons[entry.reason] += 1
            elif len(failure.sample) < SAMPLED:
                failure.sample.append(entry.key)
        if entry.recent is not None:
            (heapq.heappush if len(self._recent) < RECENT else heapq.heappushpop)(self._recent, entry.recent)

    def recent(self) -> list[tuple[str, str]]:
        """(source key, first cutout key) of the most recently done sources, newest first."""
        return [(key, cutout) for _, key, cutout in sorted(self._recent, reverse=True)]

    def first(self, name: str) -> list[tuple[str, str]]:
        """(key, detail) of the first SHOWN keys of a class (or of the orphans, or the errors)."""
        return list(self._shown[name])

    def count(self, name: str) -> int:
        return self.counts[name]

    @property
    def sources(self) -> int:
        return sum(self.counts[name] for name in (*CLASSES, "errors"))

    def failures_by_count(self) -> list[tuple[str, Failure]]:
        """(code, its failures), the most common code first."""
        return sorted(self.failures.items(), key=lambda item: -item[1].count)

    def to_json(self) -> dict[str, object]:
        """The summary as JSON: counts, and the failures by code with the reasons read, most common first."""
        return {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "by": "marks" if self.marked else "records",
            "counts": {name: self.count(name) for name in LISTABLE},
            "failed_by_code": {
                code: {"count": f.count, "reasons": [[r, n] for r, n in f.reasons.most_common()], "reasons_of": f.sampled}
                for code, f in self.failures_by_count()
            },
            "records_read": self.records_read,
        }


def survey(
    storage: Storage,
    bucket: str,
    prefix: str,
    config: Config,
    progress: Callable[[int], None] = lambda n: None,
    each: Callable[[Entry], None] = lambda entry: None,
    lister: Lister | None = None,
    how: Survey | None = None,
) -> Status:
    """Classify every source under `prefix` (each entry goes to `each` as it is met), then read the reasons of
    a sample of each failure code whose records were not read."""
    how = how or plan(storage, prefix, config)
    status = Status(bucket, prefix, how.marked)
    for entry in classify(storage, prefix, config, lister, how):
        progress(1)
        if entry.name == "ignored":
            continue
        status.add(entry)
        each(entry)
    for failure in status.failures.values():
        for key in failure.sample:
            reason = attempt(key, "reading its error record", partial(reason_of, storage, config, key))
            status.records_read += 1
            if not isinstance(reason, Failed) and reason:
                failure.reasons[reason] += 1
        failure.sample.clear()
    return status
