"""Where a source's outputs go: every key headseg writes for it, and nothing outside OUTPUT_PREFIX and scratch.

For a source `incoming/a.jpg` at eTag 688A7BF4… and OUTPUT_PREFIX `heads/`:
    heads/incoming/a.jpg/head-0-688a7bf4.png ...   one cutout (or mask) per head, as SegmentHead ordered them
    heads/incoming/a.jpg/heads.json                the sidecar, written last: its presence for an eTag means done
    heads/incoming/a.jpg/error.json                the error sidecar of a failed attempt (permanent or retriable)
    heads/.scratch/incoming/a.jpg/688a7bf4.jpg     a normalized copy for SegmentHead, removed after its call
    heads/.settled/incoming/a.jpg/done.688A7BF4….1764669600.2.-
                                                   the mark: a small object whose name says how the source
                                                   settled (written after the sidecar or error record)

The mark lets the tooling classify a bucket from two listings (sources, and `.settled/`: one key a source)
without reading a record: its name holds the kind (done, failed, retriable), the source's eTag and Last-Modified,
the number of heads, and the return form (done) or the error code (failed, retriable). See `Mark`.

Cutout and scratch names carry the source's eTag, so runs on two versions of one object never overwrite each
other's outputs: the sidecar alone says which set is current, and once it is written whatever carries another
version's eTag is deleted (`version_in` reads it back). Runs on one version name the same keys, so a run that
was killed leaves nothing its redelivery does not overwrite and remove.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from headseg.function.errors import PermanentError
from headseg.function.storage import MAX_KEY_BYTES

SIDECAR_NAME = "heads.json"
MARKS = ".settled/"  # under OUTPUT_PREFIX: the marks folder of every source
ERROR_NAME = "error.json"
MAX_HEADS = 100  # SegmentHead finds a handful; the key check below allows for this many
_CUTOUT = re.compile(r"head-\d+-([0-9a-f]{8})\.png")
MAX_DETAIL = 48  # characters of a mark's return form or error code
KINDS = ("done", "failed", "retriable")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_SCRATCH = re.compile(r"([0-9a-f]{8})(?:-[0-9a-f]{12})?\.(?:jpg|png)")  # the run id: names before 0.3


def default_scratch(output_prefix: str) -> str:
    """Where normalized copies go unless SCRATCH_PREFIX says otherwise: a folder inside OUTPUT_PREFIX."""
    return f"{output_prefix}.scratch/"


def marks_root(output_prefix: str) -> str:
    """The folder that holds every source's marks."""
    return output_prefix + MARKS


@dataclass(frozen=True)
class Mark:
    """How one version of a source settled, as the name of a small object: `kind.ETAG.mtime.heads.detail`.

    `detail` is the return form of a done result ("-" for RGBA cutouts) or the code of a failure, with any
    character outside [A-Za-z0-9_.-] replaced by "_"; the other fields hold no dot, so the name splits back."""

    kind: str  # one of KINDS
    etag: str
    last_modified: int  # epoch seconds of the version settled (0: not known)
    heads: int = 0  # the cutouts of a done result
    detail: str = "-"

    @property
    def name(self) -> str:
        detail = _UNSAFE.sub("_", self.detail)[:MAX_DETAIL] or "-"
        return f"{self.kind}.{self.etag}.{self.last_modified}.{self.heads}.{detail}"

    @classmethod
    def parse(cls, name: str) -> Mark | None:
        """The mark a name spells, or None for any other name."""
        parts = name.split(".", 4)
        if len(parts) != 5 or parts[0] not in KINDS or not parts[1] or "/" in name:
            return None
        kind, etag, last_modified, heads, detail = parts
        if not (last_modified.isdigit() and heads.isdigit() and last_modified.isascii() and heads.isascii()):
            return None
        return cls(kind, etag, int(last_modified), int(heads), detail)

    @property
    def body(self) -> bytes:
        """What the mark's object holds: its name counts; the body repeats it for whoever opens it."""
        return self.name.encode("utf-8") + b"\n"

    @property
    def form(self) -> str | None:
        """The return form of a done result (None: RGBA cutouts)."""
        return None if self.detail == "-" else self.detail


@functools.lru_cache(maxsize=16)
def key_room(output_prefix: str, scratch_prefix: str = "") -> int:
    """The bytes a source key may take for its longest output key (a cutout, a scratch copy, a mark) to fit."""
    scratch = scratch_prefix or default_scratch(output_prefix)
    longest_mark = Mark("retriable", "0" * 40, 10**10, MAX_HEADS, "x" * MAX_DETAIL).name
    tails = (
        len(output_prefix.encode("utf-8")) + len(f"/head-{MAX_HEADS - 1}-{'0' * 8}.png"),
        len(scratch.encode("utf-8")) + len(f"/{'0' * 8}.jpg"),
        len(marks_root(output_prefix).encode("utf-8")) + 1 + len(longest_mark),
    )
    return MAX_KEY_BYTES - max(tails)


@dataclass(frozen=True)
class Layout:
    """The output keys of one source object. Raises `PermanentError` when a key would exceed OSS's limit."""

    output_prefix: str
    source_key: str
    scratch_prefix: str = ""  # default: `default_scratch(output_prefix)`

    def __post_init__(self) -> None:
        if len(self.source_key.encode("utf-8")) > key_room(self.output_prefix, self.scratch_prefix):
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

    @property
    def marks_folder(self) -> str:
        return f"{marks_root(self.output_prefix)}{self.source_key}/"

    def mark(self, mark: Mark) -> str:
        return self.marks_folder + mark.name

    def owns(self, key: str) -> bool:
        """Whether `key` is one of this source's outputs (its folder, its marks, or its scratch copies)."""
        return any(key.startswith(folder) for folder in (self.folder, self.marks_folder, self.scratch_folder))

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
