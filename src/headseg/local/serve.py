"""`headseg serve`'s HTTP server: the SegmentHead API (`segmenthead.SegmentHead`) on a port, backed by any head
cutter (the offline engine by default).

Point the imageseg endpoint at it (`IMAGESEG_ENDPOINT=http://127.0.0.1:8080`) and the cloud code path, with the
real SDK, runs fully offline: same request, same JSON, temporary result URLs (30 minutes) that it serves
itself. Or call it by hand: `curl -X POST 'http://127.0.0.1:8080/?Action=SegmentHead&Version=2019-12-30&
ImageURL=file:///path/to/photo.jpg'` (`segmenthead.USAGE`). ACS3 signatures are checked when credentials are
given. Besides http(s), `ImageURL` may be a `file://` URL (what a directory bucket signs), unless turned off.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Mapping
from urllib.parse import parse_qsl, urlsplit

from headseg.local.acs3 import ApiError, Gateway, Reply
from headseg.local.segmenthead import LIMITS, Cutter, SegmentHead, Sources, error_reply

log = logging.getLogger(__name__)

MAX_BODY = LIMITS.max_bytes + 1024 * 1024  # an uploaded image and its form; SegmentHead's own calls have no body


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes


class SegmentHeadServer(ThreadingHTTPServer):
    """`serve_forever()` answers SegmentHead calls with `cut(image_bytes, return_form)`. `credentials`
    (access key id -> secret) and `tokens` (access key id -> STS token): who may call; None lets anyone in,
    unsigned. `qps`: SegmentHead's quota (None: unlimited)."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        cut: Cutter,
        credentials: Mapping[str, str] | None = None,
        allow_file_urls: bool = True,
        *,
        tokens: Mapping[str, str] | None = None,
        qps: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(address, _Handler)
        gateway = Gateway(credentials, tokens)
        self.api = SegmentHead(cut, lambda: self.url, gateway=gateway, sources=Sources(files=allow_file_urls), clock=clock)
        self.api.quota.qps = qps

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: SegmentHeadServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self) -> None:
        split = urlsplit(self.path)
        length = self.headers.get("Content-Length") or "0"
        if not length.isdigit() or int(length) > MAX_BODY:  # not read: the connection closes after the answer
            self.close_connection = True
            message = f"The request body ({length} bytes) is over {MAX_BODY} bytes: an image is at most {LIMITS.max_bytes}."
            reply = error_reply(ApiError(413, "InvalidImage.Size", message))
        else:
            query = parse_qsl(split.query, keep_blank_values=True)
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = self._reply(Request(self.command, split.path, query, headers, self.rfile.read(int(length))))
        self.send_response(reply.status)
        if self.close_connection:
            self.send_header("Connection", "close")
        for name, value in {**reply.headers, "Content-Length": str(len(reply.body))}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def _reply(self, request: Request) -> Reply:
        try:
            return self.server.api.answer(request)
        except Exception as exc:  # noqa: BLE001 - a bug answers 500 and is logged, the server keeps serving
            log.exception("SegmentHead failed on %s %s", request.method, request.path)
            return error_reply(ApiError(500, "InternalError", f"The request failed: {exc!r}"))

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _answer
