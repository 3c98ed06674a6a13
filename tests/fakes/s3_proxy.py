"""A forwarding proxy in front of the moto S3 server, so S3 transfers can be faulted.

moto serves S3 itself and has no fault injection; this FakeServer passes every request
through unchanged (moto does not check that signatures match the Host it sees) and adds
the shared faults (hung or slow-drip downloads, error statuses) on top.
"""

from __future__ import annotations

import http.client
from typing import Any
from urllib.parse import urlsplit

from .server import FakeServer, Request

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
