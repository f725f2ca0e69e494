"""Replay: hand over again what is recorded as failed for a retriable cause, or events FC gave up on.

The sources come from `standing.classify`, the events from a file; reading each line of an event file is its
own `per_object.attempt`: one that cannot be read is counted in the summary with its reason (a line that holds
no OSS event is skipped with a warning), and the rest are still handed over.
"""

from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path
from typing import Any, Iterable, Iterator

from headseg.ops.backfill import Item, Summary, items_from
from headseg.function.errors import MalformedEvent
from headseg.function.events import ObjectCreated, parse_event
from headseg.ops.per_object import Failed, attempt
from headseg.ops.standing import Entry

log = logging.getLogger(__name__)


def retriable(entries: Iterable[Entry], bucket: str, summary: Summary, region: str = "cn-shanghai") -> Iterator[Item]:
    """One item per source `standing.classify` found retriable: its current version failed for a transient
    cause, and nothing settled it since. A source that could not be classified is counted in `summary.failures`."""
    for entry in entries:
        if entry.name == "errors":
            summary.failures.add(entry.key, entry.reason)
        elif entry.name == "retriable" and entry.info is not None:
            summary.listed += 1
            yield from items_from([entry.info], bucket, region)


def from_event_file(path: Path, summary: Summary) -> Iterator[Item]:
    """Items from a file of events, one JSON document a line: OSS trigger events, or the records FC's
    `onFailure` destination keeps (the original event in `requestPayload`)."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            item = attempt(f"{path}:{number}", "reading the line", partial(_event_item, line, number))
            if isinstance(item, Failed):
                summary.failures.add(item.key, item.reason)
            elif item is not None:
                yield item


def _event_item(line: bytes, number: int) -> Item | None:
    """The item of a line's first object creation; None (with a warning) when the line holds no OSS event."""
    try:
        event = _event_of(json.loads(line))
        records = [r for r in parse_event(event) if isinstance(r, ObjectCreated)]
    except (ValueError, RecursionError, MalformedEvent) as exc:
        log.warning("skipping a line that holds no OSS event", extra={"fields": {"line": number, "reason": str(exc)[:200]}})
        return None
    return (records[0].key, records[0].etag or "", event) if records else None


def _event_of(document: Any) -> Any:
    """The OSS event in a line: the document itself, or an FC destination record's `requestPayload`."""
    if isinstance(document, dict) and "requestPayload" in document:
        payload = document["requestPayload"]
        return json.loads(payload) if isinstance(payload, str) else payload
    return document
