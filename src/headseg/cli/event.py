"""`headseg event --key KEY [--bucket B] [--etag E]`: an OSS upload event of the real shape for one object of your
bucket, to hand the deployed function (`s invoke --event-file`) or the handler here (`headseg invoke`).

The bucket defaults to the one s.yaml deploys for (HEADSEG_BUCKET, from the environment or the `.env` beside
./s.yaml). The event is checked with the function's own parser before it is written: one the function would
reject (a key over OSS's limit, say) is refused here instead.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from headseg.function.config import env_default
from headseg.function.errors import ConfigError
from headseg.function.events import ObjectCreated, object_created_event, parse_event
from headseg.ops import syaml


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("event", help="print an OSS upload event for one object (for s invoke --event-file)", description=__doc__)
    parser.add_argument("--key", required=True, help="the object's key, e.g. incoming/group.jpg")
    parser.add_argument("--bucket", help="the bucket (default: s.yaml's, HEADSEG_BUCKET)")
    parser.add_argument("--etag", help="the object's ETag (without it, the function takes the object as it is now)")
    parser.add_argument("--size", type=int, help="the object's size in bytes (default: left out, as the function needs none)")
    parser.add_argument("--account-id", default=env_default("ALIBABA_CLOUD_ACCOUNT_ID", ""), help="the bucket owner's account id")
    parser.add_argument("-o", "--output", type=Path, help="write the event to this file (default: print it)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    bucket = args.bucket or syaml.environment(Path("s.yaml"), os.environ).get(syaml.BUCKET_VARIABLE, "")
    if not bucket:
        raise ConfigError(f"give --bucket, or set {syaml.BUCKET_VARIABLE} (the bucket s.yaml deploys for)")
    event = object_created_event(bucket, args.key, args.etag, args.size, account_id=args.account_id)
    text = json.dumps(event, ensure_ascii=False, indent=2) + "\n"
    [record] = parse_event(text.encode("utf-8"))
    if not isinstance(record, ObjectCreated):
        raise ConfigError(f"the function would not process this event: {getattr(record, 'reason', record)}")
    if args.output is None:
        print(text, end="")
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0
