"""What every fake service shares: a threaded HTTP server on 127.0.0.1, a request log,
and fault injection. Each fake (one per provider) subclasses :class:`FakeServer` and
implements :meth:`FakeServer.route` (the protocol: a request to a status and a body) and
:meth:`FakeServer.encode` (how the service wraps answers and errors).

Faults (``configure(faults=[...])``), matched in order by method, path prefix (``path``)
and path regex (``match``), each used ``times`` times (default 1) and, with ``until`` (a
``time.time()`` value), only until then — an outage window:

* ``{"status": 503}`` answers that status instead of serving the request;
  ``"retry_after": S`` adds a ``Retry-After`` header;
* ``{"status": 502, "after": true}`` serves the request, then answers the status (an
  answer lost on the way back: the request took effect);
* ``{"delay": S}`` answers S seconds late (combinable with the others);
* ``{"drop": true}`` closes the connection without an answer;
* ``{"hang": true}`` never answers (until the fake stops); with ``"after": true`` the
  request takes effect first (a create whose answer never comes back);
* ``{"status": 200, "body": "<html>..."}`` answers that status with this raw body
  instead of serving the request; ``"body_size": N`` sends N bytes of JSON-ish filler
  (a protocol error: HTML, truncated JSON, a list, an endless body);
* ``{"cut": N}`` serves the request, then sends the answer's headers and its first N body
  bytes and closes the connection (a transfer cut midway);
* ``{"drip": S}`` serves the request, then sends its answer one byte every S seconds
  (a slow-drip answer that per-read socket timeouts never catch).
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# Paths under this prefix are the test's control channel: never faulted, never logged.
CONTROL_PREFIX = "/_fake/"


@dataclass
class Request:
    """One HTTP request as the fakes see it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any
    body: bytes
    target: str = ""  # path and query as sent

    def json(self) -> Any:
        """The body decoded as JSON (None when empty or not JSON)."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


@dataclass
class Response:
    """An answer: ``body`` is raw bytes, or anything :meth:`FakeServer.encode` wraps."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-answer (a runner cancelled, killed or timing out: what
    the tests do) is normal here, not a traceback in the test output."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeServer:
    """Base of the fake services (state, lifecycle, request log, faults)."""

    def __init__(self, **config: Any) -> None:
        self.lock = threading.RLock()
        self.config: dict[str, Any] = {"faults": [], **config}
        self.requests: list[dict[str, Any]] = []
        self.server: ThreadingHTTPServer | None = None
        self.stopped = threading.Event()  # ends hanging and dripping answers

    # -- lifecycle --------------------------------------------------------------------------
    def start(self, port: int = 0):
        """Serve on ``port`` of 127.0.0.1 (a free one by default) in a background thread."""
        self.server = _QuietServer(("127.0.0.1", port), _handler(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.stopped.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    # -- test control -----------------------------------------------------------------------
    def configure(self, **changes: Any) -> None:
        """Merge ``changes`` into the config; ``faults`` are appended to the pending ones."""
        with self.lock:
            self.config["faults"].extend(changes.pop("faults", []))
            self.config.update(changes)

    def calls(self, method: str, path_regex: str) -> list[dict[str, Any]]:
        """Logged requests with this method whose path matches ``path_regex`` fully."""
        with self.lock:
            return [
                r
                for r in self.requests
                if r["method"] == method and re.fullmatch(path_regex, r["path"])
            ]

    def take_fault(self, method: str, path: str) -> dict[str, Any] | None:
        """The first pending fault for this request, used up once."""
        with self.lock:
            for fault in self.config["faults"]:
                if (
                    fault.get("method", method) == method
                    and path.startswith(fault.get("path", "/"))
                    and re.fullmatch(fault.get("match", ".*"), path)
                    and fault.get("times", 1) > 0
                    and time.time() < fault.get("until", float("inf"))
                    and self.fault_applies(fault, path)
                ):
                    fault["times"] = fault.get("times", 1) - 1
                    return dict(fault)
        return None

    def fault_applies(self, fault: dict[str, Any], path: str) -> bool:
        """A fake's own condition on a matching fault (its service's state); always here."""
        return True

    def record(self, request: Request, status: int) -> None:
        """Log a request (status 0: the connection was dropped)."""
        with self.lock:
            self.requests.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "query": request.query,
                    "headers": dict(request.headers.items()),
                    "body": request.body,
                    "status": status,
                    "time": time.time(),
                }
            )

    # -- protocol (subclasses) --------------------------------------------------------------
    def route(self, request: Request) -> tuple[int, Any]:
        """Serve one request: (status, body for :meth:`encode`)."""
        raise NotImplementedError

    def fault(self, request: Request, status: int) -> Response:
        """The answer for an injected error status, in the service's error format."""
        return Response(status, {"error": f"injected fault {status}"})

    def encode(self, request: Request, response: Response) -> tuple[bytes, str]:
        """Body bytes and content type of ``response`` (JSON unless already bytes)."""
        if isinstance(response.body, bytes):
            return response.body, "application/octet-stream"
        if response.body is None:
            return b"", ""
        return json.dumps(response.body).encode(), "application/json"


def _handler(fake: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            request = Request(
                self.command, parts.path, parse_qs(parts.query), self.headers, self._body()
            )
            request.target = self.path
            control = request.path.startswith(CONTROL_PREFIX)
            fault = None if control else fake.take_fault(request.method, request.path)
            if fault and fault.get("delay"):
                time.sleep(float(fault["delay"]))
            if fault and fault.get("hang"):
                if fault.get("after"):
                    fake.route(request)
                fake.record(request, 0)
                fake.stopped.wait()
                self.close_connection = True
                return
            if fault and fault.get("drop"):
                fake.record(request, 0)
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(2)
                return
            if fault and fault.get("status"):
                if fault.get("after"):
                    fake.route(request)  # it takes effect; only the answer is lost
                response = fake.fault(request, int(fault["status"]))
                if fault.get("body") is not None:
                    response = Response(response.status, str(fault["body"]).encode())
                elif fault.get("body_size"):
                    response = Response(response.status, b"[" + b"0," * (fault["body_size"] // 2))
                if fault.get("retry_after") is not None:
                    response.headers["Retry-After"] = str(fault["retry_after"])
            else:
                response = Response(*fake.route(request))
            if not control:
                fake.record(request, response.status)
            data, content_type = fake.encode(request, response)
            if fault and fault.get("drip"):
                self._drip(response, data, content_type, float(fault["drip"]))
                return
            length = len(data)  # what the headers promise, even when the body is cut
            if fault and fault.get("cut") is not None:
                data = data[: int(fault["cut"])]
                self.close_connection = True
            self.send_response(response.status)
            for key, value in response.headers.items():
                self.send_header(key, value)
            if content_type and "Content-Type" not in response.headers:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(data)

        def _drip(self, response: Response, data: bytes, content_type: str, every: float) -> None:
            lines = [f"HTTP/1.1 {response.status} OK"]
            lines += [f"{k}: {v}" for k, v in response.headers.items()]
            lines += [f"Content-Type: {content_type}", f"Content-Length: {len(data)}", "", ""]
            whole = "\r\n".join(lines).encode() + data
            self.close_connection = True
            for i in range(len(whole)):
                if fake.stopped.wait(every):
                    return
                try:
                    self.wfile.write(whole[i : i + 1])
                    self.wfile.flush()
                except OSError:
                    return

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    return Handler
