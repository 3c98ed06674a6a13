"""Our REST client of the Qiskit Runtime API (v1): the requests one task needs.

The wire format is what qiskit-ibm-runtime 0.51 sends (``api/rest/runtime.py``,
``program_job.py``, ``runtime_session.py``, ``cloud_backend.py``, ``api/session.py``,
``api/auth.py``), checked against IBM's Qiskit Runtime REST reference and qrmi's generated
client (qiskit-community/qrmi@b2ed2e5 ``dependencies/quantum_compute_client``); the record
is ``tests/conformance/ibm/qiskit_runtime/client_requests.json``. Every request carries
``Authorization: Bearer <IAM token>``, ``Service-CRN`` and ``IBM-API-Version`` (the
library's version date), through the shared IBM client (:mod:`.rest`: retries, 401 ->
one token refresh, capped answers, one-attempt cancels):

* ``POST /jobs`` ``{program_id, backend, params, tags, session_id?, cost?}``: the payload's
  ``parameters`` unchanged; never re-posted after a failure that may have created the job;
* ``GET /jobs/{id}?exclude_params=true``: the job's ``state`` (polled);
* ``GET /jobs?exclude_params=true&limit=10&backend=B&tags=T``: the jobs of our tag (reattach,
  and the cancel path's search for what an interrupted submit created);
* ``GET /jobs/{id}/results``: streamed byte for byte to the output file; read whole (capped)
  for a failed job's traceback;
* ``POST /jobs/{id}/cancel`` (409: already final);
* ``POST /sessions`` ``{mode, backend, instance, max_ttl?}`` and ``PATCH /sessions/{id}``
  ``{accepting_jobs: false}`` (close; 404: already gone), for ``SESSION_MODE``;
* ``GET /backends/{name}/configuration`` and ``/properties`` (the target check).

Why not qiskit-ibm-runtime itself: importing it costs over a second and 100 MiB, its
``QiskitRuntimeService`` looks the instance up in IBM Cloud's catalog and lists backends
before a job can be sent, and its public primitives only take ``QuantumCircuit`` pubs,
while the payload's ``parameters`` are already the wire format.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any, BinaryIO
from urllib.parse import quote

import requests

from qrmi_tasks import token_cache
from qrmi_tasks.providers.ibm.iam import IamTokens
from qrmi_tasks.providers.ibm.rest import IbmRestClient

__all__ = ["RuntimeApi"]

log = logging.getLogger("qrmi_tasks.qiskit_runtime")

#: qiskit-ibm-runtime 0.51's ``RestAdapterBase._HEADER_API_VERSION``
API_VERSION = "2026-04-15"
#: how long 429 (too many requests) is waited out for one call before giving up
THROTTLE_SECONDS = 300.0
JOBS_LISTED = 10


def _job(job_id: str, action: str = "") -> str:
    """``/jobs/{id}[/action]`` with the id quoted: an id never adds a query or a path."""
    path = f"/jobs/{quote(job_id, safe='')}"
    return f"{path}/{action}" if action else path


def _jobs(answer: dict[str, Any]) -> list[dict[str, Any]]:
    jobs = answer.get("jobs")
    return [j for j in jobs if isinstance(j, dict)] if isinstance(jobs, list) else []


class _RuntimeClient(IbmRestClient):
    service = "Qiskit Runtime"
    retry_level = logging.WARNING  # a run that waits on the service says so


class RuntimeApi:
    """The calls one task needs; failures as :mod:`.rest` raises them (see
    ``ibm.RUNTIME_ERRORS`` for their wording)."""

    def __init__(
        self,
        endpoint: str,
        iam_endpoint: str,
        api_key: str,
        crn: str,
        pause: Callable[[float], None] = time.sleep,
        session_factory: Callable[[], requests.Session] = requests.Session,
    ) -> None:
        """``pause`` waits between attempts (the run's cancellable pause)."""
        self.iam_endpoint = iam_endpoint.rstrip("/")
        self.crn = crn
        self.tokens = IamTokens(self.iam_endpoint, api_key, token_cache.directory(os.environ))
        self.client = _RuntimeClient(
            endpoint, crn, self.tokens, pause, API_VERSION, session_factory
        )
        self.endpoint = self.client.endpoint

    @staticmethod
    def _throttle_deadline() -> float:
        return time.monotonic() + THROTTLE_SECONDS

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        answer = self.client.json(method, path, deadline=self._throttle_deadline(), **kwargs)
        log.debug("%s %s answered %s", method, path, answer)
        return answer

    def check_credentials(self) -> None:
        """Exchange the API key for a token now (raises IamError when IAM refuses it)."""
        self.client.authenticate()

    def create_job(
        self,
        program_id: str,
        backend: str,
        params: dict[str, Any],
        cost: int | None,
        session_id: str | None,
        tags: list[str],
    ) -> dict[str, Any]:
        """``POST /jobs`` with ``params`` as given; returns the answer (``id``, ``backend``)."""
        body: dict[str, Any] = {"program_id": program_id, "params": params, "backend": backend}
        # optional fields only when set, as the library sends them
        if session_id:
            body["session_id"] = session_id
        if tags:
            body["tags"] = tags
        if cost:
            body["cost"] = cost
        return self._json("POST", "/jobs", json=body, repost=False)

    def job_state(self, job_id: str) -> dict[str, Any]:
        """``GET /jobs/{id}`` without params: ``state`` (status, reason, reason_code), tags."""
        return self._json("GET", _job(job_id), params={"exclude_params": "true"})

    def error_text(self, job_id: str) -> str:
        """A failed job's error text: the tail of the traceback its results body holds."""
        text = self.client.request("GET", _job(job_id, "results"), once=True).text
        index = text.rfind("Traceback")
        return text[index:] if index != -1 else text

    def backend_documents(self, backend: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The backend's configuration and properties JSON (to build a transpiler target)."""
        base = f"/backends/{quote(backend, safe='')}"
        configuration = self._json("GET", f"{base}/configuration")
        properties = self._json("GET", f"{base}/properties")
        if properties:  # as the library does: the document names the backend asked for
            properties["backend_name"] = backend
        return configuration, properties

    def _find(self, tag: str, backend: str, once: bool) -> list[dict[str, Any]]:
        query = {"exclude_params": "true", "limit": JOBS_LISTED, "backend": backend, "tags": [tag]}
        if once:
            return _jobs(self.client.json("GET", "/jobs", params=query, once=True))
        return _jobs(self._json("GET", "/jobs", params=query))

    def find_jobs(self, tag: str, backend: str) -> list[dict[str, Any]]:
        """Jobs carrying ``tag`` on ``backend``, newest first."""
        return self._find(tag, backend, once=False)

    def find_jobs_once(self, tag: str, backend: str) -> list[dict[str, Any]]:
        """``find_jobs`` in one attempt on fresh connections (for the cancel path)."""
        return self._find(tag, backend, once=True)

    def stream_results(self, job_id: str, into: BinaryIO) -> int:
        """Write the job's result body, byte for byte, into ``into``; return its size."""
        answer = self.client.request(
            "GET", _job(job_id, "results"), into=into, deadline=self._throttle_deadline()
        )
        return answer.size

    def create_session(self, backend: str, mode: str, max_ttl: int | None = None) -> dict[str, Any]:
        """Open a ``batch`` or ``dedicated`` session on ``backend``; return the answer
        (``id``, ``mode``, and ``messages`` when the service has something to say).

        ``max_ttl`` (seconds) is sent as the session's ``max_ttl``; None leaves the
        service's default.
        """
        body: dict[str, Any] = {"mode": mode, "backend": backend, "instance": self.crn}
        if max_ttl:
            body["max_ttl"] = max_ttl
        return self._json("POST", "/sessions", json=body, repost=False)

    def close_session(self, session_id: str) -> None:
        """Stop the session from accepting jobs (its running jobs finish); a session the
        service no longer knows is closed already."""
        self.client.request(
            "PATCH",
            f"/sessions/{quote(session_id, safe='')}",
            json={"accepting_jobs": False},
            ok=(200, 204),
            accept=(404,),
            deadline=self._throttle_deadline(),
        )

    def cancel_job(self, job_id: str) -> bool:
        """One cancel request on fresh connections; False if the job is already final (409)."""
        answer = self.client.request(
            "POST", _job(job_id, "cancel"), ok=(200, 202, 204), accept=(409,), once=True
        )
        return answer.status_code != 409

    def close(self) -> None:
        """Close the HTTP connections."""
        self.client.close()
