"""The deploy package: built from wheels without Docker, no ML libraries, the handler imports from it alone, two
builds are byte-identical, and a missing tool stops the build at once in one line.

Builds from PyPI (reachable here; nothing else is): about a minute each, several on a loaded machine; the
pre-deploy builds are made once per runtime for the module and shared.
"""

from __future__ import annotations

import glob
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from headseg.ops import package, reproducible

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"


CHECK = (
    "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import index, oss2, PIL.Image, pi_heif; "
    "import alibabacloud_imageseg20191230.client; from headseg.function.storage.oss import OssStorage; "
    "from headseg.function.segmenters.cloud import CloudSegmenter; "
    "import importlib.util as u; assert not [m for m in ('numpy', 'ai_edge_litert', 'mediapipe') if u.find_spec(m)]; "
    # what the function decodes still decodes once the package is trimmed
    "import io; from PIL import Image, features; from headseg.function.images import register_heif; register_heif(); "
    "[Image.open(io.BytesIO((lambda b: (Image.new('RGB', (40, 30)).save(b, f), b.getvalue())[1])(io.BytesIO()))).load() "
    "for f in ('JPEG', 'PNG', 'BMP', 'WEBP', 'TIFF', 'GIF')]; Image.init(); "
    "assert not features.check('avif') and not features.check('freetype2'); "
    # what oss2's client-side encryption needs of pycryptodome is still there
    "from Crypto.PublicKey import RSA; from Crypto.Cipher import AES, PKCS1_OAEP; "
    "PKCS1_OAEP.new(RSA.generate(1024)); AES.new(bytes(16), AES.MODE_CTR, nonce=bytes(8)); "
    "print(index.handler.__module__)"
)


def code_package(tmp: Path) -> Path:
    """./src as `s deploy` packages it: every file its .fcignore does not leave out (gitignore's rules, which
    fc3 applies), without a built python/ folder or bytecode."""
    import pathspec

    spec = pathspec.GitIgnoreSpec.from_lines((SRC / ".fcignore").read_text().splitlines())
    code = tmp / "code"
    for path in SRC.rglob("*"):
        relative = path.relative_to(SRC).as_posix()
        if path.is_file() and not spec.match_file(relative) and not relative.startswith("python/") and "__pycache__" not in relative:
            (code / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, code / relative)
    return code


def test_the_code_package_holds_the_function_and_nothing_else(tmp_path):
    """No tooling, offline engine or command line ships: what is not the function is left out by .fcignore."""
    files = sorted(p.relative_to(code).as_posix() for code in [code_package(tmp_path)] for p in code.rglob("*") if p.is_file())
    assert {"index.py", "headseg/__init__.py", "headseg/function/handler.py", "headseg/function/storage/oss.py"} <= set(files)
    allowed = ("index.py", ".fcignore", "headseg/__init__.py", "headseg/py.typed")
    assert [name for name in files if not (name.startswith("headseg/function/") or name in allowed)] == []


def build_and_import(python: str, version: str, target: Path, code: Path) -> subprocess.CompletedProcess[str]:
    """Import the handler and what it runs from `target` and `code` alone (building `target` unless it is built)."""
    if not target.exists():
        size = package.build(target, package.requirements(), version)
        assert 20e6 < size < 120e6  # the SDKs and Pillow: tens of MB, never the offline engine's GB
        assert not [name for name in package.FORBIDDEN if (target / name).exists()]
    # -I -S: a clean interpreter: no site-packages at all, no environment; only the stdlib and the package
    return subprocess.run(
        [python, "-I", "-S", "-B", "-c", CHECK, str(target), str(code)], capture_output=True, text=True, env={"PATH": os.environ["PATH"]}
    )


@pytest.mark.timeout(900)  # builds from PyPI: ~40 s idle, several times that on a loaded 2-core machine
def test_the_handler_imports_from_the_package_alone(tmp_path):
    version = ".".join(platform.python_version_tuple()[:2])
    base = str(Path(sys.base_prefix) / "bin" / f"python{version}")  # the interpreter behind this venv
    result = build_and_import(base, version, tmp_path / "python", code_package(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "headseg.function.handler"


#: Run in the built code directory by its runtime: oss2's CRC64 runs in C (crcmod-plus ships its extension for
#: this interpreter: crcmod tells no one publicly which it runs), and the bytecode is what runs.
SHIPPED = (
    "import sys; sys.path[:0] = ['.', 'python']; import oss2, headseg.function.outcome; "
    "from importlib import machinery, metadata; "
    "assert [f for f in metadata.files('crcmod-plus') if f.name.endswith(tuple(machinery.EXTENSION_SUFFIXES))], "
    "'crcmod runs in pure Python'; "
    "crc = oss2.utils.Crc64(0); crc.update(b'123456789'); assert crc.crc == 0x995DC9BBDF1939FA, 'CRC-64/XZ check'; "
    "print(headseg.function.outcome.EDITED_AFTER_PACKAGING)"
)


def s_yaml_pre_deploy(runtime: str) -> tuple[list[str], str]:
    """The pre-deploy action s.yaml runs: its arguments to `headseg.ops.package` and the directory it runs in."""
    import yaml

    [action] = yaml.safe_load((ROOT / "s.yaml").read_text())["resources"]["headseg"]["actions"]["pre-deploy"]
    command = shlex.split(action["run"].replace("${vars.runtime}", f"python{runtime}"))
    assert command[:3] == ["python3", "-m", "headseg.ops.package"]
    return command[3:], action["path"]


def run_pre_deploy(version: str, root: Path) -> Path:
    """Run the pre-deploy step s.yaml runs for `version`, in ./src as `s deploy` packages it (copied under `root`),
    with `--zip root/package.zip`; returns the code directory it leaves."""
    arguments, path = s_yaml_pre_deploy(version)
    assert path == "./src"
    code = code_package(root)
    here = os.getcwd()
    os.chdir(code)
    try:
        assert package.main([*arguments, "--zip", str(root / "package.zip")]) == 0
    finally:
        os.chdir(here)
    return code


@pytest.fixture(scope="module")
def pre_deploy(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The code directory the pre-deploy step leaves for a runtime (python3.10, python3.12), built once."""
    built: dict[str, Path] = {}

    def build(version: str) -> Path:
        if version not in built:
            built[version] = run_pre_deploy(version, tmp_path_factory.mktemp(f"pre-deploy-{version}"))
        return built[version]

    return build


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.timeout(1800)  # two builds from PyPI: ~2 min idle, several times that on a loaded 2-core machine
def test_two_builds_of_the_package_are_byte_identical(pre_deploy, tmp_path):
    """fc3 uploads the code only when its zip's checksum changed, and its zip depends on the files' paths, bytes and
    modes: two builds in two directories, minutes apart, zip to the same bytes (bytecode included)."""
    first = pre_deploy("3.10")
    second = run_pre_deploy("3.10", tmp_path)
    assert first != second and sha256(first.parent / "package.zip") == sha256(tmp_path / "package.zip")
    with zipfile.ZipFile(tmp_path / "package.zip") as archive:
        names = set(archive.namelist())
    assert {"index.py", "headseg/function/handler.py", "python/oss2/api.py"} <= names
    assert not [name for name in names if name.startswith(("headseg/ops/", "headseg/cli/", "tests/"))]  # .fcignore holds
    assert not [name for name in names if name.endswith(reproducible.INSTALL_RECORDS)]
    if package.find_python("3.10") is not None:  # the bytecode is part of what must not differ
        assert "headseg/function/__pycache__/app.cpython-310.pyc" in names and "python/oss2/__pycache__/api.cpython-310.pyc" in names


#: Run by the runtime's interpreter in the built code directory: the bytecode names the paths FC runs it from.
COMPILED_FOR = (
    "import marshal, sys; from importlib.util import cache_from_source as c; "
    "print(*[marshal.loads(open(c(f), 'rb').read()[16:]).co_filename for f in sys.argv[1:]])"
)


@pytest.mark.timeout(900)  # builds from PyPI: ~40 s idle, several times that on a loaded 2-core machine
@pytest.mark.parametrize("version", package.RUNTIMES)
def test_each_fc_runtime_runs_what_the_pre_deploy_step_builds(pre_deploy, tmp_path, version):
    python = package.find_python(version)
    if python is None:
        pytest.skip(f"no python{version} on this machine")
    code = tmp_path / "code"
    shutil.copytree(pre_deploy(version), code, symlinks=True)  # the shared build, copied: this test edits it
    target = code / "python"
    compiled = subprocess.run([python, "-I", "-c", COMPILED_FOR, "python/oss2/api.py", "headseg/function/app.py"], capture_output=True, text=True, cwd=code)
    assert compiled.stdout.split() == ["/code/python/oss2/api.py", "/code/headseg/function/app.py"], compiled.stderr
    assert not [name for name in package.FORBIDDEN if (target / name).exists()]
    assert list(target.glob("crcmod_plus-*.dist-info")) and not list(target.glob("crcmod-*.dist-info"))
    tag = f"cpython-{version.replace('.', '')}"
    assert (code / "headseg" / "function" / "__pycache__" / f"app.{tag}.pyc").is_file() and (code / "__pycache__" / f"index.{tag}.pyc").is_file()
    assert not [pyc for pyc in code.rglob("*.pyc") if tag not in pyc.name]  # no other interpreter's bytecode
    assert build_and_import(python, version, target, code).returncode == 0
    # Dependencies: unchecked bytecode runs without its source being read (a broken source still imports)...
    (target / "oss2" / "api.py").write_text("this is not Python")
    # ...headseg's own is checked: an edited source runs, never its stale bytecode
    outcome = code / "headseg" / "function" / "outcome.py"
    outcome.write_text(outcome.read_text() + "\nEDITED_AFTER_PACKAGING = True\n")
    result = subprocess.run([python, "-I", "-S", "-B", "-c", SHIPPED], capture_output=True, text=True, cwd=code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True"]


def python_lacking(what: str, tmp_path: Path) -> str:
    """An interpreter the build cannot use: a fresh venv without uv (`uv`) or without pip (`pip`), or a Python
    older than 3.10 (`python`, skipped where there is none)."""
    if what == "python":
        older = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.[89].*/bin/python3.[89]")))
        if not older:
            pytest.skip("no Python older than 3.10 on this machine")
        return older[-1]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", *(["--without-pip"] if what == "pip" else []), str(venv)], check=True, capture_output=True)
    return str(venv / "bin" / "python")


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    "missing, words", [("uv", "uv is missing"), ("pip", "pip is missing"), ("python", "needs Python 3.10 or newer")]
)
def test_a_missing_tool_stops_the_pre_deploy_step_at_once_in_one_line(tmp_path, missing, words):
    """Checked before anything slow: not a wheel built, not a directory made, no traceback."""
    python = python_lacking(missing, tmp_path)
    no_uv = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "uv").exists())
    arguments, path = s_yaml_pre_deploy("3.10")
    assert arguments[0] == "--target"
    result = subprocess.run(
        [python, "-m", "headseg.ops.package", *arguments[:1], str(tmp_path / "python"), *arguments[2:]],
        cwd=ROOT / path, env={"PATH": no_uv, "HOME": str(tmp_path)}, capture_output=True, text=True, timeout=300,
    )
    [line] = result.stderr.splitlines()
    assert result.returncode == 1 and line.startswith("headseg package: ") and words in line, result.stderr
    assert not (tmp_path / "python").exists() and result.stdout == ""
