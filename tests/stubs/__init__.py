"""Local stand-ins for the vendors' HTTP APIs, replaying their documented payloads.

Each stub is a threaded HTTP server on 127.0.0.1 with an ephemeral port. It keeps
records in memory so a test can seed data, stores every request it receives so a
test can assert on it, and can be set to fail in the ways the real services fail.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import logging
import socket
import ssl
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def load_fixture(vendor: str, name: str) -> dict[str, Any]:
    """Read `tests/fixtures/<vendor>/<name>.json`: a recorded request and response."""
    path = FIXTURES / vendor / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8"))


@dataclasses.dataclass
class RecordedRequest:
    """One request as the stub received it."""

    method: str
    path: str
    raw_query: str
    headers: dict[str, str]
    body: bytes

    @property
    def query(self) -> dict[str, list[str]]:
        """The query string decoded as a form, so `+` reads as a space."""
        return parse_qs(self.raw_query, keep_blank_values=True)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(self.body.decode("utf-8")).items()}


@dataclasses.dataclass
class Reply:
    """What the stub sends back: a status, headers and a body."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> "Reply":
        all_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        return cls(status, json.dumps(payload).encode("utf-8"), all_headers)

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/plain") -> "Reply":
        return cls(status, text.encode("utf-8"), {"Content-Type": content_type})


@dataclasses.dataclass
class Fault:
    """A failure to inject in place of the normal reply.

    The fault lets `after` matching requests through, then applies to the next
    `times` matching requests (every one when `times` is None). A request matches
    when its path starts with `path` and, when `method` is set, has that method.
    `delay` seconds pass before the reply, which is `reply` or, when that is None,
    the normal reply. `delay_after` seconds pass after the normal reply was built,
    so the request has taken effect when the client gives up waiting.
    """

    reply: Reply | None = None
    delay: float = 0.0
    delay_after: float = 0.0
    method: str | None = None
    path: str = "/"
    after: int = 0
    times: int | None = 1
    seen: int = 0
    applied: int = 0

    def claim(self, request: RecordedRequest) -> bool:
        """Count `request` and tell whether this fault applies to it."""
        if not request.path.startswith(self.path):
            return False
        if self.method is not None and request.method != self.method:
            return False
        self.seen += 1
        if self.seen <= self.after:
            return False
        if self.times is not None and self.applied >= self.times:
            return False
        self.applied += 1
        return True


class StubServer:
    """A threaded HTTP or HTTPS server whose subclasses implement `route`.

    Use it as a context manager or call `start()` and `stop()`.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None):
        self.ssl_context = ssl_context
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Life cycle

    def start(self) -> "StubServer":
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "StubServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`, the address the server listens on."""
        assert self._server is not None, "the stub is not started"
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{self.host}"

    # Faults

    def add_fault(self, fault: Fault) -> Fault:
        """Inject `fault`. Faults are tried in the order they were added."""
        with self.lock:
            self.faults.append(fault)
        return fault

    def delay(self, seconds: float, path: str = "/", times: int | None = None) -> Fault:
        """Delay the replies to requests under `path` by `seconds`."""
        return self.add_fault(Fault(delay=seconds, path=path, times=times))

    def fail(self, reply: Reply, path: str = "/", after: int = 0, times: int | None = 1) -> Fault:
        """Send `reply` to requests under `path` instead of the normal reply."""
        return self.add_fault(Fault(reply=reply, path=path, after=after, times=times))

    def slow_after_effect(self, seconds: float, path: str = "/", method: str | None = None, times: int | None = 1) -> Fault:
        """Carry out matching requests, then hold the reply back for `seconds`."""
        return self.add_fault(Fault(delay_after=seconds, path=path, method=method, times=times))

    def malformed_json(self, path: str = "/", times: int | None = 1) -> Fault:
        """Reply 200 with a JSON content type and a truncated JSON body."""
        reply = Reply(200, b'{"records": [{"Id": ', {"Content-Type": "application/json"})
        return self.fail(reply, path=path, times=times)

    # Requests

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        """Return the requests received under `path`, optionally of one method."""
        with self.lock:
            return [
                request
                for request in self.requests
                if request.path.startswith(path) and (method is None or request.method == method)
            ]

    def route(self, request: RecordedRequest) -> Reply:
        """Build the normal reply to `request`."""
        raise NotImplementedError

    def _dispatch(self, request: RecordedRequest) -> Reply:
        with self.lock:
            self.requests.append(request)
            fault = next((fault for fault in self.faults if fault.claim(request)), None)

        if fault is not None and fault.delay:
            self._stopping.wait(fault.delay)
        if fault is not None and fault.reply is not None:
            return fault.reply

        try:
            reply = self.route(request)
        except Exception:
            log.exception("Stub %s: %s %s failed", type(self).__name__, request.method, request.path)
            return Reply.text(500, "stub error")
        if fault is not None and fault.delay_after:
            self._stopping.wait(fault.delay_after)
        return reply


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, stub: StubServer):
        self.stub = stub
        super().__init__(address, handler)

    def process_request_thread(self, request: socket.socket, client_address) -> None:
        # The TLS handshake runs here, in the connection's own thread, so a slow
        # or failed handshake never blocks the accept loop.
        if self.stub.ssl_context is not None:
            try:
                request = self.stub.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                self.shutdown_request(request)
                return
        super().process_request_thread(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes. Without TCP_NODELAY the second one
    # waits for the client's delayed ACK on a kept-alive connection.
    disable_nagle_algorithm = True
    server: _Server

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = RecordedRequest(
            method=self.command,
            path=parts.path,
            raw_query=parts.query,
            headers={key: value for key, value in self.headers.items()},
            body=body,
        )

        reply = self.server.stub._dispatch(request)

        self.send_response(reply.status)
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("Stub %s: " + format, self.server.stub.host, *args)


def server_ssl_context(authority: Any) -> ssl.SSLContext:
    """Build a server TLS context with a certificate for 127.0.0.1 from a `trustme.CA`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    certificate.configure_cert(context)
    return context

