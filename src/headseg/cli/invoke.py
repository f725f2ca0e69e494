"""`headseg invoke EVENT.json --bucket-dir DIR`: the real FC handler on an event file, DIR as the bucket.

For debugging `events/` locally: the handler runs exactly as on FC (same parsing, guards, pipeline, log
lines), with a directory standing in for the bucket and the engine of your choice.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from headseg.errors import RetriableError


@dataclass
class _Function:
    name: str = "headseg"
    handler: str = "index.handler"
    memory: int = 512
    timeout: int = 120


@dataclass
class LocalContext:
    """What the handler reads from FC's context; credentials come from the environment when needed."""

    request_id: str = field(default_factory=lambda: f"local-{uuid.uuid4()}")
    function: _Function = field(default_factory=_Function)
    credentials: None = None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("invoke", help="run the FC handler on an event file", description=__doc__)
    parser.add_argument("event", type=Path, help="an OSS trigger event, e.g. events/put.json")
    parser.add_argument("--bucket-dir", required=True, type=Path, help="the directory standing in for the bucket")
    parser.add_argument("--engine", choices=["local", "cloud"], default=os.environ.get("ENGINE", "local"))
    parser.add_argument("--timeout", type=int, default=120, help="the function timeout to simulate (seconds)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    os.environ["BUCKET_DIR"] = str(args.bucket_dir)
    os.environ["ENGINE"] = args.engine
    os.environ.setdefault("INPUT_PREFIX", "incoming/")
    os.environ.setdefault("OUTPUT_PREFIX", "heads/")
    from headseg import handler

    handler.reset()
    context = LocalContext(function=_Function(timeout=args.timeout))
    try:
        result = handler.handler(args.event.read_bytes(), context)
    except RetriableError as exc:
        print(f"headseg invoke: {exc.message}", file=sys.stderr)
        return 1
    finally:
        handler.reset()
    print(json.dumps(json.loads(result), ensure_ascii=False, indent=2))
    return 0
