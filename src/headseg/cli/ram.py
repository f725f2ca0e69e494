"""`headseg ram`: the `aliyun ram` commands that create the two roles s.yaml names, with the bucket and prefixes of
this deploy filled in (s.yaml rendered as Serverless Devs renders it: the environment over the `.env` beside it).
Read them, then run them: `headseg ram | sh`. `--policy` prints the function's policy alone, for the RAM console."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from headseg.ops import ram, syaml


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ram", help="print the commands that create the function's and the trigger's RAM roles", description=__doc__)
    parser.add_argument("--s-yaml", type=Path, default=Path("s.yaml"), help="the s.yaml to read (default: ./s.yaml)")
    parser.add_argument("--policy", action="store_true", help="print only the function's policy document")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.s_yaml.is_file():
        raise SystemExit(f"headseg ram: no s.yaml at {args.s_yaml}: give --s-yaml")
    environ = syaml.environment(args.s_yaml, os.environ)
    if args.policy:
        variables = syaml.render(args.s_yaml, environ).get("vars") or {}
        print(json.dumps(ram.function_policy(variables), indent=2))
    else:
        print("\n".join(ram.commands(args.s_yaml, environ)))
    return 0
