"""Every error headseg raises on purpose, arranged so that its class carries the decision.

A record ends in one of three families, and the pipeline needs one `except` clause for each:
    Skipped         nothing to do: logged and returned successfully
    PermanentError  retrying cannot help: recorded in the error sidecar, returned successfully
    RetriableError  transient: retried within the invocation (unless `retry_in_invocation` is off), then
                    raised so Function Compute's async retry takes over
Outside the families: `ConfigError` (the function refuses to start). Anything else raised while a record is
processed is a bug or a failure nobody classified: the record boundary (`Pipeline.process`) logs it with its
traceback and turns it into `InternalError`, a retriable outcome, so it never reaches the handler. Every message
says what happened and, where it helps, what to do; every error carries a stable `code` that lands in logs and
error sidecars. A message is always one printable line (`printable`), whatever key or service reply it quotes,
so no error can forge a line in the logs FC writes.
"""

from __future__ import annotations

import re

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")  # controls, line breaks, lone surrogates


def printable(text: str) -> str:
    """`text` with each control character, line or paragraph separator and lone surrogate written as its escape
    (`\\n`, `\\x85`, `\\u2028`): shown on one line, and encodable, whatever it holds."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class HeadsegError(Exception):
    """Root of every error headseg raises on purpose. Its message and code are made `printable`."""

    code = "HeadsegError"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        message = printable(message)
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = printable(code)


class ConfigError(HeadsegError):
    """The configuration is invalid: the function refuses to start."""

    code = "ConfigError"


# -- skipped ---------------------------------------------------------------------------------------------------
class Skipped(HeadsegError):
    """Nothing to do for this record, and nothing to remember: its key is no input (headseg's own output, outside
    INPUT_PREFIX), its version is settled already, or a newer upload superseded it. A verdict on a version's
    content (not an image, corrupt...) is never a skip but an `InvalidImage`, recorded, so the version settles."""

    code = "Skipped"


# -- permanent -------------------------------------------------------------------------------------------------
class PermanentError(HeadsegError):
    """Retrying cannot help (bad input, rejected by the service): record it and return successfully."""

    code = "Permanent"


class MalformedEvent(PermanentError):
    """The event, or one of its records, is not a well-formed OSS or EventBridge event."""

    code = "MalformedEvent"


class InvalidImage(PermanentError):
    """The object is an image headseg cannot use: corrupt, unsupported, or outside SegmentHead's limits."""

    code = "InvalidImage"


class ObjectNotFound(PermanentError):
    """The object does not exist in the bucket (deleted since its event, or never there)."""

    code = "NoSuchKey"


# -- retriable -------------------------------------------------------------------------------------------------
class RetriableError(HeadsegError):
    """A transient failure (throttling, 5xx, timeout): retried in the time budget, then raised for FC."""

    code = "Retriable"
    retry_in_invocation = True


class AccessDenied(RetriableError):
    """Credentials or permissions were refused: retrying within this invocation cannot help, but a later
    retry may (rotated STS token, a RAM policy fixed), so FC's async retry takes it."""

    code = "AccessDenied"
    retry_in_invocation = False


class BudgetExhausted(RetriableError):
    """The invocation ran out of time (before a transient failure cleared, or waiting on an answer)."""

    code = "BudgetExhausted"
    retry_in_invocation = False


class CutoutExpired(RetriableError):
    """A temporary cutout URL has expired: downloading it again cannot help, SegmentHead must be called again
    (the cutouts stage does that once; after that FC's retry does)."""

    code = "CutoutExpired"
    retry_in_invocation = False


class InternalError(RetriableError):
    """Something nobody classified went wrong inside one record (a bug, or an exception from a library that no
    boundary translated): logged with its traceback, recorded, and left to FC's retry. Only the record boundary
    raises it."""

    code = "InternalError"
    retry_in_invocation = False
