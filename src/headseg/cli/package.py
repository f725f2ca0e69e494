"""`headseg package`: the FC code directory's dependencies for the runtime, from wheels (no Docker), compiled."""

from __future__ import annotations

import argparse
import functools

from headseg.ops import package


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("package", help="build the deploy package's dependencies", description=__doc__)
    package.add_arguments(parser, "src/python", "src")
    parser.set_defaults(run=functools.partial(package.run, parser))
