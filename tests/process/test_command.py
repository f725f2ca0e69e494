"""The `headseg` command run as a program, as a person runs it in a terminal."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import SAMPLES

NATIVE_LINES = ("TensorFlow Lite", "W0000", "absl::InitializeLog", "inference_feedback_manager")


@pytest.mark.parametrize("verbose", [False, True])
def test_native_log_lines_stay_off_the_progress_bar_unless_verbose(tmp_path, verbose):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(SAMPLES / "astronaut.jpg", photos)
    command = [str(Path(sys.executable).with_name("headseg")), *(["-v"] if verbose else []), "segment", str(photos), "--out", str(tmp_path / "out")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "1/1" in result.stderr  # the progress bar, still on stderr
    assert "1 image(s): 1 done" in result.stdout
    native = [line for line in result.stderr.splitlines() if any(mark in line for mark in NATIVE_LINES)]
    assert bool(native) is verbose, native


def test_cut_in_a_pipe_writes_only_the_cutout_to_standard_output(tmp_path):
    """`headseg cut - -o - < photo.jpg > head.png`: nothing but the PNG reaches the pipe, native lines included."""
    command = [str(Path(sys.executable).with_name("headseg")), "cut", "-", "-o", "-"]
    with (SAMPLES / "astronaut.jpg").open("rb") as photo:
        result = subprocess.run(command, stdin=photo, capture_output=True, timeout=300)
    assert result.returncode == 0 and result.stderr == b"", result.stderr

    png = result.stdout
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png.endswith(b"IEND\xaeB`\x82")  # one whole PNG, nothing else
    assert Image.open(io.BytesIO(png)).mode == "RGBA"
