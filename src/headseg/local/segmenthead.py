"""SegmentHead, the API, whatever carries the requests: `headseg serve` answers with it, the tests' fake builds on it.

`SegmentHead(cut, ...).answer(request)` is the whole service: the gateway (`acs3`: route, signature, token,
nonce), the quota (`quota.qps`: beyond it `Throttling.User`), then SegmentHead itself: it downloads `ImageURL`
(no redirects followed, at most the size limit read), holds the image to SegmentHead's input limits (the
function's: `images.check_limits` with `normalize.Limits()`), hands it to `cut` (any head cutter: the offline
engine, a test's detector) and publishes each cutout behind a signed URL that expires in 30 minutes, OSS style,
served by the same `answer`. Errors come back in the gateway's JSON error format (HTTP status, `Code`), so the
SDK raises `ClientException`/`ServerException` with `.code` set, as against the cloud.

A `Watcher` hears what a test fake wants to know: a request let in (`authenticated`), a URL about to be fetched,
and traffic the real service would not expect from the function (`unexpected`).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit
from urllib.request import url2pathname

from headseg.function import images
from headseg.function.errors import HeadsegError, InvalidImage
from headseg.function.normalize import Limits
from headseg.function.segmenters import Head
from headseg.local.acs3 import ApiError, Call, Gateway, HttpRequest, Reply, request_id
from headseg.local.results import RESULT_PREFIX, ResultStore
from headseg.local.upload import UPLOAD_PATH, read_upload

API_VERSION = "2019-12-30"
ACTION = "SegmentHead"
HOST_ID = "imageseg.cn-shanghai.aliyuncs.com"
LIMITS = Limits()  # SegmentHead's input limits: the function's one home for them
FETCH_TIMEOUT = 10.0
USAGE = (
    f"POST / with Action={ACTION}, Version={API_VERSION} and ImageURL (http(s) or file://), optionally "
    "ReturnForm=mask, as query or form fields; or the x-acs-action/x-acs-version headers the SDK sends"
)  # without signatures, Version may be left out, and `upload.UPLOAD_USAGE` is served too
#: The code SegmentHead answers for an image headseg's own checks name otherwise.
SERVICE_CODES = {
    "InvalidImage.NotImage": "InvalidImage.Format",
    "InvalidImage.Corrupt": "InvalidImage.Content",
    "InvalidImage.TooManyPixels": "InvalidImage.Resolution",
}

Cutter = Callable[[bytes, "str | None"], "list[Head]"]  # (image bytes, ReturnForm) -> heads with their PNGs


class Watcher:
    """What SegmentHead tells whoever runs it; this one listens to nothing (`headseg serve`)."""

    def authenticated(self, request: HttpRequest) -> None:
        """`request` got past the gateway (a SegmentHead call) or its URL signature (a result download)."""

    def fetching(self, url: str) -> None:
        """SegmentHead is about to download `url`."""

    def unexpected(self, message: str) -> None:
        """Traffic no client of the real service should send (a test fake fails the test on it)."""


@dataclass(frozen=True)
class Sources:
    """Where ImageURL may point: http(s) on `hosts` (None: any host), or a file:// URL when `files`."""

    hosts: frozenset[str] | None = None
    files: bool = False
    timeout: float = FETCH_TIMEOUT


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a 3xx becomes an HTTPError: a redirect never takes the download elsewhere


@dataclass
class _Quota:
    """A token bucket of `qps` a second (a burst of max(1, qps)); `refused` counts the calls it turned away."""

    qps: float | None = None
    refused: int = 0
    _bucket: tuple[float, float] | None = None  # (tokens, monotonic time)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> bool:
        if self.qps is None:
            return True
        with self._lock:
            capacity, now = max(1.0, self.qps), time.monotonic()
            tokens, then = self._bucket or (capacity, now)
            tokens = min(capacity, tokens + (now - then) * self.qps)
            allowed = tokens >= 1.0
            self._bucket = (tokens - 1.0 if allowed else tokens, now)
            self.refused += not allowed
            return allowed


class SegmentHead:
    """The service. `base_url()`: where its result URLs point (the server answering); `clock`: what they expire
    by; `gateway`: who may call (default: anyone, unsigned)."""

    def __init__(
        self,
        cut: Cutter,
        base_url: Callable[[], str],
        *,
        gateway: Gateway | None = None,
        sources: Sources = Sources(),
        clock: Callable[[], float] = time.time,
        watcher: Watcher | None = None,
    ) -> None:
        self.cut = cut
        self.gateway = gateway or Gateway()
        self.sources = sources
        self.results = ResultStore(base_url, clock, HOST_ID)
        self.watcher = watcher or Watcher()
        self.quota = _Quota()
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)

    def answer(self, request: HttpRequest) -> Reply:
        """The reply to any request: a SegmentHead call, a result download, or an error."""
        if request.method in ("GET", "HEAD") and request.path.startswith(RESULT_PREFIX):
            return self.results.serve(request, self.watcher.authenticated)
        try:
            if request.method == "POST" and request.path == UPLOAD_PATH and self.gateway.credentials is None:
                image, params = read_upload(request)
                self._throttle()
                return json_reply(200, self._heads(_within_size(image), params.get("ReturnForm")))
            if request.method != "POST" or request.path != "/":
                self.watcher.unexpected(f"no route for {request.method} {request.path}")
                raise ApiError(404, "InvalidAction.NotFound", f"Specified api is not found: send {USAGE}.")
            return json_reply(200, self._segment_head(request))
        except ApiError as err:
            return error_reply(err)

    def _segment_head(self, request: HttpRequest) -> dict:
        call = Call.parse(request)
        if call.action != ACTION:
            self.watcher.unexpected(f"unexpected action {call.action!r}: {request.method} {request.path}")
            raise ApiError(404, "InvalidAction.NotFound", f"Specified api {call.action!r} is not found: send {USAGE}.")
        if call.version != API_VERSION and (call.version or self.gateway.credentials is not None):
            self.watcher.unexpected(f"unexpected version {call.version!r} for {ACTION}")
            raise ApiError(400, "InvalidVersion", f"Specified parameter Version is not valid: send {USAGE}.")
        self.gateway.admit(request)
        self.watcher.authenticated(request)
        self._throttle()
        url = call.params.get("ImageURL")
        if not url:
            raise ApiError(400, "MissingImageURL", f"ImageURL is mandatory for this action: send {USAGE}.")
        return self._heads(self._download(url), call.params.get("ReturnForm"))

    def _throttle(self) -> None:
        if not self.quota.take():
            raise ApiError(400, "Throttling.User", "Request was denied due to user flow control.")

    def _heads(self, data: bytes, return_form: str | None) -> dict:
        """SegmentHead's answer for an image: held to its input limits, cut, each cutout published."""
        try:
            images.check_limits(
                images.read_header(data, complete=True), len(data),
                max_bytes=LIMITS.max_bytes, min_side=LIMITS.min_side, max_side=LIMITS.max_side,
            )
            heads = self.cut(data, return_form)
        except InvalidImage as exc:
            raise ApiError(400, SERVICE_CODES.get(exc.code, exc.code), exc.message) from exc
        except HeadsegError as exc:  # the cutter cannot run (the offline engine is not installed, say)
            raise ApiError(500, "InternalError", exc.message) from exc
        elements = [
            {"X": h.x, "Y": h.y, "Width": h.width, "Height": h.height, "ImageURL": self.results.publish(h.png or b"")}
            for h in heads
        ]
        return {"RequestId": request_id(), "Data": {"Elements": elements}}

    def _download(self, url: str) -> bytes:
        """The image at `url`, at most `LIMITS.max_bytes` of it."""
        allowed = self.sources
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError as exc:
            raise ApiError(400, "InvalidParameter", f"ImageURL is not a URL: {exc}") from exc
        if parts.scheme == "file" and allowed.files:
            return self._read_file(Path(url2pathname(parts.path)))
        if parts.scheme not in ("http", "https") or not url.isascii():
            raise ApiError(400, "InvalidParameter", f"ImageURL must be an http(s) URL without Chinese characters: {url}")
        if allowed.hosts is not None and host not in allowed.hosts:
            self.watcher.unexpected(f"ImageURL {url} is a non-local URL, off the allowed hosts {sorted(allowed.hosts)}")
            raise ApiError(400, "InvalidImage.Download", f"Failed to download the image: host {host} refused.")
        self.watcher.fetching(url)
        try:
            with self._opener.open(url, timeout=allowed.timeout) as reply:
                data = reply.read(LIMITS.max_bytes + 1)
        except (urllib.error.URLError, HTTPException, OSError, ValueError) as exc:
            raise ApiError(400, "InvalidImage.Download", f"Failed to download the image from ImageURL: {exc}") from exc
        return _within_size(data)

    def _read_file(self, path: Path) -> bytes:
        try:
            with path.open("rb") as file:
                return _within_size(file.read(LIMITS.max_bytes + 1))
        except OSError as exc:
            raise ApiError(400, "InvalidImage.Download", f"Failed to read the image from ImageURL: {exc}") from exc


def _within_size(data: bytes) -> bytes:
    if len(data) > LIMITS.max_bytes:
        raise ApiError(400, "InvalidImage.Size", f"The image is over SegmentHead's limit of {LIMITS.max_bytes} bytes.")
    return data


def json_reply(status: int, body: dict, headers: dict[str, str] | None = None) -> Reply:
    headers = {"Content-Type": "application/json;charset=utf-8", "x-acs-request-id": body["RequestId"], **(headers or {})}
    return Reply(status, json.dumps(body).encode(), headers)


def error_reply(error: ApiError, headers: dict[str, str] | None = None) -> Reply:
    """The gateway's JSON error format."""
    body = {
        "RequestId": request_id(),
        "HostId": HOST_ID,
        "Code": error.code,
        "Message": error.message,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={error.code}&product=imageseg",
    }
    return json_reply(error.status, body, headers)
