"""P4 package: the built FC package (the code directory as FC receives it, zipped) ÷ its dependency floor (the
imageseg SDK, Pillow and their requirements, zipped the same way). Goal ≤ 1.2, and no ML libraries.

Both are built by `headseg.package` for python3.10 x86_64 in the same run; installed sizes are shown too.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from headseg import package

ROOT = Path(__file__).resolve().parent.parent
FLOOR = ["alibabacloud-imageseg20191230>=4.0.1,<5", "Pillow>=10.3"]


def zipped(folder: Path, extra: Path | None = None) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "code"
        shutil.copytree(folder, stage / "python")
        if extra is not None:
            shutil.copytree(extra, stage / extra.name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        return Path(shutil.make_archive(str(Path(tmp) / "code"), "zip", stage)).stat().st_size


def run() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        built, floor = Path(tmp) / "package", Path(tmp) / "floor"
        built_installed = package.build(built, package.requirements())
        floor_installed = package.build(floor, FLOOR, trim=False)  # the requirements as their wheels have them
        shipped = [name for name in package.FORBIDDEN if (built / name).exists()]
        built_zip = zipped(built, ROOT / "src" / "headseg")
        floor_zip = zipped(floor)
    ratio = built_zip / floor_zip
    return [
        "| | installed MB | zipped MB |",
        "| --- | --- | --- |",
        f"| FC package (`headseg package` + src/headseg) | {built_installed / 1e6:.1f} | {built_zip / 1e6:.1f} |",
        f"| floor: imageseg SDK + Pillow | {floor_installed / 1e6:.1f} | {floor_zip / 1e6:.1f} |",
        f"\nP4 package: {ratio:.2f} zipped (goal ≤ 1.2), {built_installed / floor_installed:.2f} installed; "
        f"ML libraries shipped: {', '.join(shipped) or 'none'}.",
    ]


if __name__ == "__main__":
    print("\n".join(run()))
