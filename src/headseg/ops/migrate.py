"""Migrate: give every result written before marks its mark, then stamp the prefix so `standing` lists marks.

The results are classified the old way (`standing.classify` by records: every sidecar and error record read),
and each record read becomes the mark the function would have written with it: a sidecar its `done` mark (of
the version it describes, whichever that is), an error record its `failed` or `retriable` mark. Orphaned
results get theirs too, so they stay orphans. Writing a mark that exists rewrites the same key: a rerun, or a
run over results that have marks, changes nothing. Only once every source was migrated is the prefix stamped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from headseg.function.config import Config
from headseg.function.errors import PermanentError
from headseg.function.layout import Mark
from headseg.function.results import Previous, done_mark, error_mark, read_listed
from headseg.function.storage import Storage
from headseg.ops.per_object import Failed, Failures, attempt
from headseg.ops.standing import Lister, Survey, classify, stamp


@dataclass
class Migration:
    """What a migration did."""

    sources: int = 0
    marked: int = 0  # marks written
    failures: Failures = field(default_factory=Failures)
    stamped: bool = False


def migrate(storage: Storage, prefix: str, config: Config, lister: Lister | None = None, dry_run: bool = False) -> Migration:
    """Mark every result under `prefix` from its records; stamp the prefix if nothing failed (not on a dry run)."""
    migration = Migration()
    survey = Survey(marked=False, sources=prefix, results=config.output_prefix + prefix)
    for entry in classify(storage, prefix, config, lister, survey):
        if entry.name == "ignored":
            continue
        migration.sources += entry.name != "orphans"
        if entry.name == "errors":
            migration.failures.add(entry.key, entry.reason)
            continue
        previous: Previous | Failed | None = entry.previous
        if entry.name == "orphans":
            previous = attempt(entry.key, "reading its results", partial(_orphan, storage, config, entry.key))
        if isinstance(previous, Failed):
            migration.failures.add(previous.key, previous.reason)
            continue
        for mark in _marks(previous):
            written = attempt(entry.key, "writing its mark", partial(_write, storage, config, entry.key, mark, dry_run))
            if isinstance(written, Failed):
                migration.failures.add(written.key, written.reason)
            else:
                migration.marked += 1
    if not migration.failures.count and not dry_run:
        stamp(storage, config, prefix)
        migration.stamped = True
    return migration


def _marks(previous: Previous | None) -> list[Mark]:
    if previous is None:
        return []
    return ([done_mark(previous.sidecar)] if previous.sidecar else []) + ([error_mark(previous.error)] if previous.error else [])


def _orphan(storage: Storage, config: Config, key: str) -> Previous:
    layout = config.layout(key)
    return Previous.parse(read_listed(storage, layout.sidecar), read_listed(storage, layout.error))


def _write(storage: Storage, config: Config, key: str, mark: Mark, dry_run: bool) -> None:
    layout = config.layout(key)
    target = layout.mark(mark)
    if not layout.owns(target):  # never outside the source's outputs, whatever a record says
        raise PermanentError(f"refusing to write {target!r}: outside OUTPUT_PREFIX", code="UnsafeKey")
    if not dry_run:
        storage.put(target, mark.body, "text/plain")
