"""P4 package: the built FC package (the code directory as the pre-deploy step leaves it and FC receives it,
zipped, bytecode included) ÷ its dependency floor (the imageseg SDK, Pillow and their requirements as their
wheels have them, zipped the same way, no bytecode). Goal ≤ 1.2, and no ML libraries.

Both are built by `headseg.ops.package` for python3.10 x86_64 in the same run; installed sizes are shown too, and
what the bytecode adds.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from headseg.ops import package

ROOT = Path(__file__).resolve().parent.parent
FLOOR = ["alibabacloud-imageseg20191230>=4.0.1,<5", "Pillow>=10.3"]


def zipped(folder: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        return Path(shutil.make_archive(str(Path(tmp) / "code"), "zip", folder)).stat().st_size


def size(folder: Path, pattern: str = "*") -> int:
    return sum(f.stat().st_size for f in folder.rglob(pattern) if f.is_file())


def run() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        code, floor = Path(tmp) / "code", Path(tmp) / "floor"
        shutil.copytree(ROOT / "src", code, ignore=shutil.ignore_patterns("python", "*.egg-info", ".fcignore"))
        package.install(code / "python", "3.10", code)  # what the pre-deploy step does
        package.build(floor / "python", FLOOR, tuned=False)  # the requirements as their wheels have them
        shipped = [name for name in package.FORBIDDEN if (code / "python" / name).exists()]
        built_installed, floor_installed, bytecode = size(code), size(floor), size(code, "*.pyc")
        built_zip, floor_zip = zipped(code), zipped(floor)
    ratio = built_zip / floor_zip
    return [
        "| | installed MB | zipped MB |",
        "| --- | --- | --- |",
        f"| FC package (pre-deploy step's code directory) | {built_installed / 1e6:.1f} | {built_zip / 1e6:.1f} |",
        f"| of which bytecode | {bytecode / 1e6:.1f} | |",
        f"| floor: imageseg SDK + Pillow | {floor_installed / 1e6:.1f} | {floor_zip / 1e6:.1f} |",
        f"\nP4 package: {ratio:.2f} zipped (goal ≤ 1.2), {built_installed / floor_installed:.2f} installed; "
        f"ML libraries shipped: {', '.join(shipped) or 'none'}.",
    ]


if __name__ == "__main__":
    print("\n".join(run()))
