"""`headseg backfill --bucket B --prefix P`: process what was uploaded before the trigger existed.

Lists the objects and their marks (`--workers` key ranges at once), skips those settled for their version
(done, or failed for good), and queues an asynchronous invocation of the deployed function for each of the rest
(`--local`: processes them here instead) while the listing goes on, at `--qps` (SegmentHead's quota by
default). Safe to interrupt and rerun: a journal remembers what was queued.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterator

from headseg.ops.backfill import Item, Journal, Summary, items_from, pending
from headseg.cli import _ops
from headseg.function.config import Config
from headseg.function.storage import Storage
from headseg.ops.standing import classify


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("backfill", help="process objects uploaded before the trigger", description=__doc__)
    _ops.add_options(parser)
    parser.add_argument("--journal", type=Path, help="default: .headseg-backfill-<bucket>.jsonl")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    journal = Journal(None if args.dry_run else (args.journal or Path(f".headseg-backfill-{_ops.bucket(args)}.jsonl")))

    def items(config: Config, storage: Storage, summary: Summary) -> Iterator[Item]:
        entries = classify(storage, args.prefix, config, _ops.lister(args, storage, config))
        return items_from(pending(entries, summary), _ops.bucket(args), config.region)

    return _ops.execute(args, items, journal, "queued", unique=True)  # a listing holds each key once
