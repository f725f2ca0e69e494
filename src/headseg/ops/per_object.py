"""The tooling's per-object boundary: whatever happens while handling one listed object stays that object's failure.

`backfill`, `replay` and `status` loop over objects they list; each step they take for one object (reading its
records, judging them, handing it over) runs through `attempt`. A failure headseg knows (`HeadsegError`) is
logged as a warning; anything else (an SDK exception nothing classified, a record of a shape nothing expected,
a bug) is logged with its traceback. Either way the step returns a `Failed` with a one-line, scrubbed reason,
the loop counts it and goes on, and the command's exit status says that some failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from headseg.function import logs
from headseg.function.errors import HeadsegError, printable

log = logging.getLogger(__name__)
T = TypeVar("T")
KEPT = 100  # failures a command keeps with their reason to print (the log has every one)


@dataclass(frozen=True)
class Failed:
    """One object's step failed: the object's key and why, as one printable line with no secret in it."""

    key: str
    reason: str


def attempt(key: str, step: str, work: Callable[[], T]) -> T | Failed:
    """`work()`, the `step` (e.g. "reading its results") of the object at `key`; or a `Failed` if it raised."""
    try:
        return work()
    except HeadsegError as exc:
        reason = exc.message
        log.warning(f"{step} failed", extra={"fields": {"object": key, "error": exc.code, "reason": reason}})
    except Exception as exc:  # the boundary: the other objects must still be handled
        reason = f"unexpected {type(exc).__name__} while {step}: {exc}"
        log.error(f"{step} failed unexpectedly", exc_info=True, extra={"fields": {"object": key}})
    return Failed(key, logs.scrub(printable(reason)))


@dataclass
class Failures:
    """The objects a command's loop failed on: how many, and the first KEPT with their reason."""

    count: int = 0
    first: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)

    def add(self, key: str, reason: str) -> None:
        self.count += 1
        if len(self.first) < KEPT:
            self.first.append((key, reason))

    def lines(self) -> list[str]:
        """A line for each kept failure, then how many more the log has."""
        more = [f"... and {self.count - len(self.first)} more (the log has each)"] if self.count > len(self.first) else []
        return [f"{printable(key)}: {reason}" for key, reason in self.first] + more
