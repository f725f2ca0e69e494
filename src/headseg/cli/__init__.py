"""The `headseg` command: the function's pipeline on a laptop, and the tools around it.

Each subcommand lives in its own module with `register(subparsers)`; this module only wires them together.
Options that mirror a function setting default to the same environment variable.
"""

from __future__ import annotations

import argparse
import contextvars
import copy
import sys
from typing import Any

from headseg.cli._quiet import native_logs_hidden
from headseg.function.errors import HeadsegError


def build_parser() -> argparse.ArgumentParser:
    """The command line: every subcommand, each option's default in its help."""
    from headseg.cli import backfill, cut, doctor, event, invoke, migrate, package, ram, replay, segment, serve, sheet, status

    parser = argparse.ArgumentParser(prog="headseg", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="also show native libraries' log lines (LiteRT)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=CommandParser)
    for command in (cut, segment, invoke, event, sheet, serve, backfill, replay, doctor, status, migrate, package, ram):
        command.register(subparsers)
    return parser


class DefaultsShown(argparse.HelpFormatter):
    """Adds "(default: ...)" to an option's help when a default is set and the help does not word it already
    (argparse's ArgumentDefaultsHelpFormatter skips options without help, and shows None and False)."""

    def add_argument(self, action: argparse.Action) -> None:
        default = action.default
        shown = action.option_strings and not (default is None or default is False or default in ("", argparse.SUPPRESS))
        if shown and "default" not in (action.help or ""):
            action = copy.copy(action)
            action.help = f"{action.help or ''} (default: %(default)s)".lstrip()
        super().add_argument(action)


class CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: its help shows defaults, with whichever formatter the command asks for."""

    def __init__(self, *, formatter_class: type[argparse.HelpFormatter] = argparse.HelpFormatter, **kwargs: Any) -> None:
        mixed: Any = type(formatter_class.__name__, (DefaultsShown, formatter_class), {})
        super().__init__(formatter_class=mixed, **kwargs)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
