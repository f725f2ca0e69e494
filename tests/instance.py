"""One fresh FC instance in an interpreter of its own (`python3.10 -I -S -B` in bench P2): a script, never imported.

argv: the package directory ('' for this interpreter's own site-packages), the code directory (src), and a JSON
plan {"bucket", "events": [[key, etag], ...], "warm": n, "key_id", "secret", "token"}; the function's other
settings come from the environment. It imports `index`, runs the initializer, handles the first event, then n
warm events, then the rest with oss2's CRC64 turned off (bench P5's counterfactual), and prints one JSON line:
the seconds each step took (wall; and CPU for the later events), the modules the first event imported, and
which of the modules `headseg.function.defer` defers were imported and which of those never ran.
"""

import json
import sys
import time
import types

started = time.perf_counter()
package, code, plan = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path[:0] = [code, package] if package else [code]  # FC: /code, then PYTHONPATH=/code/python

import index  # noqa: E402

imported = time.perf_counter()
from headseg.function.events import object_created_event  # noqa: E402  (already loaded by index's imports)

credentials = types.SimpleNamespace(
    access_key_id=plan["key_id"], access_key_secret=plan["secret"], security_token=plan["token"]
)
context = types.SimpleNamespace(
    request_id="bench", credentials=credentials, function=types.SimpleNamespace(name="headseg", timeout=120, memory=512)
)
index.initialize(context)
initialized = time.perf_counter()


def invoke(key: str, etag: str) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    index.handler(json.dumps(object_created_event(plan["bucket"], key, etag)).encode(), context)
    return time.perf_counter() - wall, time.process_time() - cpu


events = [tuple(e) for e in plan["events"]]
before_first = set(sys.modules)
first = invoke(*events[0])[0]
first_imports = sorted(set(sys.modules) - before_first)
warm = [invoke(*e) for e in events[1 : 1 + plan["warm"]]]

import oss2  # noqa: E402

with_crc = oss2.Bucket.__init__


def without_crc(self, *args, **kwargs):  # type: ignore[no-untyped-def]
    with_crc(self, *args, **{**kwargs, "enable_crc": False})


oss2.Bucket.__init__ = without_crc
no_crc = [invoke(*e) for e in events[1 + plan["warm"] :]]
from headseg.function.defer import DEFERRED, unrun  # noqa: E402

print(json.dumps({
    "import": imported - started, "initialize": initialized - imported, "first": first,
    "warm": warm, "no_crc": no_crc, "first_imports": first_imports,
    "deferred_imported": sorted(name for name in DEFERRED if name in sys.modules), "deferred_unrun": unrun(),
}))
