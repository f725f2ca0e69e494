"""The deploy package: built from wheels without Docker, no ML libraries, and the handler imports from it alone.

Builds from PyPI (reachable here; nothing else is): about 20 s.
"""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from headseg.ops import package

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


@pytest.mark.timeout(900)  # builds from PyPI: ~40 s idle, several times that on a loaded 2-core machine
@pytest.mark.parametrize("version", package.RUNTIMES)
def test_each_fc_runtime_runs_what_the_pre_deploy_step_builds(tmp_path, monkeypatch, version):
    python = package.find_python(version)
    if python is None:
        pytest.skip(f"no python{version} on this machine")
    arguments, path = s_yaml_pre_deploy(version)
    assert path == "./src"
    code = code_package(tmp_path)  # ./src, as `s deploy` packages it
    monkeypatch.chdir(code)
    assert package.main(arguments) == 0
    target = code / "python"
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
