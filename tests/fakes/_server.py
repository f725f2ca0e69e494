"""A small threaded HTTP server that fakes share: request log, fault injection, loud failures.

Each fake subclasses `FakeServer` and implements `handle(request) -> Response`. The server runs on a daemon
thread on 127.0.0.1 with a free port. Anything unexpected (a handler crash, a request no route knows) is
answered with an error *and* recorded, and `check()` (called by `stop()`) raises it in the test thread, so a
fake never silently serves what it does not understand.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Literal
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    """One HTTP request as the fake saw it (path and query still percent-encoded)."""

    method: str
    raw_path: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def param(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return default


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    """A fault applied to the next `times` requests that `match` accepts.

    kind: "status" answers `response` instead of serving; "drop" closes the connection without a reply;
    "delay" sleeps `seconds` and then serves normally.
    """

    kind: Literal["status", "drop", "delay"]
    match: Callable[[Request], bool] = lambda request: True
    times: int = 1
    response: Response | None = None
    seconds: float = 0.0
    hits: int = 0


@dataclass
class LoggedRequest:
    request: Request
    status: int  # 0 when the connection was dropped


class FakeServer:
    """Base class: subclasses implement `handle`."""

    name = "fake"

    def __init__(self) -> None:
        self.requests: list[LoggedRequest] = []
        self.failures: list[str] = []
        self.latency = 0.0  # seconds added to every request (benchmarks)
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------------------
    def start(self) -> "FakeServer":
        self._httpd = _Httpd(("127.0.0.1", 0), _make_handler(self))
        # `shutdown()` waits for the next poll: the default 0.5 s interval made every stop (every test) slow.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name=self.name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        self.check()

    def __enter__(self) -> "FakeServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def address(self) -> str:
        """host:port, as SDK endpoints want it."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    # -- faults and bookkeeping ---------------------------------------------------------------------------------
    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def fail(self, message: str) -> None:
        """Record a test failure seen inside the server thread; raised later by `check()`."""
        with self._lock:
            self.failures.append(message)

    def check(self) -> None:
        if self.failures:
            failures, self.failures = self.failures, []
            raise AssertionError(f"{self.name} saw unexpected traffic:\n" + "\n".join(failures))

    def logged(self, predicate: Callable[[Request], bool] = lambda request: True) -> list[LoggedRequest]:
        with self._lock:
            return [entry for entry in self.requests if predicate(entry.request)]

    def _next_fault(self, request: Request) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.hits < fault.times and fault.match(request):
                    fault.hits += 1
                    return fault
        return None

    def _log(self, request: Request, status: int) -> None:
        with self._lock:
            self.requests.append(LoggedRequest(request, status))

    # -- to implement -------------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:  # pragma: no cover - abstract
        raise NotImplementedError


class _Httpd(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hung up (its read timeout during a "delay" fault, say) is expected: no traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _make_handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: with Nagle on, the body waits for the client's delayed ACK
        # (~40 ms per response on Linux).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:  # silence stderr
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            split = urlsplit(self.path)
            request = Request(
                method=self.command,
                raw_path=self.path,
                path=split.path,
                query=parse_qsl(split.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            if server.latency:
                time.sleep(server.latency)
            fault = server._next_fault(request)
            if fault is not None and fault.kind == "drop":
                server._log(request, 0)
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if fault is not None and fault.kind == "delay":
                time.sleep(fault.seconds)
            if fault is not None and fault.kind == "status":
                assert fault.response is not None
                response = fault.response
            else:
                try:
                    response = server.handle(request)
                except Exception as exc:  # a crash in the fake is a test failure, not a 500 to shrug off
                    server.fail(f"{request.method} {request.raw_path}: handler crashed: {exc!r}")
                    response = Response(599, f"fake crashed: {exc!r}".encode())
            server._log(request, response.status)
            self.send_response(response.status)
            headers = {"Content-Length": str(len(response.body)), **response.headers}
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

    return Handler
