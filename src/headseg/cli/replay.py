"""`headseg replay`: hand over again what failed for a transient cause.

Either the sources under the prefix whose current version failed for a transient cause (`--bucket B
[--prefix P]`: `headseg status`'s class "retriable"),
or the events in a file dumped from the function's onFailure destination (`--events FILE`, one JSON document
a line: OSS events or FC destination records).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from typing import Iterable

from headseg.ops import replay
from headseg.ops.backfill import Item, Journal, Summary
from headseg.cli import _ops
from headseg.function.config import Config
from headseg.function.storage import Storage
from headseg.ops.standing import classify


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("replay", help="retry what failed for a transient cause", description=__doc__)
    _ops.add_options(parser)
    parser.add_argument("--events", type=Path, help="a file of events from the onFailure destination")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    def items(config: Config, storage: Storage, summary: Summary) -> Iterable[Item]:
        if args.events:
            return replay.from_event_file(args.events, summary)
        entries = classify(storage, args.prefix, config, _ops.lister(args, storage, config))
        return replay.retriable(entries, _ops.bucket(args), summary, config.region)

    return _ops.execute(args, items, Journal(None), "replayed", unique=not args.events)  # a file may repeat an event
