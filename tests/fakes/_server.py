"""A small threaded HTTP server that fakes share: request log, fault injection, loud failures.

Each fake subclasses `FakeServer` and implements `handle(request) -> Response`, calling `authenticated(request)`
once the request's credentials check out. The server runs on daemon threads on 127.0.0.1 with a free port.
Anything unexpected (a handler crash, a request no route knows) is answered with an error *and* recorded, and
`check()` (called by `stop()`) raises it in the test thread, so a fake never silently serves what it does not
understand.

Fault kinds (`inject(Fault(kind, match, times, ...))` applies one to the next `times` requests `match` accepts):
    "status"   answer `response` instead of serving (`script()` queues several, one request each).
    "drop"     close the connection without a reply.
    "delay"    wait `seconds`, then serve normally (or answer `response`).
    "trickle"  serve normally (or answer `response`), but send the body `chunk` bytes every `seconds` under a
               correct Content-Length, so a client with only a per-read timeout keeps receiving. It ends early,
               closing the connection, when the client hangs up or the server stops.
    "stall"    send nothing for `seconds` (`math.inf`: until the client hangs up or the server stops), then
               close without a reply. With `after_auth=True` the stall comes only once the fake has accepted the
               request's credentials (its `authenticated()` call), so a bad signature still gets its error, and
               the operation is not performed.
    "corrupt"  serve normally, but flip one bit of the body's middle byte (or pass it through `mutate`) after the
               fake has answered, its checksums (ETag, CRC64 headers) still those of the true body.
    "cut"      serve normally, but send only the body's first `chunk` bytes under the full Content-Length, then
               close the connection: a body that breaks off mid-way.
    "hook"     call `hook(request)` on arrival, in the request's thread (it may block, e.g. to stop the client
               there): True serves the request, False closes the connection without a reply; then, once a
               served reply has been sent, `replied(request)` if set (it may block too). Hooks shared by
               several servers see one order of arrivals across them (a crash test numbers requests so).
A stalled or dropped request is logged with status 0.

A fault no request met by `stop()` fails the test (a test that arms a fault must see it fire, so a fault that
stopped matching cannot leave a test passing on the happy path); `optional=True` exempts a fault that may go
unmet by design, e.g. one arming every request of a race.

`stop()` is prompt whatever is in flight: waits are cut short, every open connection (idle keep-alive ones
too) is shut down and its handler thread joined; a thread still running `STOP_TIMEOUT` later is a failure.

`CanaryServer` is a server that must not be contacted: it answers 418 to anything, and `check()` fails the
test if any connection reached it (or, after `expect_contact()`, if none did).
"""

from __future__ import annotations

import itertools
import select
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Literal, get_args
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self needs 3.11

FaultKind = Literal["status", "drop", "delay", "trickle", "stall", "hook", "corrupt", "cut"]
STOP_TIMEOUT = 3.0  # seconds stop() waits for handler threads once their connections are shut down
_POLL = 0.02  # seconds between checks for a hung-up client during a trickle or a stall


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


def _any(request: Request) -> bool:
    return True


@dataclass
class Fault:
    """A fault applied to the next `times` requests that `match` accepts (the kinds: see the module docstring).

    `response`: what "status" answers; "delay" and "trickle" send it instead of the fake's own answer if set.
    `seconds`: the wait of "delay" and "stall", the pause before each chunk of "trickle".
    `chunk`: bytes per "trickle" write. `after_auth`: a "stall" that waits for `FakeServer.authenticated()`.
    `hook`, `replied`: what a "hook" calls on arrival and after the reply. `mutate`: what "corrupt" does to a body.
    `hits`: how many requests the fault has been applied to so far. `optional`: no failure if none met it.
    """

    kind: FaultKind
    match: Callable[[Request], bool] = _any
    times: int = 1
    response: Response | None = None
    seconds: float = 0.0
    chunk: int = 1
    after_auth: bool = False
    hook: Callable[[Request], bool] | None = None
    replied: Callable[[Request], None] | None = None
    mutate: Callable[[bytes], bytes] | None = None
    optional: bool = False
    hits: int = 0

    def __post_init__(self) -> None:
        if self.kind not in get_args(FaultKind):
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.kind == "status" and self.response is None:
            raise ValueError('a "status" fault needs a response')
        if (self.kind == "hook") != (self.hook is not None) or (self.replied is not None and self.hook is None):
            raise ValueError('a "hook" fault needs a hook, and only a "hook" fault has one (or `replied`)')
        if self.after_auth and self.kind != "stall":
            raise ValueError('only a "stall" can wait for authentication')
        if self.chunk < 1:
            raise ValueError("chunk must be at least one byte")


    def describe(self) -> str:
        match = getattr(self.match, "__qualname__", repr(self.match))
        return f"{self.kind} x{self.times} matching {match}" + (f" -> {self.response.status}" if self.response else "")


@dataclass
class LoggedRequest:
    request: Request
    status: int  # 0 when the connection was dropped or stalled


class Stalled(Exception):
    """Raised by `FakeServer.authenticated()` for an after-auth "stall": fakes must let it propagate."""

    def __init__(self, fault: Fault) -> None:
        super().__init__(f"stalled for {fault.seconds} s")
        self.fault = fault


class FakeServer:
    """Base class: subclasses implement `handle`, and call `authenticated` once a request's credentials pass."""

    name = "fake"

    def __init__(self) -> None:
        self.requests: list[LoggedRequest] = []
        self.failures: list[str] = []
        self.latency = 0.0  # seconds added to every request (benchmarks)
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._httpd: _Httpd | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connections = 0
        self._open: dict[socket.socket, threading.Thread] = {}  # connections being served -> their thread

    # -- lifecycle --------------------------------------------------------------------------------------------
    def start(self) -> Self:
        self._stopping.clear()
        self._httpd = _Httpd(("127.0.0.1", 0), _make_handler(self), self)
        # `shutdown()` waits for the next poll: the default 0.5 s interval made every stop (every test) slow.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name=self.name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end every connection and handler thread, then `check()`. Safe to call twice."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            self._stopping.set()  # cuts delays, trickles and stalls short
            httpd.shutdown()  # no more accepts once this returns
            httpd.refuse_backlog()
            stuck = self._end_connections()
            httpd.server_close()
            if stuck:
                self.fail(f"{len(stuck)} handler thread(s) still running {STOP_TIMEOUT} s after stop(): {stuck}")
            with self._lock:
                unmet, self._faults = [f for f in self._faults if not f.hits and not f.optional], []
            if unmet:
                self.fail(f"{len(unmet)} fault(s) armed but never met by a request: " + "; ".join(f.describe() for f in unmet))
        self.check()

    def __enter__(self) -> Self:
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

    @property
    def connections(self) -> int:
        """TCP connections accepted so far, served or not (one keep-alive connection carries many requests)."""
        with self._lock:
            return self._connections

    @property
    def open_connections(self) -> int:
        """Connections whose handler thread has not finished yet."""
        with self._lock:
            return len(self._open)

    # -- faults and bookkeeping ---------------------------------------------------------------------------------
    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def script(self, match: Callable[[Request], bool], responses: Iterable[Response]) -> list[Fault]:
        """The next matching requests are answered `responses`, one each and in order; later ones are served.

        E.g. `script(match, [Response(503), Response(404)])`; a `Response(404)` has an empty body and no headers
        but Content-Length, as OSS answers some 404s. Returns the "status" faults (their `hits` show use).
        """
        faults = [Fault("status", match, 1, response) for response in responses]
        with self._lock:
            self._faults.extend(faults)
        return faults

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def authenticated(self, request: Request) -> None:
        """Fakes call this once per request, when its credentials have been verified: an after-auth "stall"
        matching `request` raises `Stalled` here, which the server turns into the stall."""
        fault = self._next_fault(request, after_auth=True)
        if fault is not None:
            raise Stalled(fault)

    def fail(self, message: str) -> None:
        """Record a test failure seen inside the server thread; raised later by `check()`."""
        with self._lock:
            self.failures.append(message)

    def check(self) -> None:
        if self.failures:
            failures, self.failures = self.failures, []
            raise AssertionError(f"{self.name} saw unexpected traffic:\n" + "\n".join(failures))

    def logged(self, predicate: Callable[[Request], bool] = _any) -> list[LoggedRequest]:
        with self._lock:
            return [entry for entry in self.requests if predicate(entry.request)]

    def _next_fault(self, request: Request, after_auth: bool = False) -> Fault | None:
        """The first fault of this phase (on arrival, or at `authenticated()`) that takes `request`."""
        with self._lock:
            for fault in self._faults:
                if fault.after_auth == after_auth and fault.hits < fault.times and fault.match(request):
                    fault.hits += 1
                    return fault
        return None

    def _log(self, request: Request, status: int) -> None:
        with self._lock:
            self.requests.append(LoggedRequest(request, status))

    # -- connection tracking (called by _Httpd) -------------------------------------------------------------------
    def _opened(self, connection: socket.socket, thread: threading.Thread) -> None:
        with self._lock:
            self._connections += 1
            self._open[connection] = thread

    def _closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._open.pop(connection, None)

    def _refused(self) -> None:
        with self._lock:
            self._connections += 1

    def _end_connections(self) -> list[str]:
        """Shut every open connection down (a blocked read sees EOF, a write fails) and join its thread; returns
        the names of threads still alive after STOP_TIMEOUT."""
        with self._lock:
            still_open = list(self._open.items())
        for connection, _ in still_open:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:  # closed meanwhile
                pass
        deadline = time.monotonic() + STOP_TIMEOUT
        for _, thread in still_open:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [thread.name for _, thread in still_open if thread.is_alive()]

    # -- to implement -------------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:  # pragma: no cover - abstract
        raise NotImplementedError


class CanaryServer(FakeServer):
    """A server that must not be contacted: it answers 418 to any request and logs it, and `check()` (so
    `stop()`) fails the test if any TCP connection reached it, with or without a request. After
    `expect_contact()` it is the other way round: `check()` fails if nothing reached it. Reported once."""

    name = "canary"
    BODY = b"canary: nothing should have contacted this server\n"

    def __init__(self) -> None:
        super().__init__()
        self.expected = False
        self._reported = False

    def expect_contact(self) -> Self:
        self.expected = True
        return self

    @property
    def contacted(self) -> bool:
        return self.connections > 0

    def handle(self, request: Request) -> Response:
        return Response(418, self.BODY, {"Content-Type": "text/plain"})

    def check(self) -> None:
        if self.contacted != self.expected and not self._reported:
            self._reported = True
            if self.expected:
                self.fail("the canary expected a connection and got none")
            else:
                seen = [f"{entry.request.method} {entry.request.raw_path}" for entry in self.logged()]
                self.fail(f"the canary was contacted: {self.connections} connection(s), requests {seen}")
        super().check()


class _Httpd(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # FakeServer.stop() shuts connections down and joins their threads itself
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], fake: FakeServer) -> None:
        super().__init__(address, handler)
        self.fake = fake
        self._numbers = itertools.count(1)

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        name = f"{self.fake.name}@{self.server_address[1]} connection {next(self._numbers)}"
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), name=name, daemon=True
        )
        self.fake._opened(request, thread)
        thread.start()

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        super().shutdown_request(request)
        self.fake._closed(request)

    def refuse_backlog(self) -> None:
        """Close connections the listener queued but never accepted (counted: a canary was still contacted)."""
        self.socket.setblocking(False)
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.fake._refused()
            connection.close()

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hung up (its read timeout during a "delay" fault, say) is expected: no traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _flip_middle_bit(body: bytes) -> bytes:
    middle = len(body) // 2
    return body[:middle] + bytes([body[middle] ^ 0x10]) + body[middle + 1 :]


def _make_handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: with Nagle on, the body waits for the client's delayed ACK
        # (~40 ms per response on Linux).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:  # silence stderr
            pass

        def _serve(self) -> None:
            request = self._read_request()
            if server._stopping.is_set():  # the read was cut short by stop()
                return self._hang_up()
            if server.latency and not self._pause(server.latency):
                return self._hang_up(request)
            fault = server._next_fault(request)
            kind = fault.kind if fault is not None else None
            if kind == "drop" or (fault is not None and fault.hook is not None and not fault.hook(request)):
                return self._hang_up(request)
            if fault is not None and kind == "stall":
                return self._stall(request, fault)
            if fault is not None and kind == "delay" and not self._pause(fault.seconds):
                return self._hang_up(request)
            if fault is not None and fault.response is not None:  # "status"; or "delay", "trickle" of an answer
                response = fault.response
            else:
                try:
                    response = server.handle(request)
                except Stalled as stalled:
                    return self._stall(request, stalled.fault)
                except Exception as exc:  # noqa: BLE001 - a crash in the fake is a test failure, not a 500
                    server.fail(f"{request.method} {request.raw_path}: handler crashed: {exc!r}")
                    response = Response(599, f"fake crashed: {exc!r}".encode())
            if kind == "corrupt" and response.body:
                response = Response(response.status, (fault.mutate or _flip_middle_bit)(response.body), response.headers)  # type: ignore[union-attr]
            server._log(request, response.status)
            self.send_response(response.status)
            headers = {"Content-Length": str(len(response.body)), **response.headers}
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD" and fault is not None and kind == "trickle":
                self._trickle(response.body, fault.chunk, fault.seconds)
            elif self.command != "HEAD" and fault is not None and kind == "cut":
                self.wfile.write(response.body[: fault.chunk])
                return self._hang_up()
            elif self.command != "HEAD":
                self.wfile.write(response.body)
            if fault is not None and fault.replied is not None:
                fault.replied(request)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

        def _read_request(self) -> Request:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            split = urlsplit(self.path)
            return Request(
                method=self.command,
                raw_path=self.path,
                path=split.path,
                query=parse_qsl(split.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )

        def _hang_up(self, request: Request | None = None) -> None:
            """Close the connection without (the rest of) a reply; `request` is logged with status 0."""
            if request is not None:
                server._log(request, 0)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def _stall(self, request: Request, fault: Fault) -> None:
            server._log(request, 0)  # logged now, so a test can see the request while it stalls
            self._pause(fault.seconds, watch_client=True)
            self._hang_up()

        def _trickle(self, body: bytes, chunk: int, seconds: float) -> None:
            for start in range(0, len(body), chunk):
                if not self._pause(seconds, watch_client=True):
                    return self._hang_up()
                try:
                    self.wfile.write(body[start : start + chunk])
                except OSError:  # the client hung up between two checks
                    return self._hang_up()

        def _pause(self, seconds: float, watch_client: bool = False) -> bool:
            """Wait `seconds`; False as soon as the server stops (or, when watching, the client hangs up)."""
            if not watch_client:
                return not server._stopping.wait(seconds)
            deadline = time.monotonic() + seconds
            while (remaining := deadline - time.monotonic()) > 0:
                if server._stopping.wait(min(remaining, _POLL)) or self._client_gone():
                    return False
            return not server._stopping.is_set()

        def _client_gone(self) -> bool:
            try:
                readable, _, _ = select.select([self.connection], [], [], 0)
                return bool(readable) and not self.connection.recv(1, socket.MSG_PEEK)
            except OSError:  # reset by the client, or shut down by stop()
                return True

    return Handler
