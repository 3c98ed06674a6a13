"""A forwarding proxy in front of the moto S3 server, so S3 transfers can be faulted.

moto serves S3 itself and has no fault injection; this FakeServer passes every request
through unchanged (moto does not check that signatures match the Host it sees) and adds
the shared faults (hung or slow-drip downloads, cut transfers, error statuses) on top.

An injected status is answered in S3's error format, with the code S3 gives for it
(Amazon S3 API Reference, "Error responses", list of error codes: ``AccessDenied`` 403,
``NoSuchKey`` 404, ``InternalError`` 500, ``SlowDown`` 503 "Please reduce your request
rate.").
"""

from __future__ import annotations

import http.client
from typing import Any
from urllib.parse import urlsplit

from .server import FakeServer, Request, Response

S3_ERROR_CODES = {
    403: ("AccessDenied", "Access Denied"),
    404: ("NoSuchKey", "The specified key does not exist."),
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class S3Proxy(FakeServer):
    """Forwards to the S3 server at ``target`` (``http://host:port``)."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = urlsplit(target)

    def route(self, request: Request) -> tuple[int, Any]:
        connection = http.client.HTTPConnection(self.target.hostname, self.target.port, timeout=60)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Host"] = request.headers.get("Host", self.target.netloc)
        try:
            connection.request(request.method, request.target, body=request.body, headers=headers)
            answer = connection.getresponse()
            body = answer.read()
            kept = {k: v for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP}
        finally:
            connection.close()
        return answer.status, body, kept  # type: ignore[return-value]

    def fault(self, request: Request, status: int) -> Response:
        """An injected status as S3 words it (an XML ``Error`` body)."""
        code, message = S3_ERROR_CODES.get(status, (f"Http{status}", "Injected fault"))
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            "<RequestId>4442587FB7D0A2F9</RequestId></Error>"
        )
        return Response(status, body.encode(), {"Content-Type": "application/xml"})
