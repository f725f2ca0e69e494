"""`headseg doctor --bucket B [--function F]`: whether the deployment will work, one line per check.

Reads the function, its triggers, every function's triggers on the bucket and the async config through the
FC 3.0 API, and the bucket's region and lifecycle through oss2; writes and removes one probe object under
the output prefix. Exit status 0 only when no check fails. `--fix` adds the lifecycle rule that expires the
scratch prefix, and changes nothing else.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from headseg.local.wiring import build_storage
from headseg.cli import _ops
from headseg.function.config import env_default
from headseg.ops.doctor import Check, Expected, Level, diagnose
from headseg.ops.fcapi import Fc3Reader
from headseg.ops import syaml


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("doctor", help="check that a deployment will work", description=__doc__)
    _ops.add_bucket_options(parser, listing=False)
    parser.add_argument("--function", default=env_default("FC_FUNCTION", "headseg"))
    parser.add_argument("--fc-endpoint", default=env_default("FC_ENDPOINT", ""), help="default https://<ACCOUNT_ID>.cn-shanghai.fc.aliyuncs.com")
    parser.add_argument("--account-id", default=env_default("ALIBABA_CLOUD_ACCOUNT_ID", ""))
    parser.add_argument("--s-yaml", type=Path, default=Path("s.yaml"), help="what the function should look like (default ./s.yaml; skipped if absent)")
    parser.add_argument("--fix", action="store_true", help="add the lifecycle rule that expires the scratch prefix")
    parser.add_argument(
        "--call-segmenthead", action="store_true",
        help="also call SegmentHead once (billed) on a bundled portrait, handed over as the function would",
    )
    parser.add_argument("--json", action="store_true", help="the checks as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = _ops.config_for(args)
    if config.bucket_dir:
        raise SystemExit("headseg doctor: checks a deployment on OSS and FC; --bucket-dir has neither")
    bucket = _ops.bucket(args)
    endpoint = args.fc_endpoint or (args.account_id and f"https://{args.account_id}.{config.region}.fc.aliyuncs.com")
    if not endpoint:
        raise SystemExit("headseg doctor: give --fc-endpoint or --account-id (or ALIBABA_CLOUD_ACCOUNT_ID)")
    credentials = _ops.resolve_credentials()
    storage = build_storage(config, credentials, bucket)
    checks = diagnose(Fc3Reader(endpoint, credentials, config.region), storage, bucket, args.function, expected(args), args.fix,
                    segmenthead=credentials if args.call_segmenthead else None)
    if args.json:
        print(json.dumps([{**asdict(c), "level": c.level.value} for c in checks], ensure_ascii=False, indent=2))
    else:
        print("\n".join(line(c) for c in checks))
    return 1 if any(c.level is Level.FAIL for c in checks) else 0


def expected(args: argparse.Namespace) -> Expected:
    """What s.yaml sets for the function, when there is an s.yaml to read: rendered as Serverless Devs renders it
    (the environment over the `.env` beside it), with --bucket for the bucket when neither sets one."""
    if not args.s_yaml.is_file():
        return Expected()
    import os

    environ = {syaml.BUCKET_VARIABLE: args.bucket, **syaml.environment(args.s_yaml, os.environ)}
    document = syaml.render(args.s_yaml, environ)
    props = syaml.function_props(args.s_yaml, environ)
    initializer = ((props.get("instanceLifecycleConfig") or {}).get("initializer") or {}).get("handler", "")
    return Expected(
        runtime=props.get("runtime"), handler=props.get("handler", "index.handler"), initializer=initializer,
        timeout=props.get("timeout"), memory_mb=props.get("memorySize"), bucket=(document.get("vars") or {}).get("bucket"),
    )


def line(check: Check) -> str:
    text = f"{check.level.value.upper():<5} {check.name:<10} {check.message}"
    return text + (f"\n      fix: {check.fix}" if check.fix and check.level is not Level.PASS else "")
