"""One root exception, two families: permanent (record and move on) and retriable (let FC try again).

Every message says what happened and, where it helps, what to do about it. Each error carries a stable
`code` that lands in logs and error sidecars.
"""

from __future__ import annotations


class HeadsegError(Exception):
    """Root of every error headseg raises on purpose."""

    code = "HeadsegError"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigError(HeadsegError):
    """The configuration is invalid: the function refuses to start."""

    code = "ConfigError"


class MalformedEvent(HeadsegError):
    """The event is not a well-formed OSS trigger event."""

    code = "MalformedEvent"


class PermanentError(HeadsegError):
    """Retrying cannot help (bad input, rejected by the service): record it and return successfully."""

    code = "Permanent"


class InvalidImage(PermanentError):
    """The object is an image headseg cannot use: corrupt, unsupported, or outside SegmentHead's limits."""

    code = "InvalidImage"


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
    """The invocation ran out of time before a transient failure cleared."""

    code = "BudgetExhausted"


class ObjectNotFound(HeadsegError):
    """The object does not exist in the bucket."""

    code = "NoSuchKey"


class CutoutExpired(HeadsegError):
    """A temporary cutout URL has expired: downloading it again cannot help, SegmentHead must be called again."""

    code = "CutoutExpired"
