"""Build the FC code directory's dependencies for python3.10 x86_64 without Docker: `python -m headseg.ops.package`.

uv resolves the target's wheels (`--python-platform/--python-version --only-binary :all:`), evaluating
environment markers for python3.10 (pip evaluates them for the interpreter it runs on and so drops
`async_timeout; python_version < "3.11"`). Several of the SDKs' dependencies exist only as source
distributions; they are pure Python, so pip first builds the tree into a wheelhouse with the C compiler
disabled (optional C speedups such as crcmod's fall back to their pure-Python code) and uv takes the pure
wheels from there with `--find-links`.

The dependencies get two changes for speed: crcmod, which oss2 checks every transfer's CRC64 with and whose
sdist builds pure-Python (~8 MB/s), is swapped for crcmod-plus, its maintained fork with C wheels for every
runtime (`SWAPS`); and everything is compiled to bytecode by the runtime's own interpreter, since FC's /code is
read-only and Python would otherwise recompile ~880 modules on every cold start. The dependencies' bytecode is
unchecked-hash (the directory is rebuilt whole, never edited); headseg's own (`--code`) is checked-hash, so a
stale file is never run, wherever the tree is used. Without an interpreter of the runtime's version on this
machine the package ships without bytecode, and says so.

Before anything slow, `tools` checks what the build needs (Python 3.10+, pip, uv) and stops with one line naming
what is missing; a step that fails later is one line too. Two builds from the same sources and wheels are
byte-identical (`headseg.ops.reproducible`), so `s deploy` uploads nothing when nothing changed; `--zip` writes
the package as fc3 zips it and prints its SHA-256, to compare two builds.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Iterator

from headseg.ops import reproducible

PLATFORM = "x86_64-manylinux2014"
PYTHON_VERSION = "3.10"
RUNTIMES = ("3.10", "3.12")  # FC 3.0's built-in Python runtimes headseg supports (s.yaml's `runtime` var)
#: The function's own runtime dependencies (headseg's core requirements; never the `local` extra).
FALLBACK_REQUIREMENTS = [
    "alibabacloud-imageseg20191230>=4.0.1,<5", "oss2>=2.18,<3", "Pillow>=10.3", "pi-heif>=0.18", "urllib3>=2.3,<3"
]


def requirements() -> list[str]:
    """headseg's core requirements as installed, or the pinned fallback when headseg is not installed."""
    try:
        declared = metadata.requires("headseg") or []
    except metadata.PackageNotFoundError:
        return list(FALLBACK_REQUIREMENTS)
    return [req for req in declared if "extra ==" not in req]


#: Installed parts the function never uses: test suites; Pillow's AVIF codec (SegmentHead's inputs are
#: JPEG/PNG/BMP; what headseg transcodes is WebP, TIFF, GIF and HEIF), its font rendering and Tk bridge (Pillow
#: reports them as unsupported); pycryptodome's elliptic-curve and post-quantum keys (oss2 uses RSA and AES).
TRIM = (
    "Crypto/SelfTest", "websocket/tests", "certifi/tests",
    "PIL/_avif.*.so", "pillow.libs/libavif-*",
    "PIL/_imagingft.*.so", "pillow.libs/libfreetype-*", "pillow.libs/libharfbuzz-*", "pillow.libs/libbrotli*",
    "PIL/_imagingtk.*.so",
    "Crypto/PublicKey/_ec_*", "Crypto/PublicKey/_ed*", "Crypto/PublicKey/_curve*", "Crypto/PublicKey/_ml*",
)
#: Pure-Python sdists replaced in the package by a fork with C wheels: {dropped: replacement}.
SWAPS = {"crcmod": "crcmod-plus>=2.3.6,<3"}
#: What must never ship in the function: the offline engine's libraries (and what drags them in).
FORBIDDEN = ("ai_edge_litert", "mediapipe", "numpy", "jax", "jaxlib", "scipy", "cv2", "tensorflow", "torch", "matplotlib")
UV_MINIMUM = (0, 5)
#: Where FC runs the code from: the path compiled into the bytecode (and shown in its tracebacks).
RUNTIME_CODE = "/code"


def tools() -> list[str]:
    """The uv command, after checking every tool the build needs; a missing one stops the build at once with one
    line saying what to install (never two minutes later with a traceback)."""
    here = f"{sys.executable} (Python {platform.python_version()})"
    if sys.version_info < (3, 10):
        raise SystemExit(f"headseg package: needs Python 3.10 or newer to run; {here} is older")
    if importlib.util.find_spec("pip") is None:
        raise SystemExit(f"headseg package: pip is missing from {here}: `{sys.executable} -m ensurepip` or install python3-pip")
    uv = [sys.executable, "-m", "uv"] if importlib.util.find_spec("uv") is not None else [shutil.which("uv") or ""]
    if not uv[0]:
        raise SystemExit(f"headseg package: uv is missing (it resolves wheels for FC's runtime): `{sys.executable} -m pip install 'uv>=0.5'`")
    found = subprocess.run([*uv, "--version"], capture_output=True, text=True)
    version = re.match(r"uv (\d+)\.(\d+)", found.stdout)
    if found.returncode != 0 or version is None or tuple(map(int, version.groups())) < UV_MINIMUM:
        said = (found.stdout or found.stderr).strip() or f"exit status {found.returncode}"
        raise SystemExit(f"headseg package: uv {'.'.join(map(str, UV_MINIMUM))} or newer is needed; `{' '.join(uv)} --version` says: {said}")
    return uv


def _run(command: list[str], what: str, env: dict[str, str]) -> None:
    """Run a build step (its own output shows); a failure is one line naming the step."""
    try:
        subprocess.run(command, check=True, env=env)
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"headseg package: {what} failed (exit status {exc.returncode}); its output is above") from None


def build(target: Path, requirements: list[str], python_version: str = PYTHON_VERSION, tuned: bool = True) -> int:
    """Install `requirements` for FC's Python on x86_64 into `target`, tuned (the SWAPS made, what the function
    never uses left out) unless `tuned` is off; returns the installed size in bytes."""
    uv = tools()
    pip = [sys.executable, "-m", "pip"]
    target = target.resolve()
    if target.exists():
        shutil.rmtree(target)
    with tempfile.TemporaryDirectory(prefix="headseg-wheels-") as wheelhouse:
        env = {**os.environ, "CC": "false", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        _run([*pip, "wheel", "--quiet", "--no-cache-dir", "--wheel-dir", wheelhouse, *requirements], "building wheels with pip", env=env)
        overrides = Path(wheelhouse) / "overrides.txt"  # a requirement whose marker never holds drops the package
        overrides.write_text("".join(f'{name} ; python_version < "0"\n' for name in SWAPS if tuned))
        _run(
            [
                *uv, "pip", "install", "--quiet", "--target", str(target), "--python-platform", PLATFORM,
                "--python-version", python_version, "--only-binary", ":all:", "--find-links", wheelhouse,
                "--override", str(overrides), *requirements, *(SWAPS.values() if tuned else ()),
            ],
            "installing for the runtime with uv",
            env=env,
        )
    reproducible.drop_install_records(target)
    trimmed = (p for pattern in TRIM for p in target.glob(pattern)) if tuned else ()
    for junk in [*target.rglob("__pycache__"), target / "bin", *trimmed]:
        if junk.is_dir():
            shutil.rmtree(junk)
        else:
            junk.unlink(missing_ok=True)
    reproducible.normalize_modes(target)
    shipped = sorted(name for name in FORBIDDEN if (target / name).exists())
    if shipped:
        raise SystemExit(f"headseg package: {', '.join(shipped)} must not ship in the function; check the requirements")
    return sum(f.stat().st_size for f in target.rglob("*") if f.is_file())


def find_python(version: str) -> str | None:
    """An interpreter of Python `version` (one of FC's runtimes) on this machine: pyenv's, one on PATH, or one
    uv knows (`uv python install 3.10` provides one), asked in that order."""
    check = f"import sys; assert sys.version_info[:2] == {tuple(map(int, version.split('.')))}"
    for candidate in _pythons(version):
        if subprocess.run([candidate, "-c", check], capture_output=True).returncode == 0:
            return candidate
    return None


def _pythons(version: str) -> Iterator[str]:
    name = f"python{version}"
    yield from map(str, sorted(Path.home().glob(f".pyenv/versions/{version}*/bin/{name}")))
    on_path = shutil.which(name)
    if on_path:
        yield on_path
    found = subprocess.run([sys.executable, "-m", "uv", "python", "find", "--no-project", version], capture_output=True, text=True)
    if found.returncode == 0 and found.stdout.strip():
        yield found.stdout.strip()


#: Run by the runtime's interpreter on the built package (argv: the package, a folder holding headseg): import
#: what the function imports before its first event (what index.py does, then the initializer's warm-up, with
#: placeholder settings and credentials: no network), and what unusual inputs reach (Pillow's other plugins,
#: the normalizer); print the file of every module that ran.
PROBE = """
import sys, types
sys.path[:0] = sys.argv[1:3]
from headseg.function import defer
defer.install()
import headseg.function.handler, headseg.function.normalize
from headseg.function.app import App
from headseg.function.config import Config
from PIL import Image
credentials = types.SimpleNamespace(access_key_id="probe", access_key_secret="probe", security_token="probe")
App(Config.from_env({"INPUT_PREFIX": "in/", "OUTPUT_PREFIX": "out/"})).warm(types.SimpleNamespace(credentials=credentials))
Image.init()
unrun = defer.unrun()  # reading a deferred module's attributes would run it
for name, module in list(sys.modules.items()):
    if name not in unrun:
        print(getattr(module, "__file__", None) or "")
"""


def imported_modules(python: str, target: Path) -> list[Path]:
    """The source files in `target` of the modules the function runs (PROBE, by the runtime's `python`)."""
    with tempfile.TemporaryDirectory(prefix="headseg-probe-") as tmp:
        (Path(tmp) / "headseg").symlink_to(Path(__file__).resolve().parent.parent)
        result = subprocess.run([python, "-I", "-S", "-B", "-c", PROBE, str(target), tmp], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"headseg package: the function's imports fail on {python}:\n{result.stderr[-3000:]}")
    root = target.resolve()
    files = {Path(line).resolve() for line in result.stdout.splitlines() if line.endswith(".py")}
    return sorted(f for f in files if root in f.parents)


def compile_bytecode(python: str, target: Path, code: Path | None) -> int:
    """Compile, with the runtime's `python`, the dependencies' modules the function runs (unchecked-hash: the
    rest stays source, compiled only if some rare path imports it) and headseg's code in `code` (its index.py
    and headseg/, checked-hash, after removing whatever bytecode was there); returns the number of modules.
    The bytecode is the same on every build: compiled with PYTHONHASHSEED=0 (frozensets are marshalled in hash
    order) and for the path FC runs it from (RUNTIME_CODE), not this machine's."""
    target = target.resolve()
    modules = imported_modules(python, target)
    code = code.resolve() if code is not None else None
    inside = code is not None and code in target.parents
    runtime_target = f"{RUNTIME_CODE}/{target.relative_to(code).as_posix()}" if code is not None and inside else f"{RUNTIME_CODE}/python"
    environment = {name: value for name, value in os.environ.items() if not name.startswith("PYTHON")}
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as listing:
        listing.write("".join(f"{module}\n" for module in modules))
        listing.flush()
        sources = [(["-i", listing.name], "unchecked-hash", target, runtime_target)]
        if code is not None:
            for cache in [code / "__pycache__", *(code / "headseg").rglob("__pycache__")]:
                shutil.rmtree(cache, ignore_errors=True)
            sources.append(([str(code / "index.py"), str(code / "headseg")], "checked-hash", code, RUNTIME_CODE))
        for paths, mode, here, there in sources:
            result = subprocess.run(
                [python, "-s", "-m", "compileall", "-qq", "-j", "0", "--invalidation-mode", mode, "-s", str(here), "-p", there, *paths],
                capture_output=True, text=True, cwd="/", env={**environment, "PYTHONHASHSEED": "0"},
            )
            if result.returncode != 0:
                raise SystemExit(f"headseg package: {python} could not compile {paths}:\n{result.stdout}{result.stderr}")
    reproducible.normalize_modes(target)
    if code is not None:
        for cache in [code / "__pycache__", *(code / "headseg").rglob("__pycache__")]:
            reproducible.normalize_modes(cache)
    return len(modules) + (len(list((code / "headseg").rglob("*.py"))) + 1 if code is not None else 0)


def install(target: Path, python_version: str = PYTHON_VERSION, code: Path | None = None) -> str:
    """Build the function's dependencies into `target` and compile them, with the code in `code`, for the
    runtime; returns what was installed (and, when there is no interpreter to compile with, the warning)."""
    python = find_python(python_version)
    size = build(target, requirements(), python_version)
    line = f"installed {', '.join(requirements())} for python{python_version} {PLATFORM} into {target}: {size / 1e6:.1f} MB"
    if python is None:
        return (
            f"{line}\nWARNING: no python{python_version} on this machine, so the package ships without bytecode and "
            f"every cold start recompiles it (about 0.7 s); install one (`uv python install {python_version}`) and rebuild"
        )
    count = compile_bytecode(python, target, code)
    return f"{line}; {count} modules compiled to bytecode by {python}"


def add_arguments(parser: argparse.ArgumentParser, target: str, code: str | None) -> None:
    """The options of `python -m headseg.ops.package` and `headseg package`, with their default directories."""
    parser.add_argument("--target", type=Path, default=Path(target), help=f"directory to install into (default: {target})")
    parser.add_argument(
        "--code", type=Path, default=code and Path(code),
        help=f"the code directory (holding index.py) to compile with it (default: {code or 'none'})",
    )
    parser.add_argument("--python-version", default=PYTHON_VERSION, help=f"the runtime's Python (default {PYTHON_VERSION})")
    parser.add_argument("--runtime", help="FC's runtime name instead, e.g. python3.12 (what s.yaml's runtime says)")
    parser.add_argument(
        "--zip", type=Path, metavar="OUT.zip",
        help="also zip the code directory as fc3 does (what .fcignore keeps, fixed times) and print its SHA-256",
    )


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Build the package the parsed options describe."""
    version = args.runtime.removeprefix("python") if args.runtime else args.python_version
    if version not in RUNTIMES:
        parser.error(f"runtime python{version} is not one headseg supports: {', '.join('python' + v for v in RUNTIMES)}")
    if args.code is not None and not (args.code / "index.py").is_file():
        parser.error(f"--code {args.code}: no index.py there; give the function's code directory")
    if args.zip is not None and args.code is None:
        parser.error("--zip zips the code directory: give --code")
    tools()
    print(install(args.target, version, args.code))
    if args.zip is not None:
        count, digest = reproducible.write_zip(args.code, args.zip)
        print(f"zipped {count} files of {args.code} into {args.zip} ({args.zip.stat().st_size / 1e6:.1f} MB): sha256 {digest}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m headseg.ops.package", description=__doc__.splitlines()[0])
    add_arguments(parser, "python", None)
    return run(parser, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
