"""What is an input: which records the function acts on, by their keys and the configured prefixes."""

from __future__ import annotations

from headseg.function.config import Config
from headseg.function.errors import Skipped
from headseg.function.events import ObjectCreated


def guard(record: ObjectCreated, config: Config) -> None:
    """Skip headseg's own outputs, its scratch copies and objects outside INPUT_PREFIX, before any request."""
    for key in record.key_candidates:
        if key.startswith(config.output_prefix):
            raise Skipped(f"object is under OUTPUT_PREFIX {config.output_prefix!r}: headseg's own output", code="OutputPrefix")
        if key.startswith(config.scratch):
            raise Skipped(f"object is under SCRATCH_PREFIX {config.scratch!r}: a normalized copy", code="ScratchPrefix")
    if not any(key.startswith(config.input_prefix) for key in record.key_candidates):
        raise Skipped(f"object is outside INPUT_PREFIX {config.input_prefix!r}", code="OutsideInputPrefix")
