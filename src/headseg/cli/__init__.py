"""The `headseg` command: the function's pipeline on a laptop, and the tools around it.

Each subcommand lives in its own module with `register(subparsers)`; this module only wires them together.
Options that mirror a function setting default to the same environment variable.
"""

from __future__ import annotations

import argparse
import contextvars
import sys

from headseg.cli._quiet import native_logs_hidden
from headseg.function.errors import HeadsegError


def main(argv: list[str] | None = None) -> int:
    from headseg.cli import backfill, doctor, invoke, package, replay, segment, serve, sheet, status

    parser = argparse.ArgumentParser(prog="headseg", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="also show native libraries' log lines (LiteRT)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (segment, invoke, sheet, serve, backfill, replay, doctor, status, package):
        command.register(subparsers)
    args = parser.parse_args(argv)
    try:
        with native_logs_hidden(not args.verbose):  # in a context of its own: the secrets it hides end with it
            return int(contextvars.copy_context().run(args.run, args))
    except HeadsegError as exc:
        print(f"headseg {args.command}: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"headseg {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
