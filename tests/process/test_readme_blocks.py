"""Every command block in the README runs, so no recipe can rot.

A ```sh block runs in a scratch folder holding the repository's samples, events and s.yaml, with this interpreter's
`headseg` first on PATH and as `.venv/bin/`: the block's own venv and install step is dropped (CI's fresh clone
runs that exact install, `.ci/run`), and the README's test command is CI's own. A block whose first line is
`# needs the cloud` (a deploy, an account's bucket) is only checked to be valid shell.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLOUD = "# needs the cloud"
INSTALL = re.compile(r"^python3 -m venv \.venv && \.venv/bin/pip install [^&]*&& ")
BLOCKS = re.findall(r"^```sh\n(.*?)^```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S | re.M)
TEST_COMMAND = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]


def runnable(block: str) -> str:
    """The block as this test runs it: the install dropped, the test command left to CI."""
    lines = [INSTALL.sub("", line) for line in block.splitlines() if line.strip() != TEST_COMMAND]
    return "\n".join(lines) + "\n"


def test_the_readme_has_blocks_and_every_cloud_block_says_so():
    assert len(BLOCKS) >= 5
    assert all(block.startswith(CLOUD) for block in BLOCKS if re.search(r"^\s*(s |aliyun )", block, flags=re.M))


@pytest.mark.timeout(900)
@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_each_readme_block_runs(number: int, tmp_path: Path):
    block = BLOCKS[number]
    if block.startswith(CLOUD):
        assert subprocess.run(["bash", "-n"], input=block, text=True).returncode == 0
        return
    for folder in ("tests/samples", "events"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    shutil.copy(ROOT / "s.yaml", tmp_path)
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    for tool in Path(sys.executable).parent.iterdir():
        (venv_bin / tool.name).symlink_to(tool)
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-euo", "pipefail"], input=runnable(block), text=True, capture_output=True, cwd=tmp_path, env=env, timeout=840
    )
    assert result.returncode == 0, f"README block {number}:\n{block}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
