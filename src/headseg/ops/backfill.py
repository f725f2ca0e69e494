"""Backfill: find the objects under a prefix that have no result for their eTag, and hand each to an invoker.

What needs work comes from `standing.classify` (two listings, merged as they stream), and hand-overs start
while the listings go on. They go through a rate limiter (SegmentHead's quota) on a bounded pool, and every one
is appended to a journal, so an interrupted run resumes where it stopped. Handing over each object is one
`per_object.attempt`: an object that fails is counted in the summary with its reason, and the others go on.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, Tuple

from headseg.function.errors import HeadsegError, printable
from headseg.function.events import normalize_etag, object_created_event
from headseg.ops.invoker import Invoker
from headseg.ops.per_object import Failed, Failures, attempt
from headseg.ops.ratelimit import RateLimiter
from headseg.function.storage import ObjectInfo
from headseg.ops.standing import Entry

log = logging.getLogger(__name__)


@dataclass
class Summary:
    listed: int = 0
    done_already: int = 0  # settled for the object's eTag: a sidecar, a permanent error, or a key no output can hold
    not_input: int = 0  # headseg's own output, folders
    in_journal: int = 0  # handed over by an earlier run
    repeated: int = 0  # the same object version met again in this run's input (an event file may hold it twice)
    handed_over: int = 0
    failures: Failures = field(default_factory=Failures)
    interrupted: bool = False
    dry_run: bool = False
    seconds: float = 0.0

    def line(self, verb: str) -> str:
        rate = "" if self.dry_run or not self.seconds else f" ({self.handed_over / self.seconds:.2f}/s)"
        text = (
            f"{self.listed} listed: {self.done_already} done already, {self.in_journal} handed over by an earlier run, "
            f"{self.not_input} not inputs; {self.handed_over} {verb}{rate}, {self.failures.count} failed"
        ) + (f", {self.repeated} repeated in the input (handed over once)" if self.repeated else "")
        return text + (" — interrupted: run again to resume" if self.interrupted else "")


class Journal:
    """Append-only record of what was handed over (key, eTag), so a rerun does not hand it over again.

    One JSON object a line, UTF-8, each written after its hand-over. Reading it back, any line that is not a
    whole entry (the last one of a run killed while writing it, a crash's zeros) is skipped and said: its
    object is handed over again. A torn last line is cut off before the next entry is written, so that entry
    is read back whole and the next run does not warn again."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._mend: tuple[int, str] | None = None  # (size to cut the file to, text to write) before the next entry
        if path is not None and path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except OSError as exc:  # a folder, no permission, a failing disk: resuming blind would redo everything
            raise HeadsegError(f"cannot read the journal {path}: {exc.strerror or exc}") from exc
        whole = data.rfind(b"\n") + 1  # the bytes in whole lines
        if whole < len(data):  # the last line has no end: an entry gets one, anything else is cut off
            self._mend = (len(data), "\n") if _entry(data[whole:]) else (whole, "")
        for number, line in enumerate(data.split(b"\n"), start=1):
            entry = _entry(line) if line else None
            if entry is not None:
                self.seen.add(entry)
            elif line:
                log.warning(
                    "%s: line %d is not a whole journal entry (a run stopped while writing it?): skipped, so its "
                    "object is handed over again", printable(str(path)), number,
                    extra={"fields": {"journal": str(path), "line": number}},
                )

    def __contains__(self, item: tuple[str, str]) -> bool:
        return item in self.seen

    def add(self, key: str, etag: str, handle: str) -> None:
        """Record a hand-over (in the file: `seen` holds what earlier runs handed over; this run's own repeats
        are `hand_over`'s to catch)."""
        with self._lock:
            if self.path is not None:
                line = json.dumps({"key": key, "etag": etag, "handle": handle}, ensure_ascii=False) + "\n"
                if self._mend is not None:
                    size, ending = self._mend
                    os.truncate(self.path, size)
                    line, self._mend = ending + line, None
                with self.path.open("a", encoding="utf-8") as out:
                    out.write(line)


def _entry(line: bytes) -> tuple[str, str] | None:
    """A journal line's (key, eTag), or None when the line is not one the journal wrote (UTF-8 JSON)."""
    try:
        entry = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    key, etag = (entry.get("key"), entry.get("etag")) if isinstance(entry, dict) else (None, None)
    return (key, etag) if isinstance(key, str) and isinstance(etag, str) else None


def pending(entries: Iterable[Entry], summary: Summary) -> Iterator[ObjectInfo]:
    """The sources `standing.classify` found in need of work (pending, stale, or retriable), as they come; the
    others are counted in `summary` (a source that could not be classified in `summary.failures`)."""
    for entry in entries:
        if entry.name == "orphans":
            continue
        summary.listed += 1
        if entry.name == "ignored":
            summary.not_input += 1
        elif entry.name == "errors":
            summary.failures.add(entry.key, entry.reason)
        elif entry.name in ("done", "failed"):
            summary.done_already += 1
        elif entry.info is not None:
            yield entry.info


Item = Tuple[str, str, Dict[str, Any]]  # (key, eTag, the event that hands it over)


def hand_over(
    items: Iterable[Item],
    invoker: Invoker,
    limiter: RateLimiter,
    journal: Journal,
    summary: Summary,
    concurrency: int = 4,
    stop: threading.Event | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] = lambda n: None,
    unique: bool = False,
) -> Summary:
    """Hand each item's event over, rate-limited on a bounded pool, until done or `stop` is set. Each object
    version is handed over at most once per run, decided when it is met, not when an earlier hand-over ends;
    with `unique` (items from a listing, where no key comes twice) no set of those met is kept: memory stays flat."""
    stop = stop or threading.Event()
    lock = threading.Lock()
    met: set[tuple[str, str]] = set()
    remember = (lambda item: None) if unique else met.add
    started = time.monotonic()

    def one(key: str, etag: str, event: dict[str, Any]) -> None:
        limiter.acquire()
        if stop.is_set():
            return
        handed = attempt(key, "handing it over", lambda: journal.add(key, etag, invoker.invoke(event)))
        with lock:
            if isinstance(handed, Failed):
                summary.failures.add(handed.key, handed.reason)
                return
            summary.handed_over += 1
        progress(1)

    in_flight: set[Future[None]] = set()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="handover") as pool:
        try:
            for key, etag, event in items:
                if stop.is_set():
                    break
                if (key, etag) in met:
                    summary.repeated += 1
                elif (key, etag) in journal:
                    summary.in_journal += 1
                elif dry_run:
                    remember((key, etag))
                    summary.handed_over += 1
                else:
                    if len(in_flight) >= 2 * concurrency:  # bounded: the listing never runs far ahead
                        _, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    remember((key, etag))
                    in_flight.add(pool.submit(contextvars.copy_context().run, one, key, etag, event))  # with the command's secrets
                    continue
                progress(1)
        except KeyboardInterrupt:
            stop.set()
    summary.interrupted, summary.dry_run = stop.is_set(), dry_run
    summary.seconds = time.monotonic() - started
    return summary


def items_from(infos: Iterable[ObjectInfo], bucket: str, region: str = "cn-shanghai") -> Iterator[Item]:
    """Each object with the synthetic OSS event (real shape) that hands it over."""
    for info in infos:
        etag = normalize_etag(info.etag)
        yield info.key, etag, object_created_event(bucket, info.key, etag, info.size, region)
