"""A small client of the Felis REST API (the routes qrmi's generated client calls).

Routes, as qiskit-community/qrmi@b2ed2e5 ``dependencies/alice_bob_felis_client`` names them
(``felis_generated/README.md``, ``src/jobs.rs``): ``GET /v1/targets/``, ``POST /v1/jobs/``
(JSON ``CreateExternalJob``), ``POST /v1/jobs/{id}/input`` (multipart, one part ``input``
named ``input``: the QIR text), ``GET /v1/jobs/{id}`` (``ExternalJob``),
``DELETE /v1/jobs/{id}`` (cancel), ``GET /v1/jobs/{id}/output`` (the histogram as CSV
text). The API key is sent as it is issued: ``Authorization: Basic <key>``.

One request per call, bounded by socket timeouts and an answer size limit; failures are
raised as they are (:class:`FelisHttpError` for an error status, :class:`FelisProtocolError`
for an answer that is not what the API promises, ``requests`` exceptions when nothing
came back). Retries and error wording are the provider's (``qrmi_tasks.retry`` and the
package's ``FELIS_ERRORS``). Qiskit Alice & Bob's provider has its own client, but it
retries with uninterruptible sleeps and sets no timeouts, which a cancellable runner
cannot use.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import requests

from qrmi_tasks.answers import MAX_ANSWER_BYTES
from qrmi_tasks.retry import retry_after_seconds

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0  # per socket read; the runner bounds the whole call
MAX_BODY = MAX_ANSWER_BYTES  # the one cap on API answers; a histogram is a few MB at most
_CHUNK = 1 << 16


class FelisHttpError(Exception):
    """Felis answered an error status; ``body`` is its decoded JSON, or its text."""

    def __init__(self, method: str, path: str, status: int, body: Any, retry_after: float | None):
        super().__init__(f"{method} {path}: HTTP {status}")
        self.status = status
        self.body = body
        self.retry_after = retry_after


class FelisProtocolError(Exception):
    """An answer that is not what the API promises (not JSON, too large)."""


class FelisClient:
    """Requests to one Felis endpoint with one API key."""

    def __init__(
        self,
        endpoint: str,
        api_key: str,
        session_factory: Callable[[], requests.Session] = requests.Session,
    ) -> None:
        """``endpoint`` is the API's base URL; ``session_factory`` makes its HTTP sessions
        (the client's own, and the fresh one a cancel uses)."""
        self.endpoint = endpoint.rstrip("/")
        self._api_key = api_key
        self._new_session = session_factory
        self.session = session_factory()

    def fresh(self) -> FelisClient:
        """A client with connections of its own (the old one may be stuck in a read)."""
        return FelisClient(self.endpoint, self._api_key, self._new_session)

    def _send(self, method: str, path: str, **kwargs: Any) -> tuple[requests.Response, bytes]:
        headers = {"Authorization": f"Basic {self._api_key}", "Accept": "application/json"}
        response = self.session.request(
            method,
            self.endpoint + path,
            headers=headers,
            timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            stream=True,
            **kwargs,
        )
        try:
            chunks, size = [], 0
            for chunk in response.iter_content(_CHUNK):
                size += len(chunk)
                if size > MAX_BODY:
                    raise FelisProtocolError(
                        f"the answer to {method} {path} is larger than {MAX_BODY >> 20} MiB"
                    )
                chunks.append(chunk)
        finally:
            response.close()
        content = b"".join(chunks)
        if response.status_code >= 400:
            try:
                body: Any = json.loads(content)
            except ValueError:
                body = content.decode("utf-8", "replace")
            raise FelisHttpError(
                method,
                path,
                response.status_code,
                body,
                retry_after_seconds(response.headers.get("Retry-After")),
            )
        return response, content

    def _json(self, method: str, path: str, want: type, **kwargs: Any) -> Any:
        _, content = self._send(method, path, **kwargs)
        try:
            data = json.loads(content)
        except ValueError:
            data = None
        if not isinstance(data, want):
            kind = "not JSON" if data is None else f"JSON but not {want.__name__}"
            raise FelisProtocolError(f"the answer to {method} {path} is {kind}")
        return data

    def targets(self) -> list[dict[str, Any]]:
        """``GET /v1/targets/``: every target's description (``TargetConfiguration``)."""
        return self._json("GET", "/v1/targets/", list)

    def create_job(self, target: str, input_params: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/jobs/``: a job for ``target``, waiting for its input."""
        body = {
            # Felis has one input and one output format (qrmi's task_start sends the same)
            "inputDataFormat": "HUMAN_QIR",
            "outputDataFormat": "HISTOGRAM",
            "target": target,
            "inputParams": input_params,
        }
        return self._json("POST", "/v1/jobs/", dict, json=body)

    def upload_input(self, job_id: str, qir: str) -> None:
        """``POST /v1/jobs/{id}/input``: the program; the job starts once Felis has it."""
        # the part as qrmi's upload_input makes it: name and file name "input", octet-stream
        files = {"input": ("input", qir.encode("utf-8"), "application/octet-stream")}
        self._send("POST", f"/v1/jobs/{quote(job_id, safe='')}/input", files=files)

    def job(self, job_id: str) -> dict[str, Any]:
        """``GET /v1/jobs/{id}``: the job with its events and errors (``ExternalJob``)."""
        return self._json("GET", f"/v1/jobs/{quote(job_id, safe='')}", dict)

    def cancel(self, job_id: str) -> None:
        """``DELETE /v1/jobs/{id}``: cancel an active job (409 once it is final)."""
        self._send("DELETE", f"/v1/jobs/{quote(job_id, safe='')}")

    def output(self, job_id: str) -> bytes:
        """``GET /v1/jobs/{id}/output``: the histogram, ``bits,count`` lines, as sent."""
        return self._send("GET", f"/v1/jobs/{quote(job_id, safe='')}/output")[1]

    def close(self) -> None:
        """Close the client's connections."""
        self.session.close()
