"""The cold start: the initializer leaves the first event nothing to import or build; over the wire, in a fresh
interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, BUCKET, SECURITY_TOKEN, portrait

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "tests" / "instance.py"


def fresh_instance(cloud, events: int = 3) -> dict:  # type: ignore[no-untyped-def]
    """Run `events` one-head portraits through a fresh interpreter's `index` (this venv's SDKs); its report."""
    image = portrait(640, 480, [(250, 120, 140, 180)])
    keys = [f"incoming/cold-{i}.jpg" for i in range(events)]
    plan = {
        "bucket": BUCKET, "events": [[key, cloud.oss.put(BUCKET, key, image)] for key in keys], "warm": events - 1,
        "key_id": ACCESS_KEY_ID, "secret": ACCESS_KEY_SECRET, "token": SECURITY_TOKEN,
    }
    result = subprocess.run(
        [sys.executable, str(INSTANCE), "", str(ROOT / "src"), json.dumps(plan)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for key in keys:
        sidecar = cloud.read_json(f"heads/{key}/heads.json")
        assert sidecar is not None and len(sidecar["heads"]) == 1, key
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_the_first_event_imports_nothing_the_initializer_could_have(cloud):
    report = fresh_instance(cloud)
    assert report["first_imports"] == []
