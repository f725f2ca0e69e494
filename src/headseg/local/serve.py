"""A local HTTP server that speaks the SegmentHead API, backed by any head cutter (the local engine).

Point the imageseg endpoint at it (`IMAGESEG_ENDPOINT=http://127.0.0.1:8080`) and the cloud code path, with
the real SDK, runs fully offline. Same request (POST /, `x-acs-action: SegmentHead`, `ImageURL` and
`ReturnForm` in the query), same JSON response, temporary result URLs (30 minutes) that it serves itself.
The ACS3 signature is checked when credentials are given. Besides http(s), `ImageURL` may be a `file://` URL
(what a directory bucket signs), unless file URLs are turned off.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import parse_qsl, urlsplit
from urllib.request import url2pathname

from headseg.local import acs3

from headseg.function import images
from headseg.function.errors import HeadsegError
from headseg.function.normalize import Limits
from headseg.function.segmenters import Head

API_VERSION = "2019-12-30"
RESULT_TTL = 30 * 60
MAX_RESULTS = 2000
LIMITS = Limits()  # SegmentHead's own input limits
MAX_IMAGE_BYTES = LIMITS.max_bytes
FETCH_TIMEOUT = 10.0

Cutter = Callable[[bytes, "str | None"], "list[Head]"]


@dataclass
class ApiError(Exception):
    status: int
    code: str
    message: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class SegmentHeadServer(ThreadingHTTPServer):
    """`serve_forever()` answers SegmentHead calls with `cut(image_bytes, return_form)`."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        cut: Cutter,
        credentials: Mapping[str, str] | None = None,
        allow_file_urls: bool = True,
    ) -> None:
        super().__init__(address, _Handler)
        self.cut = cut
        self.credentials = dict(credentials) if credentials else None
        self.allow_file_urls = allow_file_urls
        self._results: dict[str, tuple[float, bytes]] = {}
        self._lock = threading.Lock()
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- SegmentHead -------------------------------------------------------------------------------------------
    def segment_head(self, method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str], body: bytes) -> dict:
        if headers.get("x-acs-action") != "SegmentHead" or path != "/":
            raise ApiError(404, "InvalidAction.NotFound", "Only SegmentHead (POST /) is served here.")
        if headers.get("x-acs-version") != API_VERSION:
            raise ApiError(400, "InvalidVersion", f"Specified parameter Version is not valid (want {API_VERSION}).")
        if self.credentials is not None:
            try:
                acs3.verify(method, path, query, headers, body, self.credentials.get)
            except acs3.SignatureError as err:
                raise ApiError(err.status, err.code, err.message) from None
        params = dict(query)
        url = params.get("ImageURL")
        if not url:
            raise ApiError(400, "MissingImageURL", "ImageURL is mandatory for this action.")
        data = self._download(url)
        try:
            info = images.read_header(data, complete=True)
            images.check_limits(
                info, len(data), max_bytes=LIMITS.max_bytes, min_side=LIMITS.min_side, max_side=LIMITS.max_side
            )
            heads = self.cut(data, params.get("ReturnForm"))
        except HeadsegError as exc:
            raise ApiError(400, exc.code if exc.code.startswith("InvalidImage") else "InvalidImage.Content", exc.message) from None
        elements = [
            {"X": h.x, "Y": h.y, "Width": h.width, "Height": h.height, "ImageURL": self._publish(h.png or b"")}
            for h in heads
        ]
        return {"RequestId": str(uuid.uuid4()).upper(), "Data": {"Elements": elements}}

    def _download(self, url: str) -> bytes:
        parts = urlsplit(url)
        try:
            if parts.scheme == "file" and self.allow_file_urls:
                path = Path(url2pathname(parts.path))
                if path.stat().st_size > MAX_IMAGE_BYTES:
                    raise ApiError(400, "InvalidImage.Size", f"The image is over {MAX_IMAGE_BYTES} bytes.")
                return path.read_bytes()
            if parts.scheme not in ("http", "https"):
                raise ApiError(400, "InvalidParameter", f"ImageURL must be an http(s) URL, not {parts.scheme}:")
            with self._opener.open(url, timeout=FETCH_TIMEOUT) as reply:
                data = reply.read(MAX_IMAGE_BYTES + 1)
        except (OSError, urllib.error.URLError) as exc:
            raise ApiError(400, "InvalidImage.Download", f"Failed to download the image from ImageURL: {exc}") from None
        if len(data) > MAX_IMAGE_BYTES:
            raise ApiError(400, "InvalidImage.Size", f"The image is over {MAX_IMAGE_BYTES} bytes.")
        return data

    # -- results -------------------------------------------------------------------------------------------------
    def _publish(self, png: bytes) -> str:
        name = f"{uuid.uuid4().hex}.png"
        expires = int(time.time() + RESULT_TTL)
        with self._lock:
            now = time.time()
            for stale in [k for k, (until, _) in self._results.items() if until < now]:
                del self._results[stale]
            while len(self._results) >= MAX_RESULTS:
                del self._results[next(iter(self._results))]
            self._results[name] = (expires, png)
        return f"{self.url}/results/{name}?Expires={expires}"

    def result(self, name: str) -> bytes | None:
        with self._lock:
            until, png = self._results.get(name, (0.0, b""))
        return png if until >= time.time() else None


class _Handler(BaseHTTPRequestHandler):
    server: SegmentHeadServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        split = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            payload = self.server.segment_head(self.command, split.path, parse_qsl(split.query, keep_blank_values=True), headers, body)
            self._reply(200, json.dumps(payload).encode(), "application/json")
        except ApiError as err:
            error = {"RequestId": str(uuid.uuid4()).upper(), "Code": err.code, "Message": err.message}
            self._reply(err.status, json.dumps(error).encode(), "application/json")

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        png = self.server.result(path[len("/results/") :]) if path.startswith("/results/") else None
        if png is None:
            body = b"<Error><Code>AccessDenied</Code><Message>Request has expired.</Message></Error>"
            self._reply(403, body, "application/xml")
        else:
            self._reply(200, png, "image/png")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
