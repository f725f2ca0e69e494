"""A long listing goes on in a process of its own (`ops.apart`): `headseg status` as a program against the fake
OSS, on a bucket longer than what is listed in the command's own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from headseg.function.config import Config
from headseg.function.layout import Mark
from headseg.ops.apart import IN_PROCESS
from tests.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, BUCKET, SECURITY_TOKEN
from tests.fakes.oss import FakeOss, StoredObject

ROOT = Path(__file__).resolve().parents[2]
SOURCES = IN_PROCESS + 2_500
LAYOUT = Config(input_prefix="incoming/", output_prefix="heads/").layout


def seeded(oss: FakeOss) -> None:
    """SOURCES uploads, every third done (its mark), the prefix stamped: straight into the fake's state."""
    now = int(time.time())
    for i in range(SOURCES):
        key = f"incoming/{i:06d}.jpg"
        source = StoredObject(key, f"image {i}".encode(), "image/jpeg", now)
        oss.state.put(BUCKET, source)
        if i % 3 == 0:
            mark = LAYOUT(key).mark(Mark("done", source.etag, now, 1))
            oss.state.put(BUCKET, StoredObject(mark, b"mark", "text/plain", now))
    oss.put(BUCKET, "heads/.settled.json", json.dumps({"prefixes": ["incoming/"]}).encode())


def status(oss: FakeOss) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.upper().endswith("_PROXY")}
    env.update(PYTHONPATH=str(ROOT / "src"), ALIBABA_CLOUD_ACCESS_KEY_ID=ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET=ACCESS_KEY_SECRET,
               ALIBABA_CLOUD_SECURITY_TOKEN=SECURITY_TOKEN, INPUT_PREFIX="incoming/", OUTPUT_PREFIX="heads/")  # fmt: skip
    command = [sys.executable, "-m", "headseg", "status", "--bucket", BUCKET, "--prefix", "incoming/", "--oss-endpoint", oss.url, "--json"]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


def test_a_listing_longer_than_what_is_listed_here_goes_on_in_a_child_and_nothing_is_lost(fake_oss):
    seeded(fake_oss)
    result = status(fake_oss)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    done = len(range(0, SOURCES, 3))
    assert summary["counts"]["done"] == done and summary["counts"]["pending"] == SOURCES - done
    pending = [json.loads(line)["key"] for line in result.stdout.splitlines()[:-1]]
    assert pending == [f"incoming/{i:06d}.jpg" for i in range(SOURCES) if i % 3]  # in order, each once
    handed = [e.request.param("start-after") for e in fake_oss.logged(lambda r: r.param("prefix") == "incoming/")]
    assert f"incoming/{IN_PROCESS - 1:06d}.jpg" in handed  # the child listed on from the last key seen here


def test_a_failure_in_the_child_fails_the_command_with_its_reason(fake_oss):
    seeded(fake_oss)
    fake_oss.server_error(times=10**6, match=lambda r: bool(r.param("start-after")))
    result = status(fake_oss)
    assert result.returncode != 0
    assert "500" in result.stderr and "Traceback" not in result.stderr
