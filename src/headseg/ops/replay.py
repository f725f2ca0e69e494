"""Replay: hand over again what is recorded as failed for a retriable cause, or events FC gave up on.

Reading each error record and each line of an event file is its own `per_object.attempt`: one that cannot be
read is counted in the summary with its reason (a line that holds no OSS event is skipped with a warning),
and the rest are still handed over.
"""

from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path
from typing import Any, Iterator

from headseg.ops.backfill import Item, Summary
from headseg.function.config import Config
from headseg.function.errors import MalformedEvent, PermanentError
from headseg.function.events import ObjectCreated, object_created_event, parse_event
from headseg.function.layout import ERROR_NAME, SIDECAR_NAME
from headseg.ops.per_object import Failed, attempt
from headseg.function.results import describes, read_listed, source_info
from headseg.function.sidecar import ErrorRecord, Sidecar
from headseg.function.storage import Storage

log = logging.getLogger(__name__)


def from_error_sidecars(storage: Storage, prefix: str, config: Config, summary: Summary) -> Iterator[Item]:
    """One item per error sidecar under OUTPUT_PREFIX + `prefix` that records a retriable failure."""
    for info in storage.list(config.output_prefix + prefix):
        if not info.key.endswith("/" + ERROR_NAME):
            continue
        item = attempt(info.key, "reading the error record", partial(_replayed, storage, info.key))
        if isinstance(item, Failed):
            summary.failed.append((item.key, item.reason))
        elif item is not None:
            yield item


def _replayed(storage: Storage, key: str) -> Item | None:
    """The item that hands over again the source of the error record at `key`, if it records a retriable failure
    that no result of the same version has settled since (the next delivery's tidying removes such a record)."""
    data = read_listed(storage, key)
    if data is None:  # cleared by a success since the listing
        return None
    record = ErrorRecord.from_json(data)
    if record is None:
        raise PermanentError("the error record cannot be read back (too large, not JSON, or not of this schema)")
    if not record.retriable:
        return None
    source = record.source
    sidecar = read_listed(storage, key[: -len(ERROR_NAME)] + SIDECAR_NAME)
    done = Sidecar.from_json(sidecar) if sidecar is not None else None
    if done is not None and describes(done.source, source_info(source)):
        return None
    return source.key, source.etag, object_created_event(source.bucket, source.key, source.etag, source.size)


def from_event_file(path: Path, summary: Summary) -> Iterator[Item]:
    """Items from a file of events, one JSON document a line: OSS trigger events, or the records FC's
    `onFailure` destination keeps (the original event in `requestPayload`)."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            item = attempt(f"{path}:{number}", "reading the line", partial(_event_item, line, number))
            if isinstance(item, Failed):
                summary.failed.append((item.key, item.reason))
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
