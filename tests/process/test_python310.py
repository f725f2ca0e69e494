"""FC runs python3.10: nothing in src/ may need a newer Python."""

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def test_src_needs_no_python_newer_than_3_10():
    result = subprocess.run(
        [str(Path(sys.executable).with_name("vermin")), "-t=3.10-", "--no-tips", "--violations", "--eval-annotations", str(SRC)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
