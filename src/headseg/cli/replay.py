"""`headseg replay`: hand over again what failed for a transient cause.

Either the error sidecars under the output prefix that record a retriable failure (`--bucket B [--prefix P]`),
or the events in a file dumped from the function's onFailure destination (`--events FILE`, one JSON document
a line: OSS events or FC destination records).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from headseg import replay
from headseg.backfill import Journal, Summary, hand_over
from headseg.cli import _ops
from headseg.ratelimit import RateLimiter


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("replay", help="retry what failed for a transient cause", description=__doc__)
    _ops.add_options(parser)
    parser.add_argument("--events", type=Path, help="a file of events from the onFailure destination")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config, storage, invoker, app = _ops.wire(args)
    items = replay.from_event_file(args.events) if args.events else replay.from_error_sidecars(storage, args.prefix, config)
    summary = Summary()
    try:
        with _ops.progress_bar(None, args.quiet) as bar:
            hand_over(items, invoker, RateLimiter(args.qps), Journal(None), summary, args.concurrency, _ops.interruptible(), args.dry_run, bar.update)
    finally:
        app.close()
    return _ops.report(summary, "would be replayed" if args.dry_run else "replayed")
