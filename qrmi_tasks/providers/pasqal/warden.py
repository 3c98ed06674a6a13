"""HTTP client of the Pasqal warden, the service in front of an on-premises Pasqal QPU.

The API is what qrmi's client speaks (qiskit-community/qrmi@b2ed2e5
``dependencies/pasqal_local_client/src/client.rs``; records in
tests/conformance/pasqal_local): JSON bodies, a fresh MUNGE credential in
``x-munge-cred`` on every request but ``GET /accessible``, the session in
``X-Warden-Session`` on ``POST /jobs``. No maintained Python library speaks it.

Retries (:func:`qrmi_tasks.retry.with_retries`, the shared policy): 5xx, 408, 429 and
connection errors, ``Retry-After`` honoured, every wait through the run's cancellable
``pause``. A request that creates something (``POST /jobs``, ``POST /sessions``) is
repeated only when it cannot have reached the service (connection refused or not
established, 429, 503): a job carries no id or tag of ours, so a duplicate could not be
found again. ``once=True`` (the cancel path): one attempt on a connection of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import requests

from qrmi_tasks.providers.pasqal import munge
from qrmi_tasks.retry import (
    REQUEST_BACKOFF,
    TRANSIENT_STATUSES,
    Retry,
    error_text,
    retry_after_seconds,
    with_retries,
)

log = logging.getLogger("qrmi_tasks.pasqal_local")

TIMEOUTS = (10.0, 30.0)  # connect, per socket read
#: statuses by which a service says it did not process the request (safe to repeat a create)
_NOT_PROCESSED = frozenset({429, 503})
ATTEMPTS = 6


class WardenError(Exception):
    """The warden answered an error status (or an answer that is not the JSON expected)."""

    def __init__(
        self, status: int, detail: str, method: str, path: str, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {detail}")
        self.status, self.detail = status, detail
        self.retry_after = retry_after


def _never_sent(exc: BaseException) -> bool:
    """A transport failure before the request left (the service cannot have acted on it)."""
    return isinstance(exc, requests.ConnectTimeout) or "NewConnectionError" in repr(exc)


class WardenClient:
    """The warden's routes, each one request (with retries unless ``once``)."""

    def __init__(self, url: str, pause: Callable[[float], None]) -> None:
        self.url = url.rstrip("/")
        self.pause = pause
        self.session = requests.Session()

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        creates: bool = False,
        once: bool = False,
        timeout: tuple[float, float] = TIMEOUTS,
    ) -> Any:
        """The decoded JSON answer of ``method path`` (WardenError, requests' errors or
        MungeError when it fails; TransientError once retries are spent)."""
        session = requests.Session() if once else self.session

        def attempt() -> Any:
            sent = {"Content-Type": "application/json", **(headers or {})}
            if auth:  # single use: a fresh credential for every attempt
                sent["x-munge-cred"] = munge.credential()
            response = session.request(
                method, self.url + path, json=body, headers=sent, timeout=timeout
            )
            try:
                data = response.json()
            except ValueError:
                data = None
            if response.status_code >= 400:
                raise WardenError(
                    response.status_code,
                    error_text(data if data is not None else response.text, response.reason),
                    method,
                    path,
                    retry_after_seconds(response.headers.get("Retry-After")),
                )
            if data is None:  # a 2xx that is not JSON: not our API (a proxy's page...)
                raise WardenError(0, "the answer is not JSON", method, path)
            return data

        def classify(exc: Exception) -> Retry | None:
            if isinstance(exc, WardenError):
                if exc.status not in TRANSIENT_STATUSES:
                    return None
                if creates and exc.status not in _NOT_PROCESSED:
                    return None  # it may have been created: do not make a second one
                return Retry(f"HTTP {exc.status}", exc.retry_after, exc.status == 429)
            if isinstance(exc, requests.ConnectionError | requests.Timeout):
                if creates and not _never_sent(exc):
                    return None
                return Retry(type(exc).__name__)
            return None

        if once:
            try:
                return attempt()
            finally:
                session.close()
        return with_retries(
            attempt,
            what=f"{method} {path} on the warden",
            classify=classify,
            pause=self.pause,
            attempts=ATTEMPTS,
            backoff=REQUEST_BACKOFF,
        )
