"""A fake Alibaba Cloud imageseg endpoint: `headseg serve`'s SegmentHead (`headseg.local.segmenthead`) with what a
fake adds.

Point the real SDK at it with `Config(endpoint=fake.address, protocol="http", region_id="cn-shanghai", ...)`.
The service is the shared one: the gateway's checks (route, ACS3 signature, date, nonce, STS token), the quota
(`qps_limit`), the image download and SegmentHead's input limits, the JSON errors, the signed expiring cutout
URLs. On top, this fake:
- runs on `FakeServer` (`_server.py`): request log, `inject`/`script` faults, and the helpers below;
- fetches `ImageURL` from 127.0.0.1/localhost only (`fetched_urls` lists them), and fails the test loudly on
  anything the function should never send (another action or version, a non-local URL, a stray route);
- "detects" heads deterministically (`marker_heads`, the cutter it plugs in): pixels near `MARKER_COLOUR` form
  the head mask, split into heads by runs of non-empty columns (so heads stacked in the same columns count as
  one). Each head gets a PNG cutout (RGBA, or an "L" mask for ReturnForm=mask), uncompressed as the service's.

Clocks: `x-acs-date` is checked against real time (the SDK stamps real time); `clock_offset` only moves the
clock used for result-URL expiry, so a test can let cutouts expire and still call SegmentHead again.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable

from PIL import Image, ImageChops

from headseg.function.errors import InvalidImage
from headseg.function.segmenters import Head
from headseg.local.acs3 import ApiError, Gateway
from headseg.local.results import RESULT_PREFIX
from headseg.local.segmenthead import SegmentHead, Sources, error_reply

from ._server import FakeServer, Fault, Request, Response

__all__ = ["RESULT_PREFIX", "FakeImageseg", "MARKER_COLOUR", "find_heads", "is_result_download", "is_segment_call"]

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
FETCH_TIMEOUT = 5.0
MARKER_COLOUR = (255, 0, 255)
MARKER_TOLERANCE = 60  # per channel; survives JPEG artefacts, rejects the edge blend with the background
SERVER_ERROR_CODES = {500: "InternalError", 503: "ServiceUnavailable"}


def is_segment_call(request: Request) -> bool:
    """Fault matcher: SegmentHead API calls."""
    return request.method == "POST" and request.path == "/"


def is_result_download(request: Request) -> bool:
    """Fault matcher: downloads of result PNGs."""
    return request.method in ("GET", "HEAD") and request.path.startswith(RESULT_PREFIX)


class FakeImageseg(FakeServer):
    """SegmentHead behind a verifying gateway. `credentials`: access key id -> secret; `tokens`: access key id ->
    the STS token it must present (both may change while it runs)."""

    name = "imageseg"

    def __init__(self, credentials: dict[str, str], tokens: dict[str, str] | None = None) -> None:
        super().__init__()
        self.clock_offset = 0.0  # seconds added to the result-URL clock
        self.fetched_urls: list[str] = []
        self.api = SegmentHead(
            marker_heads, lambda: self.url, gateway=Gateway(credentials, tokens),
            sources=Sources(hosts=LOCAL_HOSTS, timeout=FETCH_TIMEOUT), clock=self.now, watcher=self,
        )
        self._state = threading.Lock()
        self._throttle_faults: list[Fault] = []

    def now(self) -> float:
        """The clock result URLs expire by."""
        return time.time() + self.clock_offset

    @property
    def credentials(self) -> dict[str, str]:
        assert self.api.gateway.credentials is not None
        return self.api.gateway.credentials

    @property
    def tokens(self) -> dict[str, str]:
        return self.api.gateway.tokens

    @property
    def qps_limit(self) -> float | None:
        """SegmentHead's quota (a token bucket, burst max(1, qps)); beyond it: Throttling.User."""
        return self.api.quota.qps

    @qps_limit.setter
    def qps_limit(self, qps: float | None) -> None:
        self.api.quota.qps = qps

    @property
    def results(self) -> dict[str, bytes]:
        """Result file name -> PNG bytes."""
        return self.api.results.files

    def publish(self, png: bytes) -> str:
        """Serve `png` as a cutout of this fake; its signed URL."""
        return self.api.results.publish(png)

    @property
    def calls(self) -> int:
        """SegmentHead requests received, whatever their answer."""
        return len(self.logged(is_segment_call))

    @property
    def served(self) -> int:
        """SegmentHead calls answered 200 (the billed ones)."""
        return sum(1 for entry in self.logged(is_segment_call) if entry.status == 200)

    @property
    def throttled(self) -> int:
        """SegmentHead calls answered with a throttling error (unbilled): QPS limit plus `throttle()` faults."""
        with self._state:
            return self.api.quota.refused + sum(fault.hits for fault in self._throttle_faults)

    # -- fault helpers (on top of `inject`) ---------------------------------------------------------------------
    def throttle(
        self, times: int = 1, *, status: int = 400, code: str = "Throttling.User", retry_after_ms: int | None = None
    ) -> Fault:
        """The next `times` calls are throttled (gateway style: 400 Throttling.User; or e.g. 429 "Throttling").
        `retry_after_ms` adds `x-acs-retry-after`, which makes the SDK raise ThrottlingException."""
        headers = {"x-acs-retry-after": str(retry_after_ms)} if retry_after_ms else {}
        response = error_response(status, code, "Request was denied due to user flow control.", headers)
        fault = self.inject(Fault("status", is_segment_call, times, response))
        with self._state:
            self._throttle_faults.append(fault)
        return fault

    def server_error(self, times: int = 1, status: int = 500, code: str | None = None) -> Fault:
        """The next `times` calls fail with 500 InternalError / 503 ServiceUnavailable (or the given code)."""
        code = code or SERVER_ERROR_CODES.get(status, "InternalError")
        response = error_response(status, code, "The request has failed due to a temporary failure of the server.")
        return self.inject(Fault("status", is_segment_call, times, response))

    def invalid_image(self, times: int = 1, code: str = "InvalidImage.Content") -> Fault:
        """The next `times` calls reject the image whatever it is."""
        response = error_response(400, code, "The image cannot be processed.")
        return self.inject(Fault("status", is_segment_call, times, response))

    def slow(self, seconds: float, times: int = 1) -> Fault:
        """The next `times` calls are answered only after `seconds` (set a short SDK read_timeout to time out)."""
        return self.inject(Fault("delay", is_segment_call, times, seconds=seconds))

    def drop(self, times: int = 1) -> Fault:
        """The next `times` calls get their connection closed without an answer."""
        return self.inject(Fault("drop", is_segment_call, times))

    def stall(
        self, seconds: float, times: int = 1, *, match: Callable[[Request], bool] = is_segment_call,
        after_auth: bool = True,
    ) -> Fault:
        """The next `times` calls get no answer for `seconds`, then a closed connection; by default only once the
        gateway accepted them (signature, token, nonce), and SegmentHead then never runs. `match=is_result_download`
        stalls cutout downloads instead (after their URL signature checked out)."""
        return self.inject(Fault("stall", match, times, seconds=seconds, after_auth=after_auth))

    def trickle(
        self, seconds: float, chunk: int = 1, times: int = 1, *, match: Callable[[Request], bool] = is_segment_call
    ) -> Fault:
        """The next `times` answers (calls, or with `match=is_result_download` cutouts) send their body `chunk`
        bytes every `seconds`."""
        return self.inject(Fault("trickle", match, times, seconds=seconds, chunk=chunk))

    # -- the shared service, and what it tells the fake ---------------------------------------------------------
    def handle(self, request: Request) -> Response:
        reply = self.api.answer(request)
        return Response(reply.status, reply.body, reply.headers)

    def fetching(self, url: str) -> None:
        with self._state:
            self.fetched_urls.append(url)

    def unexpected(self, message: str) -> None:
        self.fail(message)


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """An error in the gateway's JSON format, for a fault to answer."""
    reply = error_reply(ApiError(status, code, message), headers)
    return Response(reply.status, reply.body, reply.headers)


# -- detection --------------------------------------------------------------------------------------------------------
def marker_heads(data: bytes, return_form: str | None) -> list[Head]:
    """The head cutter the fake plugs into SegmentHead: one head per marker-coloured blob (`find_heads`)."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = opened.convert("RGB")
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"The image cannot be decoded: {exc}", code="InvalidImage.Content") from exc
    mask, boxes = find_heads(image)
    heads = []
    for x, y, width, height in boxes:
        area = (x, y, x + width, y + height)
        cutout = mask.crop(area)
        if return_form != "mask":
            alpha, cutout = cutout, image.crop(area).convert("RGBA")
            cutout.putalpha(alpha)
        png = io.BytesIO()
        cutout.save(png, "PNG", compress_level=0)  # the real service's cutouts are uncompressed too
        heads.append(Head(x, y, width, height, png=png.getvalue()))
    return heads


def find_heads(image: Image.Image) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """The head mask ("L", 0/255) and one (x, y, width, height) box per run of non-empty columns, left to right."""
    near = [band.point(_near_table(value)) for band, value in zip(image.split(), MARKER_COLOUR)]
    mask = ImageChops.darker(ImageChops.darker(near[0], near[1]), near[2])
    width, height = mask.size
    # Column profile: the float mean of each column is > 0 exactly where the column has a mask pixel.
    profile = mask.convert("F").resize((width, 1), Image.Resampling.BOX)
    columns = profile.point(lambda value: value * 4096).convert("L").tobytes() + b"\0"
    boxes, start = [], None
    for x, value in enumerate(columns):
        if value and start is None:
            start = x
        elif not value and start is not None:
            left, top, right, bottom = mask.crop((start, 0, x, height)).getbbox()
            boxes.append((start + left, top, right - left, bottom - top))
            start = None
    return mask, boxes


def _near_table(value: int) -> list[int]:
    return [255 if abs(level - value) <= MARKER_TOLERANCE else 0 for level in range(256)]
