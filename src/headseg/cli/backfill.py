"""`headseg backfill --bucket B --prefix P`: process what was uploaded before the trigger existed.

Lists the objects (paginated), skips those whose sidecar matches their eTag, and queues an asynchronous
invocation of the deployed function for each of the rest (`--local`: processes them here instead), at
`--qps` (SegmentHead's quota by default). Safe to interrupt and rerun: a journal remembers what was queued.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from headseg.backfill import Journal, Summary, hand_over, items_from, pending
from headseg.cli import _ops
from headseg.ratelimit import RateLimiter


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("backfill", help="process objects uploaded before the trigger", description=__doc__)
    _ops.add_options(parser)
    parser.add_argument("--journal", type=Path, help="default: .headseg-backfill-<bucket>.jsonl")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config, storage, invoker, app = _ops.wire(args)
    journal = Journal(None if args.dry_run else (args.journal or Path(f".headseg-backfill-{args.bucket}.jsonl")))
    summary = Summary()
    stop = _ops.interruptible()
    try:
        todo = list(pending(storage, args.prefix, config, summary))  # listed first, so the bar has an ETA
        with _ops.progress_bar(len(todo), args.quiet) as bar:
            items = items_from(todo, args.bucket, config.region)
            hand_over(
                items, invoker, RateLimiter(args.qps), journal, summary, args.concurrency, stop, args.dry_run, bar.update
            )
    finally:
        app.close()
    return _ops.report(summary, "would be handed over" if args.dry_run else ("processed" if args.local else "queued"))
