"""Segmenters: SegmentHead's contract behind one protocol, with a cloud twin (imageseg) and a local one.

A segmenter returns the heads it found with their boxes in input-image coordinates; each head's cutout is
either already in memory (`png`) or at a temporary URL (`url`) that `fetch` downloads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from headseg.config import Config, Engine
from headseg.credentials import Credentials
from headseg.retry import Budget
from headseg.storage import ObjectInfo, Storage


@dataclass(frozen=True)
class Head:
    """One head: its box in the input image and where its cutout is."""

    x: int
    y: int
    width: int
    height: int
    url: str | None = field(default=None, repr=False)  # temporary cutout URL (signed: never log it)
    png: bytes | None = field(default=None, repr=False)  # cutout bytes, when the segmenter has them


@dataclass(frozen=True)
class Segmentation:
    request_id: str
    heads: list[Head]


@dataclass(frozen=True)
class ImageSource:
    """The image to segment: an object in a storage, as last read."""

    storage: Storage
    info: ObjectInfo

    @property
    def key(self) -> str:
        return self.info.key


class Segmenter(Protocol):
    """SegmentHead's contract. Raises `PermanentError` for images it rejects, `RetriableError` otherwise."""

    name: str

    def segment(self, source: ImageSource, return_form: str | None, budget: Budget) -> Segmentation:
        ...

    def fetch(self, head: Head, budget: Budget) -> bytes:
        """The head's cutout PNG. Raises `CutoutExpired` when its temporary URL is no longer valid."""
        ...


def build_segmenter(config: Config, credentials: Credentials | None) -> Segmenter:
    """The segmenter `config.engine` names (imported lazily: the local engine's libraries are heavy)."""
    if config.engine is Engine.LOCAL:
        from headseg.segmenters.local import LocalSegmenter

        return LocalSegmenter()
    from headseg.segmenters.cloud import CloudSegmenter

    if credentials is None:
        raise ValueError("the cloud segmenter needs credentials")
    return CloudSegmenter(config, credentials)
