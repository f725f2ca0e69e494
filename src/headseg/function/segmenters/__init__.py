"""Segmenters: SegmentHead's contract behind one protocol, with a cloud twin (imageseg) and a local one.

A segmenter is handed the image the way it `takes` it, a URL or the bytes the pipeline already holds (it never
reads storage itself), and returns the heads it found with their boxes in input-image coordinates; each head's
cutout is either already in memory (`png`) or at a temporary URL (`url`) that `fetch` downloads.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

from headseg.function.config import Config, Engine
from headseg.function.errors import ConfigError
from headseg.function.credentials import Credentials
from headseg.function.retry import Budget


class Takes(str, enum.Enum):
    """What a segmenter needs of the image: a URL it can fetch, or the encoded bytes."""

    URL = "url"
    BYTES = "bytes"


@dataclass(frozen=True)
class Head:
    """One head: its box in the input image and where its cutout is."""

    x: int
    y: int
    width: int
    height: int
    url: str | None = field(default=None, repr=False)  # temporary cutout URL (signed: never log it)
    png: bytes | None = field(default=None, repr=False)  # cutout bytes, when the segmenter has them


def max_cutout_bytes(head: Head) -> int:
    """The most a cutout of this head's box can take: an uncompressed RGBA PNG (a filter byte a row, headers)."""
    return head.width * head.height * 4 + head.height + 64 * 1024


@dataclass(frozen=True)
class Segmentation:
    request_id: str
    heads: list[Head]


@dataclass(frozen=True)
class SegmentInput:
    """The image to segment, as the segmenter `takes` it: a (signed, short-lived) URL, or the encoded bytes."""

    url: str = field(default="", repr=False)  # signed: never log it
    data: bytes | None = field(default=None, repr=False)


class Segmenter(Protocol):
    """SegmentHead's contract. Raises `PermanentError` for images it rejects, `RetriableError` otherwise."""

    name: str
    takes: Takes

    def segment(self, image: SegmentInput, return_form: str | None, budget: Budget) -> Segmentation:
        ...

    def fetch(self, head: Head, budget: Budget) -> bytes:
        """The head's cutout PNG. Raises `CutoutExpired` when its temporary URL is no longer valid."""
        ...

    def warm(self) -> None:
        """Load what the first call would (SDK modules and client, or the engine's models)."""
        ...


def build_segmenter(config: Config, credentials: Credentials | None) -> Segmenter:
    """SegmentHead through the imageseg SDK. (The offline engine, ENGINE=local, is the command line's:
    `headseg.local.wiring`.)"""
    if config.engine is Engine.LOCAL:
        raise ConfigError("ENGINE=local (the offline engine) is for the command line, not the function")
    from headseg.function.segmenters.cloud import CloudSegmenter

    if credentials is None:
        raise ValueError("the cloud segmenter needs credentials")
    return CloudSegmenter(config, credentials)
