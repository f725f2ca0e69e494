"""`headseg migrate --bucket B [--prefix P]`: once, after upgrading from 0.2, give every result its mark.

Results written before marks are read one by one (two GETs a source); afterwards `status`, `backfill` and
`replay` classify from two listings and read nothing. The function writes marks itself from the upgrade on, so
a prefix is migrated once. Safe to rerun; the prefix is only stamped once every source was migrated.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Iterable, Iterator

from headseg.cli import _ops
from headseg.cli._progress import progress_bar
from headseg.function.storage import ObjectInfo
from headseg.local.wiring import build_storage
from headseg.ops.migrate import migrate


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("migrate", help="give results written before 0.3 their marks (once)", description=__doc__)
    _ops.add_bucket_options(parser)
    parser.add_argument("--dry-run", action="store_true", help="read and count, write nothing")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = _ops.config_for(args)
    storage = build_storage(config, _ops.credentials_if(not config.bucket_dir), _ops.bucket(args))
    listed = _ops.lister(args, storage, config)
    with progress_bar(unit="object", quiet=args.quiet) as bar:
        migration = migrate(storage, args.prefix, config, lambda prefix: _counted(listed(prefix), bar.update), args.dry_run)
    for line in migration.failures.lines():
        print(line, file=sys.stderr)
    verb = "would be written" if args.dry_run else "written"
    stamped = "stamped: status now lists marks" if migration.stamped else "not stamped: run it again once the failures are fixed"
    print(f"{migration.sources} sources: {migration.marked} marks {verb}, {migration.failures.count} failed; " + ("" if args.dry_run else stamped))
    return 1 if migration.failures.count else 0


def _counted(infos: Iterable[ObjectInfo], update: Callable[[int], object]) -> Iterator[ObjectInfo]:
    for info in infos:
        update(1)
        yield info
