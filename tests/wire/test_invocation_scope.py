"""No hidden state: what one invocation knows travels with it and ends with it.

The secrets scrubbed from log lines and written records are the invocation's own credentials, bound for its scope
(`logs.scrubbing`) and carried into its pool threads and worker children; the next invocation, with other
credentials, scrubs its own and nothing it inherited. The App is built by the composition root (`build_app`) for
an `Instance` of the caller's: two functions in one process keep their own settings, and no test resets anything.
Records read at once leave the process's warning filters as they found them.
Unit ring (twins, injected clock) but for the last test, which drives the real SDKs against the fakes.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import warnings
from dataclasses import dataclass
from types import SimpleNamespace
from urllib.parse import quote

import pytest

from headseg.function import images, logs, worker
from headseg.function.app import App
from headseg.function.config import Config
from headseg.function.errors import PermanentError
from headseg.function.events import object_created_event
from headseg.function.handler import Instance, build_app, handle
from headseg.function.retry import Budget
from headseg.function.segmenters import SegmentInput
from tests.conftest import Cloud, fc_context, oss_event
from tests.corpus import png_claiming
from tests.fakes.images import portrait
from tests.encodings import reappears
from tests.twins import Clock, MemoryStorage, ScriptedSegmenter

KEY = "incoming/a.jpg"
BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="


@dataclass(frozen=True)
class Role:
    """The function role's STS credentials, as FC's python3.10 context carries them."""

    access_key_id: str
    access_key_secret: str
    security_token: str

    @classmethod
    def drawn(cls, rng: random.Random) -> "Role":
        """Credentials shaped like real ones: base64 secret and token (`+`, `/` and `=` included)."""
        return cls("STS." + "".join(rng.choices(BASE64[:62], k=24)), "".join(rng.choices(BASE64, k=30)), "CAIS" + "".join(rng.choices(BASE64, k=40)))


def context(role: Role, n: int = 0) -> SimpleNamespace:
    return SimpleNamespace(request_id=f"req-{n}", function=None, credentials=role)


class Function:
    """An App that needs credentials (the cloud engine's), wired to the twins; `invoke` runs `handle` on it."""

    def __init__(self) -> None:
        self.storage = MemoryStorage()
        self.segmenter = ScriptedSegmenter(boxes=[(10, 20, 30, 40), (60, 20, 30, 40)])
        self.clock = Clock()
        self.app = App(
            Config(input_prefix="incoming/", output_prefix="heads/"),
            make_segmenter=lambda config, credentials: self.segmenter,
            make_storage=lambda config, credentials, bucket: self.storage,
            clock=self.clock,
            sleep=self.clock.sleep,
        )

    def upload(self, n: int = 0) -> None:
        """A new version of KEY (the `n`th): an invocation for it has the work to do again."""
        self.storage.put(KEY, portrait(200, 120 + n, [(10, 20, 30, 40)]), "image/jpeg")

    def invoke(self, role: Role, key: str = KEY, n: int = 0) -> dict:
        etag = self.storage.head(key).etag if key in self.storage.objects else "E"
        return json.loads(handle(self.app, json.dumps(object_created_event("twin", key, etag)), context(role, n)))


@pytest.fixture
def function():
    logs.configure()
    function = Function()
    function.upload()
    yield function
    function.app.close()


def lines(caplog) -> list[dict]:
    return [json.loads(line) for line in caplog.text.splitlines() if line.startswith("{")]


def test_two_invocations_with_other_credentials_each_scrub_their_own_from_log_and_error_record(function, caplog):
    first, second = Role.drawn(random.Random(1)), Role.drawn(random.Random(2))
    said = []

    def refuse(image: SegmentInput) -> None:  # the service quotes both secrets, in JSON and URL encodings
        said.append(f"refused: {json.dumps(first.access_key_secret)} {quote(first.security_token, safe='')} "
                    f"then {second.access_key_secret} {quote(quote(second.security_token, safe=''), safe='')}")
        raise PermanentError(said[-1], code="InvalidImage.Refused")

    function.segmenter.on_segment = refuse
    records = {}
    for n, role in enumerate((first, second)):
        function.upload(n)
        caplog.clear()
        with caplog.at_level(logging.INFO):
            assert function.invoke(role, n=n)["outcomes"][0]["outcome"] == "failed"
        records[role] = function.storage.objects["heads/incoming/a.jpg/error.json"][0].decode("utf-8")
        [line] = [line for line in lines(caplog) if line["message"] == "failed"]
        records[role, "log"] = line["reason"]

    own = {first: first, second: second}
    other = {first: second, second: first}
    for role in (first, second):
        for text in (json.loads(records[role])["reason"], records[role, "log"]):
            assert logs.REDACTED in text and "refused:" in text
            assert not reappears(own[role].access_key_secret, text) and not reappears(own[role].security_token, text)
            # the other invocation's credentials are not this one's to know: nothing of theirs lingers or leaks in
            assert other[role].access_key_secret in text


def test_the_secrets_in_force_do_not_grow_over_a_thousand_invocations(function, caplog):
    rng = random.Random(7)
    previous = Role.drawn(rng)
    caplog.set_level(logging.INFO)
    for n in range(1000):
        role = Role.drawn(rng)
        key = f"elsewhere/{role.access_key_secret}/{previous.security_token}.jpg"  # skipped: outside INPUT_PREFIX
        caplog.clear()
        assert function.invoke(role, key, n)["outcomes"][0]["outcome"] == "skipped"
        [line] = [line for line in lines(caplog) if line["message"] == "skipped"]
        assert line["key"] == f"elsewhere/{logs.REDACTED}/{previous.security_token}.jpg", n
        previous = role
    assert logs.scrub(previous.access_key_secret) == previous.access_key_secret  # the last one ended with it too


def test_a_line_logged_by_a_pool_thread_is_scrubbed_with_its_invocations_credentials(function, caplog):
    first, second = Role.drawn(random.Random(3)), Role.drawn(random.Random(4))
    function.invoke(first)  # an earlier invocation, with other credentials
    note = logging.getLogger("tests.pool")

    def on_put(operation: str, key: str) -> None:  # a cutout's upload runs on the App's pool
        if operation == "put" and key.endswith(".png"):
            thread = threading.current_thread().name
            note.warning("uploading", extra={"fields": {"thread": thread, "said": f"{second.security_token} {first.security_token}"}})

    function.storage.hook = on_put
    function.upload(1)  # a new version to process
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert function.invoke(second)["outcomes"][0]["outcome"] == "done"

    pooled = [line for line in lines(caplog) if line["message"] == "uploading"]
    assert len(pooled) == 2 and all(line["thread"].startswith("headseg") for line in pooled)
    assert all(line["said"] == f"{logs.REDACTED} {first.security_token}" for line in pooled)


def test_a_worker_child_scrubs_with_the_invocations_secrets_and_none_after_it():
    secret = Role.drawn(random.Random(5)).access_key_secret
    text = f"quoted {quote(secret, safe='')}"
    with logs.scrubbing([secret]):
        assert worker.run(lambda: logs.scrub(text), Budget.seconds(30), "scrub in the child") == f"quoted {logs.REDACTED}"
    assert worker.run(lambda: logs.scrub(text), Budget.seconds(30), "scrub in the child") == text


def test_two_functions_in_one_process_keep_their_own_settings_and_need_no_reset(cloud: Cloud):
    etag = cloud.upload_portrait(KEY, [(40, 50, 60, 80)])
    mine = Instance(lambda: build_app({**cloud.env, "OUTPUT_PREFIX": "mine/"}))
    theirs = Instance(lambda: build_app({**cloud.env, "OUTPUT_PREFIX": "theirs/"}))
    try:
        for function in (mine, theirs, mine):
            assert json.loads(function.handler(oss_event((KEY, etag)), fc_context()))["outcomes"][0]["outcome"] in ("done", "skipped")
        assert mine.app is mine.app and mine.app is not theirs.app
    finally:
        mine.close()
        theirs.close()
    assert cloud.outputs("mine/") == [f"mine/{KEY}/head-0-{etag[:8].lower()}.png", f"mine/{KEY}/heads.json"]
    assert cloud.outputs("theirs/") == [f"theirs/{KEY}/head-0-{etag[:8].lower()}.png", f"theirs/{KEY}/heads.json"]


def test_headers_read_on_many_threads_at_once_leave_the_processs_warning_filters_as_they_were(function):
    # (the App filtered Pillow's warnings once, when it was built)
    samples = [portrait(64, 48, [(10, 10, 20, 20)], fmt=fmt) for fmt in ("TIFF", "GIF", "PNG")] + [png_claiming(10_000, 10_000)]
    before = list(warnings.filters)

    def read() -> None:
        for _ in range(60):
            for data in samples:
                images.read_header(data, complete=True)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert warnings.filters == before
