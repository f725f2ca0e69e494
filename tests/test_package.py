"""The deploy package: built from wheels without Docker, no ML libraries, and the handler imports from it alone.

Builds from PyPI (reachable here; nothing else is): about 20 s.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from headseg import package

SRC = Path(__file__).resolve().parent.parent / "src"


def _python(version: str) -> str | None:
    """A Python `version` that runs (one of FC's runtimes), if this machine has one: pyenv's, or one on PATH."""
    name = f"python{version}"
    candidates = [*map(str, sorted(Path.home().glob(f".pyenv/versions/{version}*/bin/{name}"))), shutil.which(name)]
    check = f"import sys; assert sys.version_info[:2] == {tuple(map(int, version.split('.')))}"
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", check], capture_output=True).returncode == 0:
            return candidate
    return None

CHECK = (
    "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import index, oss2, PIL.Image, pi_heif; "
    "import alibabacloud_imageseg20191230.client; from headseg.storage.oss import OssStorage; "
    "from headseg.segmenters.cloud import CloudSegmenter; "
    "import importlib.util as u; assert u.find_spec('numpy') is None and u.find_spec('mediapipe') is None; "
    # what the function decodes still decodes once the package is trimmed
    "import io; from PIL import Image, features; from headseg.images import register_heif; register_heif(); "
    "[Image.open(io.BytesIO((lambda b: (Image.new('RGB', (40, 30)).save(b, f), b.getvalue())[1])(io.BytesIO()))).load() "
    "for f in ('JPEG', 'PNG', 'BMP', 'WEBP', 'TIFF', 'GIF')]; assert not features.check('avif'); "
    "print(index.handler.__module__)"
)


def build_and_import(python: str, version: str, target: Path) -> subprocess.CompletedProcess[str]:
    size = package.build(target, package.requirements(), version)
    assert 20e6 < size < 120e6  # the SDKs and Pillow: tens of MB, never the offline engine's GB
    assert not [name for name in package.FORBIDDEN if (target / name).exists()]
    # -I -S: a clean interpreter: no site-packages at all, no environment; only the stdlib and the package
    return subprocess.run([python, "-I", "-S", "-c", CHECK, str(target), str(SRC)], capture_output=True, text=True, env={"PATH": os.environ["PATH"]})


def test_the_handler_imports_from_the_package_alone(tmp_path):
    version = ".".join(platform.python_version_tuple()[:2])
    base = str(Path(sys.base_prefix) / "bin" / f"python{version}")  # the interpreter behind this venv
    result = build_and_import(base, version, tmp_path / "python")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "headseg.handler"


@pytest.mark.parametrize("version", package.RUNTIMES)
def test_each_fc_runtime_imports_it_too(tmp_path, version):
    python = _python(version)
    if python is None:
        pytest.skip(f"no python{version} on this machine")
    result = build_and_import(python, version, tmp_path / "python")
    assert result.returncode == 0, result.stderr
