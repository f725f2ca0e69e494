"""`headseg package`: the FC code directory's dependencies for python3.10 x86_64, from wheels, no Docker."""

from __future__ import annotations

import argparse
from pathlib import Path

from headseg import package


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("package", help="build the deploy package's dependencies", description=__doc__)
    parser.add_argument("--target", type=Path, default=Path("src/python"), help="where to install (default src/python)")
    parser.add_argument("--python-version", default=package.PYTHON_VERSION, help="the runtime's Python (FC: 3.10)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(package.install(args.target, args.python_version))
    return 0
