"""`headseg backfill --bucket B --prefix P`: process what was uploaded before the trigger existed.

Lists the objects (paginated), skips those whose sidecar matches their eTag, and queues an asynchronous
invocation of the deployed function for each of the rest (`--local`: processes them here instead), at
`--qps` (SegmentHead's quota by default). Safe to interrupt and rerun: a journal remembers what was queued.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from headseg.ops.backfill import Item, Journal, Summary, items_from, pending
from headseg.cli import _ops
from headseg.function.config import Config
from headseg.function.storage import Storage


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("backfill", help="process objects uploaded before the trigger", description=__doc__)
    _ops.add_options(parser)
    parser.add_argument("--journal", type=Path, help="default: .headseg-backfill-<bucket>.jsonl")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    journal = Journal(None if args.dry_run else (args.journal or Path(f".headseg-backfill-{_ops.bucket(args)}.jsonl")))

    def items(config: Config, storage: Storage, summary: Summary) -> list[Item]:
        todo = list(pending(storage, args.prefix, config, summary))  # listed first, so the bar has an ETA
        return list(items_from(todo, _ops.bucket(args), config.region))

    return _ops.execute(args, items, journal, "queued")
