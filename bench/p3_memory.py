"""P3 memory: the worst accepted input's peak memory ÷ the function's memory (s.yaml's memorySize). Goal ≤ 0.6.

"Accepted" is what passes the pipeline's gates at that memory: MAX_OBJECT_BYTES (s.yaml), `read_header`,
`check_pixels` (MAX_PIXELS) and `memory.check_fits`: `check_decode_cost` against memorySize × MEMORY_FRACTION
(0.6) less MEMORY_RESERVED_MB (what an instance holds before any image; the baseline below measures it) and
the object's bytes. For each kind of input the largest 4:3 photo-like image (gradients with fine grain) the gates
accept is found by doubling, then halving the step, over megapixels with the gates on a header model (a small
sample's header and bytes per pixel); it is then generated (cached under the temp dir) and checked with its own
header and size. A fresh process does what the function does with it: the function's imports (the handler, the
OSS and imageseg SDKs, Pillow), the whole object read, `read_header` on its first bytes, `normalize`; its peak
is the whole process's VmHWM, nothing subtracted (the function's memory is the whole instance). The baseline is
the same process with the imports only. MB are MiB, as FC's memorySize. For comparison, the worst kind at the
old gate (pixel count only, MAX_PIXELS 100 MP), measured when its estimate stays under 2 GB.
"""

from __future__ import annotations

import dataclasses
import io
import math
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._fakes import ROOT

MIB = 1024 * 1024
CACHE = Path(tempfile.gettempdir()) / "headseg-bench-p3"
CONTENT = "v1"  # part of the cached files' names: change it when the content changes
SAMPLE = (2000, 1500)
OLD_GATE_MEASURE_LIMIT = 2 * 1024 * MIB  # measure the old gate's worst only under this estimate (whole process)

MEASURE = r"""
import sys
sys.path[:0] = [sys.argv[2], sys.argv[3]]
import index  # the handler and what it imports at start; then what the first invocation loads
import oss2, requests
from alibabacloud_imageseg20191230 import models
from alibabacloud_imageseg20191230.client import Client
from headseg.segmenters import cloud
from headseg.storage import oss
from headseg import images, normalize
import PIL.Image
PIL.Image.init()
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
normalized = normalize.normalize(data, normalize.Limits())
print(status("VmHWM"), normalized.width, normalized.height)
"""


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str
    ext: str
    encode: Callable[[Any, io.BytesIO], None]  # a photo-like RGB image -> the kind's bytes


def _kinds() -> list[Kind]:
    def heic(image: Any, out: io.BytesIO) -> None:
        import pillow_heif  # the encoder (pi-heif, the function's, only decodes)

        pillow_heif.register_heif_opener()
        image.save(out, "HEIF", quality=50, enc_params={"preset": "ultrafast"})

    def gray16(image: Any) -> Any:
        return image.convert("L").convert("I").point(lambda value: value * 257).convert("I;16")

    def rgba(image: Any) -> Any:
        from PIL import Image

        rgba = image.convert("RGBA")
        rgba.putalpha(image.getchannel("R").transpose(Image.Transpose.FLIP_TOP_BOTTOM))  # a gradient of alpha
        return rgba

    return [
        Kind("baseline JPEG", "jpg", lambda im, out: im.save(out, "JPEG", quality=90)),
        Kind("progressive JPEG", "jpg", lambda im, out: im.save(out, "JPEG", quality=90, progressive=True)),
        Kind("PNG RGB", "png", lambda im, out: im.save(out, "PNG", compress_level=1)),
        Kind("PNG RGBA", "png", lambda im, out: rgba(im).save(out, "PNG", compress_level=1)),
        Kind("WebP", "webp", lambda im, out: im.save(out, "WEBP", quality=80, method=0)),
        Kind("HEIC", "heic", heic),
        Kind("TIFF (LZW)", "tif", lambda im, out: im.save(out, "TIFF", compression="tiff_lzw")),
        Kind("16-bit PNG", "png", lambda im, out: gray16(im).save(out, "PNG", compress_level=1)),
        Kind("CMYK JPEG", "jpg", lambda im, out: im.convert("CMYK").save(out, "JPEG", quality=90)),
    ]


def photo(width: int, height: int) -> Any:
    """Photo-like content: smooth gradients with fine grain, about what a phone writes."""
    from PIL import Image, ImageFilter

    base = Image.linear_gradient("L").resize((width, height))
    grain = Image.effect_noise((width, height), 12).filter(ImageFilter.BoxBlur(1))
    return Image.merge("RGB", (base, grain, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))


def encoded(kind: Kind, width: int, height: int) -> Path:
    """The kind's image of this size, generated once and cached."""
    slug = kind.name.lower().replace(" ", "-").replace("(", "").replace(")", "")
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
    kind = next(kind for kind in _kinds() if kind.name == name)
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
        from headseg import images, normalize
        from headseg.errors import InvalidImage

        if object_bytes > self.max_object_bytes:
            return f"object {object_bytes} bytes > MAX_OBJECT_BYTES"
        limits = dataclasses.replace(normalize.Limits(), max_pixels=self.max_pixels)
        allowed = int(self.memory_mb * MIB * self.fraction) - self.resident - object_bytes
        try:
            normalize.check_pixels(info, limits)
            images.check_min_side(info, limits.min_side)
            if not self.decode_gate:
                return normalize.decode_cost(info, limits.max_side)
            return normalize.check_decode_cost(info, allowed, max_side=limits.max_side)
        except InvalidImage as exc:
            return exc.code


def header(path: Path) -> Any:
    """What the pipeline reads of the object: the header from its first bytes (all of them when needed)."""
    from headseg import images

    data = path.read_bytes()
    head = data[: images.HEADER_BYTES]
    with warnings.catch_warnings():  # Pillow warns of the EXIF block a TIFF's first bytes cut short
        warnings.simplefilter("ignore")
        try:
            return images.read_header(head, complete=len(head) >= len(data))
        except images.NeedMoreBytes:
            return images.read_header(data, complete=True)


def largest_accepted(kind: Kind, gates: Gates) -> tuple[Path, Any, int]:
    """The largest image of `kind` the gates accept: (path, its header, the gate's estimate)."""
    sample = encoded(kind, *SAMPLE)
    template = header(sample)
    per_pixel = sample.stat().st_size / (SAMPLE[0] * SAMPLE[1]) * 1.05  # the object's bytes, with a little room

    def accepts(pixels: float) -> bool:
        width, height = size_4_3(pixels)
        info = dataclasses.replace(template, width=width, height=height)
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


def measure(path: Path | None) -> tuple[int, float, str]:
    """(the fresh process's VmHWM in bytes, seconds it took, the normalized size) for `path` (None: baseline)."""
    started = time.perf_counter()
    argv = [sys.executable, "-c", MEASURE, str(path) if path else "-", str(ROOT / "src"), str(ROOT)]
    result = subprocess.run(argv, capture_output=True, text=True, check=True)
    peak, *normalized = result.stdout.split()
    return int(peak), time.perf_counter() - started, "x".join(normalized)


def s_yaml() -> tuple[int, int]:
    """memorySize (MB) and MAX_OBJECT_BYTES from s.yaml."""
    import yaml

    props = yaml.safe_load((ROOT / "s.yaml").read_text(encoding="utf-8"))["resources"]["headseg"]["props"]
    return int(props["memorySize"]), int(props["environmentVariables"]["MAX_OBJECT_BYTES"])


def megabytes(count: float, decimals: int = 0) -> str:
    return f"{count / MIB:.{decimals}f} MB"


def run() -> list[str]:
    from headseg.config import Config

    memory_mb, max_object_bytes = s_yaml()
    memory = memory_mb * MIB
    baseline, _, _ = measure(None)
    reserved = Config.memory_reserved_mb * MIB
    gates = Gates(memory_mb, Config.memory_fraction, max_object_bytes, Config.max_pixels, resident=reserved)
    rows = [
        (
            f"| kind | image | object | gate estimate | peak (whole process) | peak ÷ {memory_mb} MB | "
            "(peak − baseline − object) ÷ estimate |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| baseline: the imports alone | - | - | - | {megabytes(baseline)} | {baseline / memory:.2f} | - |",
    ]
    worst: tuple[float, str] = (0.0, "")
    for kind in _kinds():
        path, info, estimate = largest_accepted(kind, gates)
        peak, _, _ = measure(path)
        size = path.stat().st_size
        mode = f"{info.mode}{' progressive' if info.progressive else ''}"
        rows.append(
            f"| {kind.name} | {info.width}x{info.height} {mode}, {info.width * info.height / 1e6:.1f} MP | "
            f"{megabytes(size, 1)} | {megabytes(estimate)} | {megabytes(peak)} | {peak / memory:.2f} | "
            f"{(peak - baseline - size) / estimate:.2f} |"
        )
        worst = max(worst, (peak, kind.name))
    rows += old_gate(gates, baseline, memory_mb)
    peak, name = worst
    rows.append(
        f"\nP3 worst accepted input: {megabytes(peak)} ÷ {memory_mb} MB = {peak / memory:.2f} (goal ≤ "
        f"{gates.fraction}); the worst is the {name}, the imports alone take {megabytes(baseline)}."
    )
    return rows


def old_gate(gates: Gates, baseline: int, memory_mb: int) -> list[str]:
    """What the old gate (pixel count only) accepted of the kind with the highest estimate at MAX_PIXELS."""
    old = dataclasses.replace(gates, decode_gate=False)
    width, height = size_4_3(old.max_pixels)
    costs = []
    for kind in _kinds():
        template = header(encoded(kind, *SAMPLE))
        costs.append((old.check(dataclasses.replace(template, width=width, height=height), 0), kind.name, kind))
    estimate, name, kind = max(cost for cost in costs if isinstance(cost[0], int))
    whole, size, own = baseline + estimate, "-", "-"
    if whole > OLD_GATE_MEASURE_LIMIT:
        measured = f"not measured (over {megabytes(OLD_GATE_MEASURE_LIMIT)}): ~{megabytes(whole)} with the imports"
        ratio = f"~{whole / (memory_mb * MIB):.2f}"
    else:
        path = encoded(kind, width, height)
        peak, seconds, _ = measure(path)
        size, own = megabytes(path.stat().st_size, 1), f"{(peak - baseline - path.stat().st_size) / estimate:.2f}"
        measured, ratio = f"{megabytes(peak)} (in {seconds:.0f} s)", f"{peak / (memory_mb * MIB):.2f}"
    return [
        (
            f"| old gate (MAX_PIXELS only): {name} | {width}x{height}, {width * height / 1e6:.0f} MP | {size} | "
            f"{megabytes(estimate)} | {measured} | {ratio} | {own} |"
        )
    ]


if __name__ == "__main__":
    print("\n".join(run()))
