"""The wire-level fakes the benchmarks run against, with the function's environment pointed at them."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

KEY_ID, SECRET, TOKEN = "STS.bench", "bench-secret", "bench-token"


@contextmanager
def fake_cloud(log_level: str = "WARNING") -> Iterator[tuple[Any, Any, Any]]:
    """Fake OSS, imageseg and FC on free ports (one STS key for all) and the environment set for the function;
    yields (oss, imageseg, fc)."""
    from tests.fakes.fc import FakeFc
    from tests.fakes.imageseg import FakeImageseg
    from tests.fakes.oss import FakeOss

    credentials, tokens = {KEY_ID: SECRET}, {KEY_ID: TOKEN}
    with FakeOss(credentials, tokens) as oss, FakeImageseg(credentials, tokens) as imageseg, FakeFc(credentials, tokens) as fc:
        fc.add_function("default", "headseg")
        os.environ.update(
            INPUT_PREFIX="incoming/", OUTPUT_PREFIX="heads/", OSS_ENDPOINT=oss.url, IMAGESEG_ENDPOINT=imageseg.url,
            ALIBABA_CLOUD_ACCESS_KEY_ID=KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET=SECRET,
            ALIBABA_CLOUD_SECURITY_TOKEN=TOKEN, LOG_LEVEL=log_level,
        )
        yield oss, imageseg, fc


@contextmanager
def function_instance() -> Iterator[Any]:
    """A fresh instance of the function (`headseg.function.handler.Instance`: what `index.handler` runs on FC),
    its App built from the environment on first use; its pool stopped at the end."""
    from headseg.function.handler import Instance

    instance = Instance()
    try:
        yield instance
    finally:
        instance.close()
