"""Where every upload stands: two listings (sources, results) and a read of each sidecar that exists.

Each source under the prefix is exactly one of: done (a sidecar for its eTag and return form), failed (a
permanent error record for its eTag), retriable (a retriable error record for its eTag: what `headseg replay`
hands over), stale (results, but for another version or return form) or pending (no result at all). Results
whose source is gone are orphans. headseg's own outputs and scratch copies are never counted as sources.
"""

from __future__ import annotations

import heapq
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable

from headseg.config import Config
from headseg.layout import ERROR_NAME, SIDECAR_NAME
from headseg.results import Previous, describes, is_source, read_listed, settled
from headseg.sidecar import Sidecar
from headseg.storage import ObjectInfo, Storage

RECENT = 12  # the done sources whose cutouts the report shows, newest first
READERS = 8  # sidecars read at once (oss2 pools 10 connections a session)
CLASSES = ("done", "pending", "stale", "failed", "retriable")


@dataclass
class Failure:
    """The sources that failed permanently with one code, and how often each reason was given."""

    keys: list[str] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)


@dataclass
class Status:
    """Every source under a prefix by class, the permanent failures by code, and the orphaned results."""

    bucket: str
    prefix: str
    keys: dict[str, list[str]] = field(default_factory=lambda: {name: [] for name in CLASSES})
    failures: dict[str, Failure] = field(default_factory=dict)
    orphans: list[str] = field(default_factory=list)  # source keys whose results remain
    sidecars_read: int = 0
    _recent: list[tuple[str, str, str]] = field(default_factory=list, repr=False)  # a heap: (created_at, key, cutout)

    def recent(self) -> list[tuple[str, str]]:
        """(source key, first cutout key) of the most recently done sources, newest first."""
        return [(key, cutout) for _, key, cutout in sorted(self._recent, reverse=True)]

    def _done(self, key: str, sidecar: Sidecar, folder: str) -> None:
        self.keys["done"].append(key)
        cutouts = [head.key for head in sidecar.heads if head.key.startswith(folder)]  # never a key it does not own
        if cutouts:
            entry = (sidecar.created_at, key, cutouts[0])
            (heapq.heappush if len(self._recent) < RECENT else heapq.heappushpop)(self._recent, entry)

    def failures_by_count(self) -> list[tuple[str, Failure]]:
        """(code, its failures), the most common code first."""
        return sorted(self.failures.items(), key=lambda item: -len(item[1].keys))

    def count(self, name: str) -> int:
        return len(self.orphans) if name == "orphans" else len(self.keys[name])

    def to_json(self) -> dict[str, object]:
        """The report as JSON: counts, the failures by code (most common reasons first) and every key not done."""
        return {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "counts": {name: self.count(name) for name in (*CLASSES, "orphans")},
            "failed_by_code": {
                code: {"count": len(f.keys), "reasons": [[r, n] for r, n in f.reasons.most_common()]}
                for code, f in self.failures_by_count()
            },
            **{name: sorted(self.keys[name]) for name in CLASSES if name != "done"},
            "orphans": sorted(self.orphans),
            "sidecars_read": self.sidecars_read,
        }


def survey(storage: Storage, bucket: str, prefix: str, config: Config, progress: Callable[[int], None] = lambda n: None) -> Status:
    """List the sources under `prefix` and their results, read the sidecars that exist, and classify."""
    results = _by_source(_listed(storage.list(config.output_prefix + prefix), progress), config)
    sources = {info.key: info for info in _listed(storage.list(prefix), progress) if is_source(info.key, config)}
    status = Status(bucket, prefix)
    status.orphans = sorted(set(results) - set(sources))
    with_results = [info for key, info in sources.items() if key in results]
    with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="status") as pool:
        previous = dict(zip((i.key for i in with_results), pool.map(lambda i: _previous(storage, results[i.key]), with_results)))
    status.sidecars_read = sum(len(names) for key, names in results.items() if key in sources)
    for key, info in sources.items():
        _classify(status, info, previous.get(key), config)
    return status


def _classify(status: Status, info: ObjectInfo, previous: Previous | None, config: Config) -> None:
    if previous is None or (previous.sidecar is None and previous.error is None):  # nothing, or cutouts alone
        status.keys["pending"].append(info.key)
        return
    done = settled(previous, info, config.return_form)
    error = previous.error
    if done is not None and done.code == "AlreadyDone" and previous.sidecar is not None:
        status._done(info.key, previous.sidecar, f"{config.output_prefix}{info.key}/")
    elif done is not None and error is not None:  # a permanent error for this eTag
        failure = status.failures.setdefault(error.code, Failure())
        failure.keys.append(info.key)
        failure.reasons[error.reason] += 1
        status.keys["failed"].append(info.key)
    elif error is not None and error.retriable and describes(error.source, info):
        status.keys["retriable"].append(info.key)
    else:
        status.keys["stale"].append(info.key)


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
