"""The cold start: the initializer leaves the first event nothing to import or build, and the modules
`headseg.function.defer` defers never run while events are handled; each over the wire, in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from headseg.function.defer import DEFERRED
from tests.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, BUCKET, SECURITY_TOKEN, portrait

ROOT = Path(__file__).resolve().parents[2]
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


def test_the_deferred_modules_are_imported_but_never_run(cloud):
    report = fresh_instance(cloud)
    assert report["deferred_imported"] == sorted(DEFERRED)  # the SDKs still import them: the list is not stale
    assert report["deferred_unrun"] == sorted(DEFERRED)


def test_a_deferred_module_runs_when_it_is_used():
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import index, oss2, oss2.crypto; from headseg.function import defer; "
        "before = defer.unrun(); "
        "key = oss2.crypto.RSA.generate(1024); "  # the first attribute read runs the module
        "print('Crypto.PublicKey.RSA' in before, 'Crypto.PublicKey.RSA' in defer.unrun(), key.size_in_bits())"
    )
    result = subprocess.run([sys.executable, "-c", code, str(ROOT / "src")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False", "1024"]
