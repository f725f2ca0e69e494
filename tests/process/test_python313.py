"""The offline engine and the command line on CPython 3.13, Debian 13's `python3`, whatever Python runs the
suite: a venv of its own gets `.[dev,local]` from PyPI, then runs the engine's and the command line's tests.
Skipped only where no python3.13 is installed (PATH, or pyenv's versions)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTS = ["tests/unit/test_local_engine.py", "tests/unit/test_headcut.py", "tests/unit/test_cli.py", "tests/unit/test_cut.py"]


def python313() -> str | None:
    """A python3.13 that runs (pyenv's shims on PATH may name one no version provides)."""
    candidates = [shutil.which("python3.13"), *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")))]
    check = "import sys; assert sys.version_info[:2] == (3, 13)"
    works = (c for c in candidates if c and subprocess.run([c, "-c", check], capture_output=True).returncode == 0)
    return next(works, None)


@pytest.mark.timeout(1800)
@pytest.mark.skipif(sys.version_info[:2] == (3, 13), reason="the suite itself runs on 3.13")
def test_the_engine_and_the_command_line_pass_on_python_3_13(tmp_path: Path):
    python = python313()
    if python is None:
        pytest.skip("no python3.13 here (PATH or ~/.pyenv/versions/3.13*)")
    venv = tmp_path / "venv313"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "-e", f"{ROOT}[dev,local]"], capture_output=True, text=True, timeout=1200
    )
    assert install.returncode == 0, install.stderr[-3000:]
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=--timeout=300", *TESTS],
        capture_output=True, text=True, cwd=ROOT, timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "3.13" in subprocess.run(
        [str(venv / "bin" / "python"), "--version"], capture_output=True, text=True
    ).stdout
