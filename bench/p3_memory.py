"""P3 memory: the worst accepted input's peak memory ÷ the function's memory (s.yaml's memorySize). Goal ≤ 0.6.

"Accepted" is what passes the pipeline's gates at that memory: MAX_OBJECT_BYTES (s.yaml), `read_header`,
`check_pixels` (MAX_PIXELS) and `memory.check_fits`: `check_decode_cost` against memorySize × MEMORY_FRACTION
(0.6) less MEMORY_RESERVED_MB (what an instance holds before any image; the baseline below measures it) and
the object's bytes. The kinds are every format and mode Pillow may take (bench/p3_kinds.py): JPEG baseline,
4:4:4, progressive, CMYK, turned, MPO; PNG in every colour type, 16-bit, Adam7; TIFF in one strip and in many,
tiled (4096 px tiles too), LZW, deflate, PackBits, JPEG, multi-page, RGBA, CMYK, 16-bit, 32-bit integer and
float, 64-bit float; BMP, RLE8; GIF and WebP, animated too; HEIC RGBA, 10-bit, several images. For each kind
the largest 4:3 photo-like image (gradients with fine grain) the gates accept is found by doubling, then halving
the step, over megapixels with the gates on a header model (a small sample's header and bytes per pixel); it is
then generated (cached under the temp dir) and checked with its own header and size. A fresh process does what
the function does with it: the function's imports (the handler, the OSS and imageseg SDKs, Pillow), the whole
object read, `read_header` on its first bytes, `normalize`; its peak is the whole process's VmHWM, nothing
subtracted (the function's memory is the whole instance). The baseline is the same process with the imports
only. Two ratios to the gate's estimate: the whole peak less the baseline and the object, and normalize()'s own
peak (VmHWM restarted with /proc/self/clear_refs just before it), which is what `decode_cost` models; both must
stay ≤ 1. MB are MiB, as FC's memorySize. For comparison, the worst kind at the old gate (pixel count only,
MAX_PIXELS 100 MP), measured when its estimate stays under 2 GB. Then the cutout downloads (bench/p3_cutouts.py):
the largest cutouts at the default and at the most DOWNLOAD_WORKERS, against what the in-flight budget counts.
"""

from __future__ import annotations

import dataclasses
import io
import math
import re
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from bench import p3_cutouts
from bench._fakes import ROOT
from bench.p3_kinds import Kind, kinds, photo

MIB = 1024 * 1024
CACHE = Path(tempfile.gettempdir()) / "headseg-bench-p3"
CONTENT = "v1"  # part of the cached files' names: change it when the content changes
SAMPLE = (2000, 1500)
OLD_GATE_MEASURE_LIMIT = 2 * 1024 * MIB  # measure the old gate's worst only under this estimate (whole process)
OLD_GATE_KINDS = (  # the kinds P3 measured before it measured every decoder path
    "baseline JPEG", "progressive JPEG", "PNG RGB", "PNG RGBA", "WebP", "HEIC", "TIFF (LZW)", "16-bit PNG", "CMYK JPEG",
)

MEASURE = r"""
import sys
sys.path[:0] = [sys.argv[2], sys.argv[3]]
import index  # the handler and what it imports at start; then what the first invocation loads
import oss2, requests
from alibabacloud_imageseg20191230 import models
from alibabacloud_imageseg20191230.client import Client
from headseg.function.segmenters import cloud
from headseg.function.storage import oss
from headseg.function import images, memory, normalize
import PIL.Image
PIL.Image.init()
memory.release_large_buffers()  # as the function's App does when it starts
def status(field):  # this address space's own figures: ru_maxrss would carry the parent's over exec
    line = next(line for line in open("/proc/self/status") if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024
if sys.argv[1] == "-":
    print(status("VmHWM"))
    raise SystemExit
data = open(sys.argv[1], "rb").read()
head = data[:images.HEADER_BYTES]
try:
    info = images.read_header(head, complete=len(head) >= len(data))
except images.NeedMoreBytes:
    info = images.read_header(data, complete=True)
before, start = status("VmHWM"), status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")  # VmHWM restarts from VmRSS: what normalize() adds is its own
normalized = normalize.normalize(data, normalize.Limits())
print(max(before, status("VmHWM")), status("VmHWM") - start, normalized.width, normalized.height)
"""


def encoded(kind: Kind, width: int, height: int) -> Path:
    """The kind's image of this size, generated once and cached."""
    slug = re.sub(r"[^a-z0-9]+", "-", kind.name.lower()).strip("-")
    path = CACHE / f"{CONTENT}-{slug}-{width}x{height}.{kind.ext}"
    if not path.exists():  # in a process of its own: a 100 MP image takes a GB, and the HEIC encoder registers
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        code = "import sys; sys.path.insert(0, sys.argv[1]); from bench.p3_memory import generate; generate(*sys.argv[2:])"
        subprocess.run([sys.executable, "-c", code, str(ROOT), kind.name, str(width), str(height), str(partial)], check=True)
        partial.replace(path)
    return path


def generate(name: str, width: str, height: str, path: str) -> None:
    """Write the `name` kind's photo of this size to `path` (run by `encoded` in a fresh process)."""
    kind = next(kind for kind in kinds() if kind.name == name)
    out = io.BytesIO()
    kind.encode(photo(int(width), int(height)), out)
    Path(path).write_bytes(out.getvalue())


def size_4_3(pixels: float) -> tuple[int, int]:
    width = math.floor(math.sqrt(pixels * 4 / 3))
    return width, width * 3 // 4


@dataclasses.dataclass(frozen=True)
class Gates:
    """The pipeline's gates at the function's memory: `check(info, object_bytes)` is the decode estimate, or
    the reason the input is refused."""

    memory_mb: int
    fraction: float
    max_object_bytes: int
    max_pixels: int = 100_000_000
    decode_gate: bool = True  # False: the old gate, pixel count only
    resident: int = 0  # what an instance holds before any image (MEMORY_RESERVED_MB)

    def check(self, info: Any, object_bytes: int) -> int | str:
        from headseg.function import images, memory, normalize
        from headseg.function.errors import InvalidImage

        if object_bytes > self.max_object_bytes:
            return f"object {object_bytes} bytes > MAX_OBJECT_BYTES"
        limits = dataclasses.replace(normalize.Limits(), max_pixels=self.max_pixels)
        allowed = int(self.memory_mb * MIB * self.fraction) - self.resident - object_bytes
        try:
            normalize.check_pixels(info, limits)
            images.check_min_side(info, limits.min_side)
            if not self.decode_gate:
                return memory.decode_cost(info, limits.max_side)
            return memory.check_decode_cost(info, allowed, max_side=limits.max_side)
        except InvalidImage as exc:
            return exc.code


def header(path: Path) -> Any:
    """What the pipeline reads of the object: the header from its first bytes (all of them when needed)."""
    from headseg.function import images

    data = path.read_bytes()
    head = data[: images.HEADER_BYTES]
    with warnings.catch_warnings():  # Pillow warns of the EXIF block a TIFF's first bytes cut short
        warnings.simplefilter("ignore")
        try:
            return images.read_header(head, complete=len(head) >= len(data))
        except images.NeedMoreBytes:
            return images.read_header(data, complete=True)


def largest_accepted(kind: Kind, gates: Gates) -> tuple[Path, Any, int]:
    """The largest image of `kind` the gates accept: (path, its header, the gate's estimate). Raises
    `InvalidImage` when its header is refused whatever its size."""
    sample = encoded(kind, *SAMPLE)
    template = header(sample)
    per_pixel = sample.stat().st_size / (SAMPLE[0] * SAMPLE[1]) * 1.05  # the object's bytes, with a little room

    def accepts(pixels: float) -> bool:
        width, height = size_4_3(pixels)
        info = header_model(template, sample, width, height)
        return isinstance(gates.check(info, int(per_pixel * width * height)), int)

    pixels, step = 1e6, 1e6  # doubling until refused, then halving the step: about 1 % of the largest
    while accepts(pixels + step):  # MAX_PIXELS bounds it
        pixels, step = pixels + step, step * 2
    while step > pixels / 100:
        step /= 2
        if accepts(pixels + step):
            pixels += step
    for _ in range(4):  # the real file: its own header and size decide
        path = encoded(kind, *size_4_3(pixels))
        info = header(path)
        estimate = gates.check(info, path.stat().st_size)
        if isinstance(estimate, int):
            return path, info, estimate
        pixels *= 0.97
    raise RuntimeError(f"{kind.name}: no accepted size found near {pixels / 1e6:.1f} MP ({estimate})")


def header_model(template: Any, sample: Path, width: int, height: int) -> Any:
    """The sample's header as it would read at another size: a TIFF's strip grows with the width, and with the
    height when it holds every row; a tile stays as it is."""
    info = dataclasses.replace(template, width=width, height=height)
    if not template.strip_bytes:
        return info
    from PIL import Image

    with Image.open(sample) as image:
        tags = image.tag_v2
        if 322 in tags:  # tiled
            return info
        rows = min(int(tags.get(278, template.height)), template.height)
    strip = template.strip_bytes / rows * width / template.width * (height if rows >= template.height else rows)
    return dataclasses.replace(info, strip_bytes=math.ceil(strip))


@dataclasses.dataclass(frozen=True)
class Measured:
    """A fresh process's figures: its whole VmHWM (bytes), what normalize() added to what it held before (its
    own peak, as `decode_cost` models it), seconds taken, the normalized size."""

    peak: int
    own: int = 0
    seconds: float = 0.0
    normalized: str = ""


def measure(path: Path | None) -> Measured:
    """What the function's process takes for the object at `path` (None: the baseline, the imports alone)."""
    started = time.perf_counter()
    argv = [sys.executable, "-c", MEASURE, str(path) if path else "-", str(ROOT / "src"), str(ROOT)]
    result = subprocess.run(argv, capture_output=True, text=True, check=True)
    peak, own, *normalized = [*result.stdout.split(), "0"][:4] if path else [result.stdout.strip(), "0"]
    return Measured(int(peak), int(own), time.perf_counter() - started, "x".join(normalized))


def s_yaml() -> tuple[int, int]:
    """memorySize (MB) and MAX_OBJECT_BYTES from s.yaml."""
    import yaml

    props = yaml.safe_load((ROOT / "s.yaml").read_text(encoding="utf-8"))["resources"]["headseg"]["props"]
    return int(props["memorySize"]), int(props["environmentVariables"]["MAX_OBJECT_BYTES"])


def megabytes(count: float, decimals: int = 0) -> str:
    return f"{count / MIB:.{decimals}f} MB"


def run() -> list[str]:
    from headseg.function.config import MAX_DOWNLOAD_WORKERS, Config
    from headseg.function.errors import InvalidImage

    memory_mb, max_object_bytes = s_yaml()
    memory = memory_mb * MIB
    baseline = measure(None).peak
    reserved = Config.memory_reserved_mb * MIB
    gates = Gates(memory_mb, Config.memory_fraction, max_object_bytes, Config.max_pixels, resident=reserved)
    rows = [
        (
            f"| kind | image | object | gate estimate | peak (whole process) | peak ÷ {memory_mb} MB | "
            "(peak − baseline − object) ÷ estimate | normalize()'s own peak ÷ estimate |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| baseline: the imports alone | - | - | - | {megabytes(baseline)} | {baseline / memory:.2f} | - | - |",
    ]
    worst: tuple[float, str] = (0.0, "")
    for kind in kinds():
        try:
            path, info, estimate = largest_accepted(kind, gates)
        except InvalidImage as exc:
            rows.append(f"| {kind.name} | refused at any size: {exc.code} ({exc.message}) | | | | | | |")
            continue
        measured = measure(path)
        size = path.stat().st_size
        mode = f"{info.mode}{' progressive' if info.progressive else ''}"
        rows.append(
            f"| {kind.name} | {info.width}x{info.height} {mode}, {info.width * info.height / 1e6:.1f} MP | "
            f"{megabytes(size, 1)} | {megabytes(estimate)} | {megabytes(measured.peak)} | "
            f"{measured.peak / memory:.2f} | {(measured.peak - baseline - size) / estimate:.2f} | "
            f"{measured.own / estimate:.2f} |"
        )
        worst = max(worst, (measured.peak, kind.name))
    rows += old_gate(gates, baseline, memory_mb)
    cutouts, worst_cutouts = p3_cutouts.rows(memory_mb, MAX_DOWNLOAD_WORKERS)
    rows += ["", *cutouts]
    peak, name = max(worst, worst_cutouts)
    rows.append(
        f"\nP3 worst accepted input: {megabytes(peak)} ÷ {memory_mb} MB = {peak / memory:.2f} (goal ≤ "
        f"{gates.fraction}); the worst is the {name}, the imports alone take {megabytes(baseline)}."
    )
    return rows


def old_gate(gates: Gates, baseline: int, memory_mb: int) -> list[str]:
    """What the old gate (pixel count only) accepted of the kind with the highest estimate at MAX_PIXELS, of
    OLD_GATE_KINDS."""
    old = dataclasses.replace(gates, decode_gate=False)
    width, height = size_4_3(old.max_pixels)
    costs = []
    for kind in kinds():
        if kind.name in OLD_GATE_KINDS:
            template = header(encoded(kind, *SAMPLE))
            costs.append((old.check(dataclasses.replace(template, width=width, height=height), 0), kind.name, kind))
    estimate, name, kind = max(cost for cost in costs if isinstance(cost[0], int))
    whole, size, own, mine = baseline + estimate, "-", "-", "-"
    if whole > OLD_GATE_MEASURE_LIMIT:
        measured = f"not measured (over {megabytes(OLD_GATE_MEASURE_LIMIT)}): ~{megabytes(whole)} with the imports"
        ratio = f"~{whole / (memory_mb * MIB):.2f}"
    else:
        path = encoded(kind, width, height)
        figures = measure(path)
        object_bytes = path.stat().st_size
        size, own = megabytes(object_bytes, 1), f"{(figures.peak - baseline - object_bytes) / estimate:.2f}"
        measured = f"{megabytes(figures.peak)} (in {figures.seconds:.0f} s)"
        ratio, mine = f"{figures.peak / (memory_mb * MIB):.2f}", f"{figures.own / estimate:.2f}"
    return [
        (
            f"| old gate (MAX_PIXELS only): {name} | {width}x{height}, {width * height / 1e6:.0f} MP | {size} | "
            f"{megabytes(estimate)} | {measured} | {ratio} | {own} | {mine} |"
        )
    ]


if __name__ == "__main__":
    print("\n".join(run()))
