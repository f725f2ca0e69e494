"""`headseg status --bucket B --prefix P` (or `--bucket-dir DIR`): where every upload under the prefix stands.

Two listings (the sources and their results) and one read of each sidecar that exists, then a table: done,
pending (no result yet), stale (a result for another version), failed by code with the most common
reasons, retriable (what `headseg replay` would hand over), orphans (results whose source is gone), and errors
(sources whose results could not be read or classified; the exit status is then 1). `--list CLASS` prints
the keys of one class instead, one a line.
"""

from __future__ import annotations

import argparse
import json
import shlex
from functools import partial
from pathlib import Path

from headseg.ops import report
from headseg.local.wiring import build_storage
from headseg.cli import _ops
from headseg.cli._progress import progress_bar
from headseg.function.errors import printable
from headseg.ops.per_object import Failed, attempt
from headseg.function.sidecar import now_iso
from headseg.ops.status import LISTABLE, MEANINGS, SHOWN, Status, survey

REASONS_SHOWN = 3  # the most common reasons per failure code in the table
ERRORS_SHOWN = 10  # the sources that could not be classified, each with its reason, in the table


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("status", help="where every upload stands", description=__doc__)
    _ops.add_bucket_options(parser)
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="the report as JSON on stdout (every key not done)")
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
    with progress_bar(unit="object", quiet=args.quiet or args.json) as bar:
        status = survey(storage, args.bucket or args.bucket_dir, args.prefix, config, bar.update)  # a folder: by its path
    if args.html is not None:
        thumbnails = []
        for key, cutout in status.recent():  # a cutout that cannot be shown is left out, the others are not
            uri = attempt(cutout, "making its thumbnail", partial(report.thumbnail, storage, cutout))
            if uri is not None and not isinstance(uri, Failed):
                thumbnails.append((key, uri))
        args.html.write_text(report.render(status, thumbnails, now_iso(), list_command(args)), encoding="utf-8")
    if args.list:
        for key in status.every(args.list):
            print(printable(key))
    else:
        print(json.dumps(status.to_json(), ensure_ascii=False, indent=2) if args.json else table(status))
    return 1 if status.errors else 0


def list_command(args: argparse.Namespace) -> str:
    """The command that lists every key of CLASS in what this one surveyed (no endpoint: the page holds no URL)."""
    where = (["--bucket-dir", args.bucket_dir] if args.bucket_dir else []) + (["--bucket", args.bucket] if args.bucket else [])
    return shlex.join(["headseg", "status", *where, *(["--prefix", args.prefix] if args.prefix else []), "--list"]) + " CLASS"


def table(status: Status) -> str:
    """The report as a person reads it."""
    sources = sum(status.count(name) for name in status.keys)
    lines = [f"{status.bucket}/{status.prefix}: {sources} sources, {status.sidecars_read} result records read"]
    for name in ("done", "pending", "stale", "failed", "retriable", "orphans", "errors"):
        if name == "errors" and not status.errors:
            continue
        note = MEANINGS[name] + (":" if name == "errors" else "")
        lines.append(f"  {name:<10}{status.count(name):>8}" + (f"   {note}" if status.count(name) else ""))
        if name == "failed":
            for code, failure in status.failures_by_count():
                reasons = "; ".join(f"{printable(reason)} ({n})" for reason, n in failure.reasons.most_common(REASONS_SHOWN))
                lines.append(f"    {printable(code):<30}{len(failure.keys):>6}   {reasons}")
    for key, reason in sorted(status.errors.items())[:ERRORS_SHOWN]:
        lines.append(f"    {printable(key)}: {reason}")
    if len(status.errors) > ERRORS_SHOWN:
        lines.append(f"    ... and {len(status.errors) - ERRORS_SHOWN} more (--json lists them all)")
    return "\n".join(lines)
