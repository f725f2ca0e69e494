"""P3 memory: peak RSS growth while normalizing an 8000x6000 JPEG and refusing a decompression bomb ÷ the bytes
of the decoded 2000 px working image (1999x1499 RGB). Measured in a fresh process. Goal ≤ 3."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKING_IMAGE = 1999 * 1499 * 3

MEASURE = r"""
import sys
sys.path[:0] = [sys.argv[3], sys.argv[4]]
from headseg.normalize import Limits, normalize
from headseg.errors import InvalidImage
from tests.corpus import png_claiming
import PIL.Image, PIL.JpegImagePlugin, PIL.PngImagePlugin
photo = open(sys.argv[1], "rb").read()
bomb = png_claiming(100_000, 100_000)
def status(field: str) -> int:  # this address space's own figures: ru_maxrss would carry the parent's over exec
    line = next(line for line in open("/proc/self/status") if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024
before = status("VmRSS")
normalized = normalize(photo, Limits())
try:
    normalize(bomb, Limits())
except InvalidImage:
    pass
peak = status("VmHWM")
print(before, peak, normalized.width, normalized.height, " ".join(normalized.steps))
"""


def run() -> list[str]:
    from PIL import Image, ImageFilter

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "photo.jpg"
        # a photo-like 48 MP JPEG: smooth gradients with fine grain, about the size a phone writes
        base = Image.linear_gradient("L").resize((8000, 6000))
        grain = Image.effect_noise((8000, 6000), 12).filter(ImageFilter.BoxBlur(1))
        Image.merge("RGB", (base, grain, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT))).save(path, quality=90)
        size = path.stat().st_size
        result = subprocess.run([sys.executable, "-c", MEASURE, str(path), "", str(ROOT / "src"), str(ROOT)], capture_output=True, text=True, check=True)
    before, peak, width, height, *steps = result.stdout.split()
    growth = int(peak) - int(before)
    ratio = growth / WORKING_IMAGE
    return [
        "| input | normalized | peak RSS growth | working image | ratio |",
        "| --- | --- | --- | --- | --- |",
        f"| 8000x6000 JPEG, {size / 1e6:.1f} MB (+ a 100000x100000 bomb) | {width}x{height} | {growth / 1e6:.1f} MB | {WORKING_IMAGE / 1e6:.1f} MB | {ratio:.2f} |",
        f"\nP3 memory: {ratio:.2f} (goal ≤ 3); the input's own bytes ({size / 1e6:.1f} MB) are read before the measurement starts.",
    ]


if __name__ == "__main__":
    print("\n".join(run()))
