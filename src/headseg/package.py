"""Build the FC code directory's dependencies for python3.10 x86_64 without Docker: `python -m headseg.package`.

uv resolves the target's wheels (`--python-platform/--python-version --only-binary :all:`), evaluating
environment markers for python3.10 (pip evaluates them for the interpreter it runs on and so drops
`async_timeout; python_version < "3.11"`). Several of the SDKs' dependencies exist only as source
distributions; they are pure Python, so pip first builds the tree into a wheelhouse with the C compiler
disabled (optional C speedups such as crcmod's fall back to their pure-Python code) and uv takes the pure
wheels from there with `--find-links`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

PLATFORM = "x86_64-manylinux2014"
PYTHON_VERSION = "3.10"
RUNTIMES = ("3.10", "3.12")  # FC 3.0's built-in Python runtimes headseg supports (s.yaml's `runtime` var)
#: The function's own runtime dependencies (headseg's core requirements; never the `local` extra).
FALLBACK_REQUIREMENTS = [
    "alibabacloud-imageseg20191230>=4.0.1,<5", "oss2>=2.18,<3", "Pillow>=10.3", "pi-heif>=0.18"
]


def requirements() -> list[str]:
    """headseg's core requirements as installed, or the pinned fallback when headseg is not installed."""
    try:
        declared = metadata.requires("headseg") or []
    except metadata.PackageNotFoundError:
        return list(FALLBACK_REQUIREMENTS)
    return [req for req in declared if "extra ==" not in req]


#: Installed parts the function never uses: test suites, and Pillow's AVIF codec (SegmentHead's inputs are
#: JPEG/PNG/BMP; what headseg transcodes is WebP, TIFF, GIF and HEIF). Pillow reports AVIF as unsupported.
TRIM = ("Crypto/SelfTest", "websocket/tests", "certifi/tests", "PIL/_avif.*.so", "pillow.libs/libavif-*")
#: What must never ship in the function: the offline engine's libraries (and what drags them in).
FORBIDDEN = ("mediapipe", "numpy", "jax", "jaxlib", "scipy", "cv2", "tensorflow", "torch", "matplotlib")


def build(target: Path, requirements: list[str], python_version: str = PYTHON_VERSION, trim: bool = True) -> int:
    """Install `requirements` for FC's Python on x86_64 into `target` (without what the function never uses,
    unless `trim` is off); returns the installed size in bytes."""
    pip = [sys.executable, "-m", "pip"]
    uv = [sys.executable, "-m", "uv"]
    target = target.resolve()
    if target.exists():
        shutil.rmtree(target)
    with tempfile.TemporaryDirectory(prefix="headseg-wheels-") as wheelhouse:
        env = {**os.environ, "CC": "false", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        subprocess.run(
            [*pip, "wheel", "--quiet", "--no-cache-dir", "--wheel-dir", wheelhouse, *requirements], check=True, env=env
        )
        subprocess.run(
            [
                *uv, "pip", "install", "--quiet", "--target", str(target), "--python-platform", PLATFORM,
                "--python-version", python_version, "--only-binary", ":all:", "--find-links", wheelhouse,
                *requirements,
            ],
            check=True,
            env=env,
        )
    trimmed = (p for pattern in TRIM for p in target.glob(pattern)) if trim else ()
    for junk in [*target.rglob("__pycache__"), target / "bin", *trimmed]:
        if junk.is_dir():
            shutil.rmtree(junk)
        else:
            junk.unlink(missing_ok=True)
    shipped = sorted(name for name in FORBIDDEN if (target / name).exists())
    if shipped:
        raise SystemExit(f"headseg package: {', '.join(shipped)} must not ship in the function; check the requirements")
    return sum(f.stat().st_size for f in target.rglob("*") if f.is_file())


def install(target: Path, python_version: str = PYTHON_VERSION) -> str:
    """Build the function's dependencies into `target`; returns the line that says what was installed."""
    size = build(target, requirements(), python_version)
    return f"installed {', '.join(requirements())} for python{python_version} {PLATFORM} into {target}: {size / 1e6:.1f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="headseg package", description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="python", help="directory to install into (default: ./python)")
    parser.add_argument("--python-version", default=PYTHON_VERSION, help=f"the runtime's Python (default {PYTHON_VERSION})")
    parser.add_argument("--runtime", help="FC's runtime name instead, e.g. python3.12 (what s.yaml's runtime says)")
    args = parser.parse_args(argv)
    version = args.runtime.removeprefix("python") if args.runtime else args.python_version
    if version not in RUNTIMES:
        parser.error(f"runtime python{version} is not one headseg supports: {', '.join('python' + v for v in RUNTIMES)}")
    print(install(Path(args.target), version))
    return 0


if __name__ == "__main__":
    sys.exit(main())
