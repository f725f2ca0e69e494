"""Fresh FC instances on demand, one forked per event (tests/process/test_crash.py): a script, never imported.

argv: the code directory (src) and a JSON plan {"key_id", "secret", "token"}; the function's settings come from
the environment. It imports `index` and the modules the initializer would import (only to save each instance
that time: nothing is built, no thread or socket exists when it forks), then reads commands from stdin, one
JSON line each: {"event": "<the event's JSON>", "env": {...}}. For each it forks an instance that sets `env`,
runs `index.initialize` and `index.handler` on the event as FC does, and exits 0 (1 if the handler raised). It
answers on stdout: {"pid": n} once forked, so the test can SIGKILL that process, then {"pid": n, "status": s}
once it ended, `s` its exit code or minus the signal that killed it. An instance that ended is reaped only
when the next command comes (or stdin closes): until then its pid cannot be reused, so a kill that comes late
hits nothing else. The instances log to stderr.
"""

import importlib
import json
import os
import sys
import threading
import traceback
import types

# What `index.initialize` imports besides `index`: imported once here, so no instance pays for it again.
WARM = (
    "PIL.Image", "PIL.ExifTags", "requests", "headseg.function.storage.oss", "alibabacloud_imageseg20191230.client",
    "alibabacloud_imageseg20191230.models", "alibabacloud_tea_openapi.models", "alibabacloud_tea_util.models",
)  # fmt: skip

sys.path[:0] = [sys.argv[1]]
plan = json.loads(sys.argv[2])
index = importlib.import_module("index")  # first: it defers what the SDKs import and never run
for name in WARM:
    importlib.import_module(name)

context = types.SimpleNamespace(
    request_id="1-crash-0123456789abcdef01234567",
    credentials=types.SimpleNamespace(
        access_key_id=plan["key_id"], access_key_secret=plan["secret"], security_token=plan["token"]
    ),
    function=types.SimpleNamespace(name="headseg", timeout=60, memory=512),
)


def instance(event: str, env: dict[str, str]) -> int:
    """One instance's life: the initializer, then the event."""
    os.environ.update(env)
    try:
        index.initialize(context)
        print(index.handler(event.encode("utf-8"), context), file=sys.stderr, flush=True)
    except Exception:  # noqa: BLE001 - FC logs it and retries the event; the exit code tells the test
        traceback.print_exc()
        return 1
    return 0


def answer(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


ended = 0  # the last instance, ended but not yet reaped
for line in sys.stdin:
    if ended:
        os.waitpid(ended, 0)
    command = json.loads(line)
    assert threading.active_count() == 1, "forking with threads running"
    pid = os.fork()
    if pid == 0:
        sys.stdin.close()
        os.dup2(2, 1)  # stdout is the commands' answers: an instance only logs
        os._exit(instance(command["event"], command.get("env", {})))
    answer({"pid": pid})
    end = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # left unreaped: see the docstring
    assert end is not None  # None only with WNOHANG
    answer({"pid": pid, "status": end.si_status if end.si_code == os.CLD_EXITED else -end.si_status})
    ended = pid
if ended:
    os.waitpid(ended, 0)
