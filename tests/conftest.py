"""Shared fixtures: isolated environment, wire-level fakes on free ports, and a `Cloud` to drive the handler."""

from __future__ import annotations

import dataclasses
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))  # `import index`, exactly as FC does from the code directory
sys.path.insert(0, str(ROOT))  # `tests.fakes`

from headseg.cli.invoke import FunctionMeta, LocalContext  # noqa: E402
from headseg.function.config import Config  # noqa: E402
from headseg.function.events import object_created_event  # noqa: E402
from headseg.function.images import quiet_pillow  # noqa: E402
from headseg.function.handler import Instance  # noqa: E402
from tests.fakes._server import CanaryServer  # noqa: E402
from tests.fakes.fc import FakeFc  # noqa: E402
from tests.fakes.images import portrait  # noqa: E402
from tests.fakes.imageseg import FakeImageseg  # noqa: E402
from tests.fakes.oss import FakeOss  # noqa: E402

ACCESS_KEY_ID = "STS.NUgYrLnoC37mZZCNnAbez2Mb"
ACCESS_KEY_SECRET = "FakeSecret4Tests0nly9Zq7Xw2Vt5Uy"
SECURITY_TOKEN = "CAIS8gF1q6Ft5B2yfSjIr5fakeSTStoken0123456789abcdef"
BUCKET = "headseg-demo"
EVENTS = ROOT / "events"

_OUR_VARIABLES = (
    *(f.name.upper() for f in dataclasses.fields(Config)),
    "ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN",
    # darabonba sends even 127.0.0.1 traffic through a proxy when these are set (it ignores NO_PROXY)
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with none of headseg's variables set, and Pillow's warnings filtered as every App filters
    them for its process (pytest restores the filters after each test)."""
    for name in _OUR_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    quiet_pillow()


# -- rings -------------------------------------------------------------------------------------------------------
# A test's folder says what it may touch, and an audit hook holds it to that: `unit` runs in memory (in-memory
# twins, an injected clock: no socket, no program started, no sleep; the function's own worker fork is a stage's),
# `wire` drives the real SDKs over HTTP against the fakes on 127.0.0.1 (no program started), `process` runs
# headseg and tools as programs (package builds, fresh interpreters, kills, linters, a browser).
RINGS: dict[str, frozenset[str]] = {
    "unit": frozenset({"socket.connect", "socket.bind", "subprocess.Popen", "time.sleep"}),
    "wire": frozenset({"subprocess.Popen"}),
    "process": frozenset(),
}
_ring: list[str] = []  # the running test's ring, while it runs


def _ring_guard(event: str, args: tuple[Any, ...]) -> None:
    if _ring and event in RINGS[_ring[0]] and not (event == "time.sleep" and args[0] <= 0):
        raise RuntimeError(f"a {_ring[0]} test may not {event} ({args[:2]!r}): it belongs in another ring (tests/conftest.py)")


sys.addaudithook(_ring_guard)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    ring = item.path.relative_to(ROOT / "tests").parts[0]
    if ring not in RINGS:
        raise pytest.UsageError(f"{item.nodeid}: every test lives in a ring, tests/unit, tests/wire or tests/process")
    _ring[:] = [ring]
    try:
        yield
    finally:
        _ring.clear()


@pytest.fixture
def fake_oss() -> Iterator[FakeOss]:
    server = FakeOss({ACCESS_KEY_ID: ACCESS_KEY_SECRET}, tokens={ACCESS_KEY_ID: SECURITY_TOKEN})
    server.create_bucket(BUCKET)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_imageseg() -> Iterator[FakeImageseg]:
    server = FakeImageseg({ACCESS_KEY_ID: ACCESS_KEY_SECRET}, tokens={ACCESS_KEY_ID: SECURITY_TOKEN})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_fc() -> Iterator[FakeFc]:
    """FC 2.0's invocation API with one function, `default`/`headseg`."""
    server = FakeFc({ACCESS_KEY_ID: ACCESS_KEY_SECRET}, tokens={ACCESS_KEY_ID: SECURITY_TOKEN})
    server.add_function("default", "headseg")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_fc3() -> Iterator[Any]:
    """FC 3.0's API (a `tests.fakes.fc3.FakeFc3`) with one function, `headseg`, the one s.yaml deploys."""
    from tests.fakes.fc3 import FakeFc3

    server = FakeFc3({ACCESS_KEY_ID: ACCESS_KEY_SECRET}, tokens={ACCESS_KEY_ID: SECURITY_TOKEN})
    server.add_function("headseg")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def ops(cloud: Cloud, monkeypatch, tmp_path):
    """The tooling's environment: keys in the environment, the function's prefixes, and a working directory of
    its own (where a backfill or replay keeps its default journal)."""
    monkeypatch.chdir(tmp_path)
    for name in ("FC_API", "FC_SERVICE", "FC_ENDPOINT", "FC_FUNCTION", "FC_QUALIFIER", "ALIBABA_CLOUD_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)
    cloud.configure(
        ALIBABA_CLOUD_ACCESS_KEY_ID=ACCESS_KEY_ID,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=ACCESS_KEY_SECRET,
        ALIBABA_CLOUD_SECURITY_TOKEN=SECURITY_TOKEN,
    )
    return cloud


# -- the FC side ---------------------------------------------------------------------------------------------------
@dataclass
class FcCredentials:
    access_key_id: str = ACCESS_KEY_ID
    access_key_secret: str = ACCESS_KEY_SECRET
    security_token: str = SECURITY_TOKEN


def fc_context(timeout: int = 60, request_id: str = "1-6742e1a0-0123456789abcdef01234567", credentials: Any = "sts") -> LocalContext:
    """FC's python3.10 context: the function role's STS credentials by default; None as on python3.12."""
    return LocalContext(
        request_id=request_id,
        function=FunctionMeta(timeout=timeout),
        credentials=FcCredentials() if credentials == "sts" else credentials,
    )


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def oss_event(*records: tuple[str, str | None], name: str = "ObjectCreated:PutObject", bucket: str = BUCKET) -> bytes:
    """An event of the real shape for (key, eTag) records."""
    events = [object_created_event(bucket, key, etag, event_name=name)["events"][0] for key, etag in records]
    return json.dumps({"events": events}, ensure_ascii=False).encode("utf-8")


@dataclass
class Cloud:
    """The fakes plus the function's environment: upload objects, invoke the real handler, read outputs.

    `function` is an FC instance of the cloud's own (what `index` runs, built by the same composition root from
    the environment as configured); `configure` starts a new one, as a deployment of new settings does."""

    oss: FakeOss
    imageseg: FakeImageseg
    monkeypatch: pytest.MonkeyPatch
    env: dict[str, str] = field(default_factory=dict)
    function: Instance = field(default_factory=Instance)

    def configure(self, **variables: str) -> None:
        for name, value in variables.items():
            self.env[name] = value
            self.monkeypatch.setenv(name, value)
        self.function.close()
        self.function = Instance()

    @property
    def app(self) -> Any:
        """The function's App (built on first use, as on FC)."""
        return self.function.app

    def upload(self, key: str, data: bytes, content_type: str = "image/jpeg") -> str:
        return self.oss.put(BUCKET, key, data, content_type=content_type)

    def upload_portrait(self, key: str, heads: list[tuple[int, int, int, int]], size=(400, 300), fmt="JPEG") -> str:
        return self.upload(key, portrait(size[0], size[1], heads, fmt=fmt), f"image/{fmt.lower()}")

    def invoke(self, event: bytes, timeout: int = 60, request_id: str = "1-test") -> dict[str, Any]:
        return json.loads(self.function.handler(event, fc_context(timeout=timeout, request_id=request_id)))

    def invoke_key(self, key: str, etag: str | None, **kwargs: Any) -> dict[str, Any]:
        return self.invoke(oss_event((key, etag)), **kwargs)

    def read(self, key: str) -> bytes | None:
        return self.oss.get(BUCKET, key)

    def read_json(self, key: str) -> dict[str, Any] | None:
        data = self.read(key)
        return None if data is None else json.loads(data)

    def outputs(self, prefix: str = "heads/") -> list[str]:
        """The keys under `prefix`, but for the marks (`marks`)."""
        return [key for key in self.oss.keys(BUCKET, prefix) if not key.startswith(prefix + ".settled/")]

    def marks(self, prefix: str = "heads/") -> list[str]:
        """The marks under `prefix`, each as "source key/mark name"."""
        return [key[len(prefix + ".settled/") :] for key in self.oss.keys(BUCKET, prefix + ".settled/")]


@pytest.fixture
def cloud(fake_oss: FakeOss, fake_imageseg: FakeImageseg, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    cloud = Cloud(fake_oss, fake_imageseg, monkeypatch)
    cloud.configure(
        INPUT_PREFIX="incoming/",
        OUTPUT_PREFIX="heads/",
        OSS_ENDPOINT=fake_oss.url,
        OSS_PUBLIC_ENDPOINT=fake_oss.url,
        IMAGESEG_ENDPOINT=fake_imageseg.url,
        TIME_MARGIN="1",
    )
    yield cloud
    cloud.function.close()


def png_image(data: bytes):
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    return image




SAMPLES = ROOT / "tests" / "samples"


def sample_labels() -> dict[str, list[list[int]]]:
    """Hand-labelled head boxes [x, y, width, height] per sample file."""
    return {k: v for k, v in json.loads((SAMPLES / "labels.json").read_text()).items() if not k.startswith("_")}


def iou(a, b) -> float:
    """Intersection over union of two [x, y, width, height] boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


@pytest.fixture(scope="session")
def local_segmenter():
    """One offline engine for the session: its LiteRT interpreters take a moment to build."""
    from headseg.local.segmenter import LocalSegmenter

    return LocalSegmenter()


@pytest.fixture
def canary() -> Iterator[CanaryServer]:
    """A server nothing may contact: give its `url` to what must stay unused; stop() fails the test otherwise."""
    with CanaryServer() as server:
        yield server
