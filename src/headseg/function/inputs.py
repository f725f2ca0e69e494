"""What is an input: the one rule for which keys headseg processes, by the configured prefixes.

The function applies it to each record's keys (`guard`), the tooling to each listed key (`is_input`: backfill
hands over, status counts, doctor checks only what the function would process), so they never disagree: an
object the function would skip is never handed over, nor counted as pending.
"""

from __future__ import annotations

from headseg.function.config import Config
from headseg.function.errors import Skipped
from headseg.function.events import ObjectCreated


def refusal(key: str, config: Config) -> Skipped | None:
    """Why `key` is not an input (headseg's own output, a scratch copy, outside INPUT_PREFIX, a folder marker),
    or None when it is one."""
    if key.startswith(config.output_prefix):
        return Skipped(f"object is under OUTPUT_PREFIX {config.output_prefix!r}: headseg's own output", code="OutputPrefix")
    if key.startswith(config.scratch):
        return Skipped(f"object is under SCRATCH_PREFIX {config.scratch!r}: a normalized copy", code="ScratchPrefix")
    if not key.startswith(config.input_prefix):
        return Skipped(f"object is outside INPUT_PREFIX {config.input_prefix!r}", code="OutsideInputPrefix")
    if key.endswith("/"):
        return Skipped("object is a folder marker (its key ends with '/')", code="FolderMarker")
    return None


def is_input(key: str, config: Config) -> bool:
    """Whether a listed key is an upload the function processes."""
    return refusal(key, config) is None


def guard(record: ObjectCreated, config: Config) -> None:
    """Skip a record none of whose keys (as given, URL-decoded) is an input, before any request; a record any of
    whose keys is headseg's own output or scratch copy is skipped whatever the other form says."""
    refusals = [refusal(key, config) for key in record.key_candidates]
    for skip in refusals:
        if skip is not None and skip.code in ("OutputPrefix", "ScratchPrefix"):
            raise skip
    if all(refusals):
        raise next(skip for skip in refusals if skip is not None)
