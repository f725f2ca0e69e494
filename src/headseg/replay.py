"""Replay: hand over again what is recorded as failed for a retriable cause, or events FC gave up on."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterator

from headseg.backfill import Item
from headseg.config import Config
from headseg.errors import MalformedEvent, ObjectNotFound
from headseg.events import ObjectCreated, object_created_event, parse_event
from headseg.layout import ERROR_NAME
from headseg.sidecar import ErrorRecord
from headseg.storage import Storage

log = logging.getLogger(__name__)


def from_error_sidecars(storage: Storage, prefix: str, config: Config) -> Iterator[Item]:
    """One item per error sidecar under OUTPUT_PREFIX + `prefix` that records a retriable failure."""
    for info in storage.list(config.output_prefix + prefix):
        if not info.key.endswith("/" + ERROR_NAME):
            continue
        try:
            record = ErrorRecord.from_json(storage.get(info.key)[1])
        except ObjectNotFound:  # cleared by a success since the listing
            continue
        if record is None or not record.retriable:
            continue
        source = record.source
        yield source.key, source.etag, object_created_event(source.bucket, source.key, source.etag, source.size)


def from_event_file(path: Path) -> Iterator[Item]:
    """Items from a file of events, one JSON document a line: OSS trigger events, or the records FC's
    `onFailure` destination keeps (the original event in `requestPayload`)."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            event = _event_of(json.loads(line))
            records = [r for r in parse_event(event) if isinstance(r, ObjectCreated)]
        except (ValueError, MalformedEvent) as exc:
            log.warning("skipping a line that holds no OSS event", extra={"fields": {"line": number, "reason": str(exc)}})
            continue
        if records:
            yield records[0].key, records[0].etag or "", event


def _event_of(document: Any) -> Any:
    """The OSS event in a line: the document itself, or an FC destination record's `requestPayload`."""
    if isinstance(document, dict) and "requestPayload" in document:
        payload = document["requestPayload"]
        return json.loads(payload) if isinstance(payload, str) else payload
    return document
