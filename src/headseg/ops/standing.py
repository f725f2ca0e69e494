"""Where every source under a prefix stands, streamed from two sorted listings in bounded memory.

Each source is exactly one of: done (its version settled in the configured return form), failed (a permanent
failure of its version, or a key too long for any output to hold), retriable (a transient failure of its
version: what `headseg replay` hands over), stale (results, but of another version or return form) or pending
(no result). Results whose source is gone are orphans. `backfill`, `replay`, `status` and `migrate` all take
their classes from `classify`.

Two ways to know, chosen per prefix:
- **marks** (once `headseg migrate` has stamped the prefix, and for everything the function writes since): the
  sources' listing merged with the listing of `OUTPUT_PREFIX/.settled/`, one small object a settled source whose
  name says how it settled (`layout.Mark`). Nothing is read: two listing pages per 1 000 sources.
- **records** (results written before marks): the sources' listing merged with the listing of the results, and
  each source's sidecar and error record read, a bounded window of reads at once, as `headseg status` always did.

Both listings stream in key order and are merged in one order (`merge`), holding a few keys, never a listing.
Classifying one source is one `per_object.attempt`: a record or mark that cannot be read or judged is an
`errors` entry with its reason, and the stream goes on.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial

from headseg.function.config import Config
from headseg.function.errors import PermanentError
from headseg.function.inputs import is_input
from headseg.function.layout import ERROR_NAME, SIDECAR_NAME, Mark, marks_root
from headseg.function.results import Previous, describes, mark_version, read_listed, settled
from headseg.function.sidecar import ErrorRecord
from headseg.function.storage import ObjectInfo, Storage
from headseg.ops.merge import Group, grouped, merged, ranked
from headseg.ops.per_object import Failed, attempt

log = logging.getLogger(__name__)

CLASSES = ("done", "pending", "stale", "failed", "retriable")
READS = 64  # records being read at once, at most (the listings run ahead of them by as much)
READERS = 8  # threads reading them (oss2 pools 10 connections a session)
STAMP = ".settled.json"  # under OUTPUT_PREFIX: the prefixes whose every result has its mark (`headseg migrate`)
Lister = Callable[[str], Iterator[ObjectInfo]]  # every object under a prefix, in key order


@dataclass  # not frozen: one is made for every object listed, and a frozen dataclass is slower to make
class Entry:
    """One source (or orphaned result) and where it stands.

    `name` is one of CLASSES, "orphans" (results whose source is gone), "errors" (could not be classified:
    `reason` says why) or "ignored" (listed, but not an input: headseg's own outputs, folders)."""

    key: str
    name: str
    info: ObjectInfo | None = None  # the source as listed (None for an orphan)
    code: str = ""  # the error code of a failed or retriable source
    reason: str = ""  # the reason, where a record was read; why, for an error
    recent: tuple[str, str, str] | None = None  # (settled at, key, first cutout) of a done source
    reads: int = 0  # records read to classify it
    previous: Previous | None = None  # the records read (the records way only)

    @property
    def detail(self) -> str:
        """What a report says beside the key."""
        if self.name == "errors":
            return self.reason
        return ": ".join(part for part in (self.code, self.reason) if part)


@dataclass(frozen=True)
class Survey:
    """How `classify` knows: by marks or by records, and what it lists."""

    marked: bool
    sources: str  # the prefix listed for sources
    results: str  # the prefix listed for marks or records


def plan(storage: Storage, prefix: str, config: Config) -> Survey:
    """By marks where `headseg migrate` stamped a prefix of `prefix`, else by records."""
    marked = any(prefix.startswith(stamped) for stamped in stamped_prefixes(storage, config))
    results = (marks_root(config.output_prefix) if marked else config.output_prefix) + prefix
    return Survey(marked, prefix, results)


def classify(
    storage: Storage, prefix: str, config: Config, lister: Lister | None = None, survey: Survey | None = None
) -> Iterator[Entry]:
    """Every source under `prefix` and every orphaned result, in `_rank` order, each with its class. `lister`
    lists a prefix (default: `storage.list`); `survey` is `plan`'s (read here when not given)."""
    lister = lister or storage.list
    survey = survey or plan(storage, prefix, config)
    sources = ranked(lister(survey.sources))
    if survey.marked:
        groups = grouped(lister(survey.results), marks_root(config.output_prefix), ())
        yield from _by_marks(sources, groups, config)
    else:
        skip = (config.scratch, marks_root(config.output_prefix), config.output_prefix + STAMP)
        groups = grouped(lister(survey.results), config.output_prefix, skip)
        yield from _by_records(storage, sources, groups, config)


# -- the stamp -------------------------------------------------------------------------------------------------
def stamped_prefixes(storage: Storage, config: Config) -> list[str]:
    """The prefixes `headseg migrate` marked every result under ([] when none, or the stamp is unreadable)."""
    data = read_listed(storage, config.output_prefix + STAMP)
    try:
        prefixes = json.loads(data)["prefixes"] if data is not None else []
    except (ValueError, TypeError, KeyError, RecursionError):
        log.warning("the marks stamp is unreadable: results are read the old way", extra={"fields": {"key": STAMP}})
        return []
    return [p for p in prefixes if isinstance(p, str)] if isinstance(prefixes, list) else []


def stamp(storage: Storage, config: Config, prefix: str) -> None:
    """Record that every result under `prefix` has its mark: `classify` then goes by marks there."""
    prefixes = sorted({*stamped_prefixes(storage, config), prefix})
    data = json.dumps({"prefixes": prefixes, "written_at": _iso(datetime.now(timezone.utc).timestamp())}).encode()
    storage.put(config.output_prefix + STAMP, data, "application/json")


# -- by marks --------------------------------------------------------------------------------------------------
def _by_marks(sources: Iterator[ObjectInfo], groups: Iterator[Group], config: Config) -> Iterator[Entry]:
    for key, info, listed in merged(sources, groups):
        if info is None:
            yield Entry(key, "orphans")
        elif not is_input(key, config):
            yield Entry(key, "ignored", info)
        else:
            judged = attempt(key, "classifying it", partial(_judge_marks, info, listed, config))
            yield Entry(key, "errors", info, reason=judged.reason) if isinstance(judged, Failed) else judged


def _judge_marks(info: ObjectInfo, listed: list[ObjectInfo], config: Config) -> Entry:
    """A source's class from its marks: one of its version settles it (done in this return form, else failed,
    else retriable; the latest of a kind); marks of other versions only make it stale."""
    too_long = _too_long(info, config)
    if too_long is not None:
        return too_long
    latest: dict[str, tuple[int, Mark]] = {}  # kind -> (when written, mark) of this version
    marked = False
    for found in listed:
        mark = Mark.parse(found.key[found.key.rfind("/") + 1 :])
        if mark is None:
            continue
        marked = True
        if mark_version(mark, info.key).is_version_of(info) and (mark.kind != "done" or mark.form == config.return_form):
            if mark.kind not in latest or found.last_modified >= latest[mark.kind][0]:
                latest[mark.kind] = (found.last_modified, mark)
    if "done" in latest:
        when, mark = latest["done"]
        first = config.layout(info.key).cutout(0, mark.etag) if mark.heads else None
        return Entry(info.key, "done", info, recent=(_iso(when), info.key, first) if first else None)
    for kind in ("failed", "retriable"):
        if kind in latest:
            return Entry(info.key, kind, info, code=latest[kind][1].detail)
    return Entry(info.key, "stale" if marked else "pending", info)


# -- by records ------------------------------------------------------------------------------------------------
def _by_records(storage: Storage, sources: Iterator[ObjectInfo], groups: Iterator[Group], config: Config) -> Iterator[Entry]:
    """The sources with their records read, READS at most under way, in order."""
    command = contextvars.copy_context()  # each read runs in a copy: its lines are scrubbed of the command's secrets
    window: deque[tuple[str, ObjectInfo | None, dict[str, str], Future[Previous | Failed] | None]] = deque()
    with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="records") as pool:
        for key, info, listed in merged(sources, groups):
            records = {name: found.key for found in listed if (name := found.key.rpartition("/")[2]) in (SIDECAR_NAME, ERROR_NAME)}
            reading = info is not None and records and is_input(key, config) and _too_long(info, config) is None
            read = partial(command.copy().run, attempt, key, "reading its results", partial(_previous, storage, records))
            window.append((key, info, records, pool.submit(read) if reading else None))
            if len(window) >= READS:
                yield _judged(*window.popleft(), config)
        while window:
            yield _judged(*window.popleft(), config)


def _judged(key: str, info: ObjectInfo | None, records: dict[str, str], read: Future[Previous | Failed] | None, config: Config) -> Entry:
    if info is None:
        return Entry(key, "orphans")
    if not is_input(key, config):
        return Entry(key, "ignored", info)
    previous = read.result() if read is not None else None
    if isinstance(previous, Failed):
        return Entry(key, "errors", info, reason=previous.reason, reads=len(records))
    judged = attempt(key, "classifying it", partial(_judge_records, info, previous, config))
    if isinstance(judged, Failed):
        return Entry(key, "errors", info, reason=judged.reason, reads=len(records))
    return Entry(key, judged.name, info, judged.code, judged.reason, judged.recent, len(records) if read else 0, previous)


def _previous(storage: Storage, records: dict[str, str]) -> Previous:
    """The records read and parsed; one that is there but does not parse (too large, not JSON, not of this
    schema) makes the source an error: what it says is unknown, so no class would be honest."""
    sidecar, error = (read_listed(storage, records.get(name)) for name in (SIDECAR_NAME, ERROR_NAME))
    previous = Previous.parse(sidecar, error)
    for data, parsed, name in ((sidecar, previous.sidecar, SIDECAR_NAME), (error, previous.error, ERROR_NAME)):
        if data is not None and parsed is None:
            raise PermanentError(f"its {name} cannot be read back (too large, not JSON, or not of this schema)", code="UnreadableRecord")
    return previous


def _judge_records(info: ObjectInfo, previous: Previous | None, config: Config) -> Entry:
    """A source's class from its records, by `results.settled`: what the function itself would decide."""
    too_long = _too_long(info, config)
    if too_long is not None:
        return too_long
    if previous is None or (previous.sidecar is None and previous.error is None):  # nothing, or cutouts alone
        return Entry(info.key, "pending", info)
    done = settled(previous, info, config.return_form)
    sidecar, error = previous.sidecar, previous.error
    if done is not None and done.code == "AlreadyDone" and sidecar is not None:
        layout = config.layout(info.key)
        cutouts = [h.key for h in sidecar.heads if layout.owns(h.key)]  # never a key it does not own
        return Entry(info.key, "done", info, recent=(str(sidecar.created_at), info.key, cutouts[0]) if cutouts else None)
    if done is not None and error is not None:  # a permanent error for this eTag
        return Entry(info.key, "failed", info, str(error.code), str(error.reason))
    if error is not None and error.retriable and describes(error.source, info):
        return Entry(info.key, "retriable", info, str(error.code), str(error.reason))
    return Entry(info.key, "stale", info)


def _too_long(info: ObjectInfo, config: Config) -> Entry | None:
    """A source no output key can hold: the function fails it for good, and can record nothing."""
    if len(info.key.encode("utf-8")) <= config.key_room:
        return None
    try:
        config.layout(info.key)
    except PermanentError as exc:
        return Entry(info.key, "failed", info, exc.code, exc.message)
    return None


def reason_of(storage: Storage, config: Config, key: str) -> str:
    """The reason the error record of the source at `key` gives ("" when it is gone or not of this schema)."""
    data = read_listed(storage, config.layout(key).error)
    record = ErrorRecord.from_json(data) if data is not None else None
    return str(record.reason) if record is not None else ""


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
