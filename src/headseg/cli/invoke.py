"""`headseg invoke EVENT.json --bucket-dir DIR`: the real FC handler on an event file, DIR as the bucket.

For debugging `events/` locally: the handler runs exactly as on FC (same parsing, guards, pipeline, log
lines), with a directory standing in for the bucket and the engine of your choice.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headseg.function import logs
from headseg.local.wiring import local_app
from headseg.function.config import LOCAL_PREFIXES, Config, Engine, env_default
from headseg.function.errors import RetriableError
from headseg.function.handler import handle


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
    parser.add_argument("--engine", choices=[e.value for e in Engine], default=env_default("ENGINE", "local"))
    parser.add_argument("--timeout", type=int, default=120, help="the function timeout to simulate (seconds)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """The handler's `handle` on an App built from the options over the environment's settings."""
    config = Config.from_env(defaults=LOCAL_PREFIXES, overrides={"BUCKET_DIR": str(args.bucket_dir), "ENGINE": args.engine})
    logs.configure(config.log_level.upper())
    app = local_app(config)
    try:
        result = handle(app, args.event.read_bytes(), LocalContext(function=FunctionMeta(timeout=args.timeout)))
    except RetriableError as exc:
        print(f"headseg invoke: {exc.message}", file=sys.stderr)
        return 1
    finally:
        app.close()
    print(json.dumps(json.loads(result), ensure_ascii=False, indent=2))
    return 0
