"""The composition root's local twins, for the commands that run the function's pipeline on a laptop: a folder
standing in for the bucket (BUCKET_DIR) and the offline engine (ENGINE=local). The deployed function knows
neither; the commands hand these builders to its App."""

from __future__ import annotations

from headseg.function import app as function_app
from headseg.function.app import App
from headseg.function.config import Config, Engine
from headseg.function.credentials import Credentials
from headseg.function.segmenters import Segmenter, build_segmenter as cloud_segmenter
from headseg.function.storage import Storage


def build_storage(config: Config, credentials: Credentials | None, bucket: str) -> Storage:
    """The folder standing in for the bucket (BUCKET_DIR), or OSS as the function builds it."""
    if config.bucket_dir:
        from headseg.local.directory import DirectoryStorage

        return DirectoryStorage(config.bucket_dir, bucket)
    return function_app.build_storage(config, credentials, bucket)


def build_segmenter(config: Config, credentials: Credentials | None) -> Segmenter:
    """The offline engine (ENGINE=local; its libraries are imported here, lazily), or SegmentHead."""
    if config.engine is Engine.LOCAL:
        from headseg.local.segmenter import LocalSegmenter

        return LocalSegmenter()
    return cloud_segmenter(config, credentials)


def local_app(config: Config) -> App:
    """The function's App, able to run on a folder and with the offline engine."""
    return App(config, make_segmenter=build_segmenter, make_storage=build_storage)
