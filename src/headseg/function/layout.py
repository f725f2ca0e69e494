"""Where a source's outputs go: every key headseg writes for it, and nothing outside OUTPUT_PREFIX and scratch.

For a source `incoming/a.jpg` at eTag 688A7BF4… and OUTPUT_PREFIX `heads/`:
    heads/incoming/a.jpg/head-0-688a7bf4.png ...   one cutout (or mask) per head, as SegmentHead ordered them
    heads/incoming/a.jpg/heads.json                the sidecar, written last: its presence for an eTag means done
    heads/incoming/a.jpg/error.json                the error sidecar of a failed attempt (permanent or retriable)
    heads/.scratch/incoming/a.jpg/688a7bf4.jpg     a normalized copy for SegmentHead, removed after its call

Cutout and scratch names carry the source's eTag, so runs on two versions of one object never overwrite each
other's outputs: the sidecar alone says which set is current, and once it is written whatever carries another
version's eTag is deleted (`version_in` reads it back). Runs on one version name the same keys, so a run that
was killed leaves nothing its redelivery does not overwrite and remove.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from headseg.function.errors import PermanentError
from headseg.function.storage import MAX_KEY_BYTES

SIDECAR_NAME = "heads.json"
ERROR_NAME = "error.json"
MAX_HEADS = 100  # SegmentHead finds a handful; the key check below allows for this many
_CUTOUT = re.compile(r"head-\d+-([0-9a-f]{8})\.png")
_SCRATCH = re.compile(r"([0-9a-f]{8})(?:-[0-9a-f]{12})?\.(?:jpg|png)")  # the run id: names before 0.3


def default_scratch(output_prefix: str) -> str:
    """Where normalized copies go unless SCRATCH_PREFIX says otherwise: a folder inside OUTPUT_PREFIX."""
    return f"{output_prefix}.scratch/"


@dataclass(frozen=True)
class Layout:
    """The output keys of one source object. Raises `PermanentError` when a key would exceed OSS's limit."""

    output_prefix: str
    source_key: str
    scratch_prefix: str = ""  # default: `default_scratch(output_prefix)`

    def __post_init__(self) -> None:
        for longest in (self.cutout(MAX_HEADS - 1, "0" * 32), self.scratch("0" * 32, "jpg")):
            if len(longest.encode("utf-8")) > MAX_KEY_BYTES:
                raise PermanentError(
                    f"output keys for {self.source_key!r} would exceed OSS's {MAX_KEY_BYTES}-byte key limit; "
                    "use a shorter key or OUTPUT_PREFIX",
                    code="KeyTooLong",
                )

    @property
    def folder(self) -> str:
        return f"{self.output_prefix}{self.source_key}/"

    def cutout(self, index: int, etag: str) -> str:
        return f"{self.folder}head-{index}-{etag[:8].lower()}.png"

    @property
    def sidecar(self) -> str:
        return self.folder + SIDECAR_NAME

    @property
    def error(self) -> str:
        return self.folder + ERROR_NAME

    def owns(self, key: str) -> bool:
        """Whether `key` is one of this source's outputs (its folder, or its scratch copies)."""
        return key.startswith(self.folder) or key.startswith(self.scratch_folder)

    @property
    def scratch_folder(self) -> str:
        return f"{self.scratch_prefix or default_scratch(self.output_prefix)}{self.source_key}/"

    def scratch(self, etag: str, extension: str) -> str:
        """The key of the normalized copy of the source at `etag` (runs on one version share it)."""
        return f"{self.scratch_folder}{etag[:8].lower()}.{extension}"

    def version_in(self, key: str) -> str | None:
        """The eTag prefix (8 hex digits, lower case) a cutout or scratch key of this source carries; None for
        any other key (the sidecar, the error record, a subfolder, a name headseg never writes)."""
        for folder, pattern in ((self.folder, _CUTOUT), (self.scratch_folder, _SCRATCH)):
            if key.startswith(folder) and (match := pattern.fullmatch(key[len(folder) :])):
                return match.group(1)
        return None
