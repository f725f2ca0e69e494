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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from headseg.errors import RetriableError


@dataclass
class FunctionMeta:
    """`context.function` on FC."""

    name: str = "headseg"
    handler: str = "index.handler"
    memory: int = 512
    timeout: int = 120


@dataclass
class LocalContext:
    """The shape of FC's python3.10 context (the fields the handler reads). Without `credentials` (an object
    with access_key_id, access_key_secret, security_token) they come from the environment, as on python3.12."""

    request_id: str = field(default_factory=lambda: f"local-{uuid.uuid4()}")
    function: FunctionMeta = field(default_factory=FunctionMeta)
    credentials: Any = None
    region: str = "cn-shanghai"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("invoke", help="run the FC handler on an event file", description=__doc__)
    parser.add_argument("event", type=Path, help="an OSS trigger event, e.g. events/put.json")
    parser.add_argument("--bucket-dir", required=True, type=Path, help="the directory standing in for the bucket")
    parser.add_argument("--engine", choices=["local", "cloud"], default=os.environ.get("ENGINE", "local"))
    parser.add_argument("--timeout", type=int, default=120, help="the function timeout to simulate (seconds)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from headseg import handler

    settings = {
        "BUCKET_DIR": str(args.bucket_dir),
        "ENGINE": args.engine,
        "INPUT_PREFIX": os.environ.get("INPUT_PREFIX", "incoming/"),
        "OUTPUT_PREFIX": os.environ.get("OUTPUT_PREFIX", "heads/"),
    }
    context = LocalContext(function=FunctionMeta(timeout=args.timeout))
    with _environment(settings):
        handler.reset()
        try:
            result = handler.handler(args.event.read_bytes(), context)
        except RetriableError as exc:
            print(f"headseg invoke: {exc.message}", file=sys.stderr)
            return 1
        finally:
            handler.reset()
    print(json.dumps(json.loads(result), ensure_ascii=False, indent=2))
    return 0


@contextmanager
def _environment(settings: dict[str, str]) -> Iterator[None]:
    """The handler reads its configuration from the environment: set it for the call, then restore it."""
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
