"""Memory: what an accepted input costs to decode is estimated from its header and must fit the function's
memory with margin; what cannot fit is refused before any pixel is decoded, with the limit and the remedy."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from headseg.function import images
from headseg.function.app import build_storage
from headseg.function.config import Config
from headseg.function.credentials import Credentials
from headseg.function.images import ImageInfo
from headseg.function.retry import Budget
from headseg.function.segmenters import SegmentInput
from headseg.function.segmenters.cloud import CloudSegmenter
from tests.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, BUCKET, ROOT, SECURITY_TOKEN, Cloud
from tests.corpus import png_claiming


def test_an_image_too_costly_to_decode_at_this_memory_is_refused_from_its_header(cloud: Cloud):
    etag = cloud.upload("incoming/huge.png", png_claiming(10_000, 10_000), "image/png")  # exactly MAX_PIXELS
    outcome = cloud.invoke_key("incoming/huge.png", etag)["outcomes"][0]  # FC's context: 512 MB
    assert (outcome["outcome"], outcome["code"]) == ("failed", "InvalidImage.DecodeCost")
    assert "at 512 MB function memory (MEMORY_FRACTION=0.6)" in outcome["reason"]
    assert "raise memorySize in s.yaml" in outcome["reason"]
    assert cloud.read_json("heads/incoming/huge.png/error.json")["code"] == "InvalidImage.DecodeCost"
    assert cloud.imageseg.calls == 0


def test_more_memory_lets_the_same_image_past_the_gate(cloud: Cloud):
    cloud.configure(MEMORY_MB="4096")
    etag = cloud.upload("incoming/huge.png", png_claiming(10_000, 10_000), "image/png")
    outcome = cloud.invoke_key("incoming/huge.png", etag)["outcomes"][0]
    assert outcome["code"] == "InvalidImage.Corrupt"  # decoded (its pixel data is a stub), not refused unread


# -- the estimate against measured peaks -------------------------------------------------------------------------------
MEASURE = r"""
import sys
from PIL import Image
from headseg.function import images, memory, normalize
memory.release_large_buffers()  # as the function's App does when it starts
Image.init()  # every plugin imported first: a module's memory is the instance's, once (MEMORY_RESERVED_MB), not an image's
def status(field):
    line = next(line for line in open("/proc/self/status") if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    estimate = memory.decode_cost(images.read_header(data, complete=True), normalize.Limits().max_side)
    start = status("VmRSS")
    open("/proc/self/clear_refs", "w").write("5")  # VmHWM restarts from VmRSS
    normalize.normalize(data, normalize.Limits())
    print(status("VmHWM") - start, estimate, flush=True)
"""


def measured_peaks(paths: list[Path]) -> list[tuple[int, int]]:
    """(what normalize() added to the process's peak, its estimate) for each image, in one fresh process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, *map(str, paths)], capture_output=True, text=True, check=True, env=env
    )
    return [(int(own), int(estimate)) for own, estimate in (line.split() for line in result.stdout.splitlines())]


@dataclass(frozen=True)
class TiffLayout:
    """A TIFF's shape as its tags tell it: what Pillow's decoders buffer depends on nothing else."""

    width: int
    height: int
    bits: tuple[int, ...]  # per sample: (8,) L, (8, 8, 8) RGB, (16, 16, 16, 16) RGBA, (32,) float...
    compression: int  # 1: none (Pillow reads it), 8: deflate (libtiff decodes it)
    rows_per_strip: int = 0  # 0: one strip
    tile: int = 0

    def encode(self) -> bytes:
        from bench.p3_kinds import tiff

        out = io.BytesIO()
        float_ = self.bits == (32,)
        tiff(
            out, bytes(self.width * self.height * sum(self.bits) // 8), (self.width, self.height), bits=self.bits,
            photometric=1 if len(self.bits) == 1 else 2, compression=self.compression,
            sample_format=3 if float_ else 1, rows_per_strip=self.rows_per_strip, tile=self.tile,
        )
        return out.getvalue()


LAYOUTS = st.builds(
    TiffLayout,
    width=st.integers(40, 1800),
    height=st.integers(40, 1800),
    bits=st.sampled_from([(8,), (8, 8, 8), (8, 8, 8, 8), (16,), (16, 16, 16), (16, 16, 16, 16), (32,)]),
    compression=st.sampled_from([1, 8]),
    rows_per_strip=st.sampled_from([0, 1, 7, 64, 1000]),
    tile=st.sampled_from([0, 0, 16, 256, 1024, 2048]),
)


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(LAYOUTS, min_size=5, max_size=5))
@example([TiffLayout(1800, 1400, (16, 16, 16), 8)])  # one strip of 6 B/px beside the 4 B/px image
@example([TiffLayout(400, 300, (8, 8, 8, 8), 8, tile=2048)])  # a 16 MB tile for a 0.1 MP image
@example([TiffLayout(1069, 1800, (16, 16, 16), 1, rows_per_strip=64, tile=1024)])  # measured 94 KB over when first
def test_the_estimate_covers_what_normalizing_takes_for_any_tiff_layout(tmp_path: Path, layouts: list[TiffLayout]):
    paths = []
    for index, layout in enumerate(layouts):
        paths.append(tmp_path / f"{index}.tif")
        paths[-1].write_bytes(layout.encode())
    for layout, (own, estimate) in zip(layouts, measured_peaks(paths)):
        assert own <= estimate, f"{layout}: normalize() took {own} bytes, estimated {estimate}"


def test_a_tiffs_strip_or_tile_is_in_its_header(tmp_path: Path):
    def header(layout: TiffLayout) -> ImageInfo:
        return images.read_header(layout.encode(), complete=True)

    assert header(TiffLayout(300, 200, (8, 8, 8), 8)).strip_bytes == 300 * 3 * 200  # one strip: every row
    assert header(TiffLayout(300, 200, (16, 16, 16), 8, rows_per_strip=7)).strip_bytes == 300 * 6 * 7
    assert header(TiffLayout(300, 200, (8, 8, 8, 8), 8, tile=1024)).strip_bytes == 1024 * 1024 * 4
    assert header(TiffLayout(300, 200, (8, 8, 8), 1)).strip_bytes == 0  # uncompressed: Pillow reads it itself
    assert header(TiffLayout(300, 200, (8, 8, 8), 8)).mode == "RGB"


# -- cutout downloads --------------------------------------------------------------------------------------------------
def test_a_cutout_download_holds_its_bytes_once(cloud: Cloud):
    """What the in-flight budget counts for a download is its PNG once (bytes made from a bytearray were twice)."""
    config = Config.from_env()
    credentials = Credentials(ACCESS_KEY_ID, ACCESS_KEY_SECRET, SECURITY_TOKEN)
    cloud.upload_portrait("incoming/big.jpg", [(100, 100, 1000, 1000)], size=(1200, 1200))
    url = build_storage(config, credentials, BUCKET).signed_url("incoming/big.jpg", 60)
    segmenter = CloudSegmenter(config, credentials)
    budget = Budget.seconds(30)
    (head,) = segmenter.segment(SegmentInput(url=url), None, budget).heads
    tracemalloc.start()
    try:
        png = segmenter.fetch(head, budget)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 3_000_000  # an uncompressed 1000x1000 RGBA
    assert peak < 1.3 * len(png)


def test_an_instance_gives_freed_large_buffers_back_to_the_system():
    """The pool's threads free cutouts of every size; glibc's default would keep them resident in per-thread
    arenas once a larger buffer was freed. An instance (its App) makes freed large buffers leave the process."""
    code = r"""
import sys, threading
from headseg.function.app import App
from headseg.function.config import Config
App(Config.from_env({"INPUT_PREFIX": "in/", "OUTPUT_PREFIX": "out/", "ENGINE": "local", "BUCKET_DIR": "-"}))
def rss():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS:")).split()[1]) * 1024
def work():
    for size in (24, 16, 12):  # each smaller than the last one freed
        buffer = bytearray(size << 20)
        del buffer
start = rss()
thread = threading.Thread(target=work)
thread.start()
thread.join()
print(rss() - start)
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert int(result.stdout) < 4 << 20  # with glibc's defaults: 16 MB stay resident
