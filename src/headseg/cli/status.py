"""`headseg status --bucket B --prefix P` (or `--bucket-dir DIR`): where every upload under the prefix stands.

Two listings (the sources, and their marks: see `headseg migrate`) and a few reads (the reasons of a sample of
each failure code), then a table: done, pending (no result yet), stale (a result for another version), failed
by code with the most common reasons, retriable (what `headseg replay` would hand over), orphans (results whose
source is gone), and errors (sources whose results could not be read or classified; the exit status is then
1). `--list CLASS` prints the keys of one class instead, one a line; `--json`, every key not done and then the
summary, a JSON document a line. Memory stays flat whatever the bucket holds.
"""

from __future__ import annotations

import argparse
import json
import shlex
from functools import partial
from typing import Callable
from pathlib import Path

from headseg.ops import report
from headseg.local.wiring import build_storage
from headseg.cli import _ops
from headseg.cli._progress import progress_bar
from headseg.function.errors import printable
from headseg.ops.per_object import Failed, attempt
from headseg.function.sidecar import now_iso
from headseg.ops.standing import Entry
from headseg.ops.status import LISTABLE, MEANINGS, SHOWN, Status, survey

REASONS_SHOWN = 3  # the most common reasons per failure code in the table
ERRORS_SHOWN = 10  # the sources that could not be classified, each with its reason, in the table


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("status", help="where every upload stands", description=__doc__)
    _ops.add_bucket_options(parser)
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument(
        "--json", action="store_true",
        help='JSON lines on stdout: {"key", "class", "detail"} for every key not done, then the summary {"counts", ...}',
    )
    shown.add_argument(
        "--list", choices=LISTABLE, metavar="CLASS",
        help=f"print every key of CLASS ({', '.join(LISTABLE)}) instead of the table, one a line (control characters escaped)",
    )
    parser.add_argument(
        "--html", type=Path,
        help=f"also write a self-contained page: when it was made, each class explained, the first {SHOWN} keys of each "
        "class not done, failures, recent cutouts",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = _ops.config_for(args)
    bucket = _ops.bucket(args)
    storage = build_storage(config, _ops.credentials_if(not config.bucket_dir), bucket)
    each = _printer(args)
    with progress_bar(unit="object", quiet=args.quiet or args.json or bool(args.list)) as bar:
        status = survey(storage, args.bucket or args.bucket_dir, args.prefix, config, bar.update, each, _ops.lister(args, storage, config))
    if args.html is not None:
        thumbnails = []
        for key, cutout in status.recent():  # a cutout that cannot be shown is left out, the others are not
            uri = attempt(cutout, "making its thumbnail", partial(report.thumbnail, storage, cutout))
            if uri is not None and not isinstance(uri, Failed):
                thumbnails.append((key, uri))
        args.html.write_text(report.render(status, thumbnails, now_iso(), list_command(args)), encoding="utf-8")
    if args.json:
        print(json.dumps(status.to_json()))
    elif not args.list:
        print(table(status))
    return 1 if status.count("errors") else 0


def _printer(args: argparse.Namespace) -> Callable[[Entry], None]:
    """What is printed of each source as it is classified: its key (`--list`), a JSON line (`--json`), nothing."""
    if args.list:
        return lambda entry: print(printable(entry.key)) if entry.name == args.list else None
    if args.json:
        return lambda entry: (
            print(json.dumps({"key": entry.key, "class": entry.name, "detail": entry.detail}))  # ASCII: one line whatever the key
            if entry.name != "done" else None
        )
    return lambda entry: None


def list_command(args: argparse.Namespace) -> str:
    """The command that lists every key of CLASS in what this one surveyed (no endpoint: the page holds no URL)."""
    where = (["--bucket-dir", args.bucket_dir] if args.bucket_dir else []) + (["--bucket", args.bucket] if args.bucket else [])
    return shlex.join(["headseg", "status", *where, *(["--prefix", args.prefix] if args.prefix else []), "--list"]) + " CLASS"


def table(status: Status) -> str:
    """The report as a person reads it."""
    how = "marks listed" if status.marked else "results read the old way: `headseg migrate` makes it two listings"
    lines = [f"{status.bucket}/{status.prefix}: {status.sources} sources, {status.records_read} result records read ({how})"]
    for name in ("done", "pending", "stale", "failed", "retriable", "orphans", "errors"):
        if name == "errors" and not status.count("errors"):
            continue
        note = MEANINGS[name] + (":" if name == "errors" else "")
        lines.append(f"  {name:<10}{status.count(name):>8}" + (f"   {note}" if status.count(name) else ""))
        if name == "failed":
            for code, failure in status.failures_by_count():
                reasons = "; ".join(f"{printable(reason)} ({n})" for reason, n in failure.reasons.most_common(REASONS_SHOWN))
                of = f" (of {failure.sampled} read)" if failure.sampled < failure.count else ""
                lines.append(f"    {printable(code):<30}{failure.count:>6}   {reasons}{of}")
    errors = status.first("errors")
    for key, reason in errors[:ERRORS_SHOWN]:
        lines.append(f"    {printable(key)}: {reason}")
    if status.count("errors") > ERRORS_SHOWN:
        lines.append(f"    ... and {status.count('errors') - ERRORS_SHOWN} more (--list errors prints them all)")
    return "\n".join(lines)
