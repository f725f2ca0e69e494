"""The function's pipeline on image bytes in hand (`headseg cut`): same checks, normalization and engine, no bucket.

Each image is put in a scratch folder standing in for the bucket, run through `Pipeline.process` exactly as an
upload is, and its results read back and removed; so an image is refused, normalized and cut as the function
would, in the same words. What is written where is the command's business.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Any

from headseg.function.config import LOCAL_PREFIXES, Config, Engine
from headseg.function.errors import ConfigError
from headseg.function.events import ObjectCreated
from headseg.function.outcome import Status
from headseg.function.retry import Budget
from headseg.function.sidecar import HeadRecord, Sidecar
from headseg.local.directory import DirectoryStorage
from headseg.local.wiring import local_app

BUCKET = "direct"
PER_IMAGE_SECONDS = 300.0


@dataclass(frozen=True)
class Cut:
    """One image's heads, left to right: each head's box in the image's upright pixels and its PNG (a cutout, or a
    mask), at the resolution the engine worked at; the image's upright size and what normalization did."""

    width: int
    height: int
    heads: list[tuple[HeadRecord, bytes]]
    return_form: str | None
    normalization: dict[str, Any] | None


class CutFailed(Exception):
    """The image was refused or could not be cut; `reason` says why, as the function's outcome does."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DirectCutter:
    """Cuts images one at a time with the offline engine (built once). Close it, or use it as a context manager."""

    def __init__(self, return_form: str | None = None) -> None:
        self._scratch = tempfile.TemporaryDirectory(prefix="headseg-cut-")
        try:
            self.config = Config(
                input_prefix=LOCAL_PREFIXES["INPUT_PREFIX"],
                output_prefix=LOCAL_PREFIXES["OUTPUT_PREFIX"],
                return_form=return_form,
                engine=Engine.LOCAL,
                bucket_dir=self._scratch.name,
            )
        except ConfigError:  # RETURN_FORM, say: nothing is left behind
            self._scratch.cleanup()
            raise
        self._storage = DirectoryStorage(self._scratch.name, BUCKET)
        self._app = local_app(self.config)
        self._pipeline = self._app.pipeline(None)
        self._count = 0

    def cut(self, data: bytes) -> Cut:
        """The heads in the encoded image `data`, or `CutFailed` with the function's reason."""
        key = f"{self.config.input_prefix}{self._count}"
        self._count += 1
        self._storage.put(key, data, "application/octet-stream")
        try:
            outcome = self._pipeline.process(ObjectCreated("ObjectCreated:PutObject", BUCKET, key), Budget.seconds(PER_IMAGE_SECONDS))
            if outcome.status is not Status.DONE:
                raise CutFailed(outcome.reason or outcome.code)
            sidecar = Sidecar.from_json(self._storage.get(self.config.layout(key).sidecar)[1])
            assert sidecar is not None, "the pipeline wrote this sidecar"
            heads = [(head, self._storage.get(head.key)[1]) for head in sidecar.heads]
            width, height = sidecar.source.width or 0, sidecar.source.height or 0
            return Cut(width, height, heads, sidecar.return_form, sidecar.normalization)
        finally:
            for info in list(self._storage.list("")):
                self._storage.delete(info.key)

    def close(self) -> None:
        self._app.close()
        self._scratch.cleanup()

    def __enter__(self) -> DirectCutter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
