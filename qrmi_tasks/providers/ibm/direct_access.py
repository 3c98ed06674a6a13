"""IBM Direct Access (``direct-access``, also ``ibm-quantum-system``) provider.

Flow (see docs/direct-access.md): the client picks the job id, uploads the primitive
parameters to S3, presigns GET/PUT URLs, ``POST /v1/jobs``, polls ``GET /v1/jobs/{id}``
(falling back to the job list where that route is missing), streams
``results_{id}.json`` from S3 and deletes the job once the result is safe. Under Slurm
the job id is stable across a requeue, so a rerun attaches to the job it already
submitted instead of running it twice. The input object's name carries the payload's
digest (``input_{id}.sha256-<16 hex>.json``) and the job answer names it, so a
``--task-id`` reused for another payload is refused instead of attached
(:mod:`qrmi_tasks.binding`). Imports neither qiskit nor pulser.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any, BinaryIO, ClassVar
from urllib.parse import quote

import requests

from qrmi_tasks import binding, token_cache
from qrmi_tasks.errors import (
    AuthenticationError,
    ConfigError,
    Interrupted,
    PayloadError,
    ProviderError,
    TransientError,
)
from qrmi_tasks.payload import QISKIT, CheckedPayload
from qrmi_tasks.providers.base import Provider, StatusReport, TaskStatus
from qrmi_tasks.providers.ibm import job_reason
from qrmi_tasks.providers.ibm.da_client import DirectAccessClient, error_message
from qrmi_tasks.providers.ibm.da_storage import (
    JobStorage,
    digest_of_job,
    logs_key,
    results_key,
)
from qrmi_tasks.providers.ibm.iam import IamTokens

log = logging.getLogger("qrmi_tasks.direct_access")

_STATUS = {
    "running": TaskStatus.RUNNING,  # queued jobs report Running too
    "queued": TaskStatus.QUEUED,
    "completed": TaskStatus.COMPLETED,
    "failed": TaskStatus.FAILED,
    "cancelled": TaskStatus.CANCELLED,
}
# After a cancel the job takes a moment to become terminal before DELETE is allowed.
_DELETE_WAIT_SECONDS = 10.0


def _failure_message(job: dict[str, Any]) -> str:
    text = job_reason(job.get("reason_code"), job.get("reason_message"), job.get("reason_solution"))
    return text or "no reason given"


def _job_path(job_id: str, action: str = "") -> str:
    """``/v1/jobs/{id}[/action]`` with the id quoted: an id never adds a query or a path."""
    path = f"/v1/jobs/{quote(job_id, safe='')}"
    return f"{path}/{action}" if action else path


class DirectAccessProvider(Provider):
    """Run Qiskit primitives on an IBM Direct Access backend."""

    payload_kinds: ClassVar[frozenset[str]] = frozenset({QISKIT})
    has_logs: ClassVar[bool] = True
    can_reattach: ClassVar[bool] = True
    #: makes the client's HTTP sessions (None: ``requests.Session``); tests hand one whose
    #: transport they script, so the client's rules run without a server process
    session_factory: ClassVar[Callable[[], requests.Session] | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        s = self.settings
        # None only on an instance made for backend_documents (the target settings only)
        self.timeout_secs: int = s["QRMI_JOB_TIMEOUT_SECONDS"]
        self.client = DirectAccessClient(
            s["ENDPOINT"],
            s["SERVICE_CRN"],
            IamTokens(s["IAM_ENDPOINT"], s["IAM_APIKEY"], token_cache.directory(os.environ)),
            self.context.pause,
            s["API_VERSION"],
            self.session_factory or requests.Session,
        )
        self._storage: JobStorage | None = None
        self._list_only = False  # the server lacks GET /v1/jobs/{id}
        self._posted = False  # submit has sent POST /v1/jobs: the job may exist
        self._deadline = time.monotonic() + (self.timeout_secs or 0)

    @property
    def storage(self) -> JobStorage:
        if self._storage is None:  # only a submission and a result download need S3
            s = self.settings
            self._storage = JobStorage(
                s["S3_ENDPOINT"],
                s["S3_REGION"],
                s["S3_BUCKET"],
                s["AWS_ACCESS_KEY_ID"],
                s["AWS_SECRET_ACCESS_KEY"],
                s["S3_ENDPOINT_FOR_QSAPI"],
                self.context.pause,
                self.session_factory or requests.Session,
            )
        return self._storage

    def backend_documents(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """``GET /v1/backends/{name}/configuration`` and ``.../properties``."""
        base = f"/v1/backends/{quote(self.resource.name, safe='')}"
        return self.client.json("GET", f"{base}/configuration"), self.client.json(
            "GET", f"{base}/properties"
        )

    # -- job lookup ---------------------------------------------------------------------
    def _get_job(self, job_id: str) -> dict[str, Any] | None:
        """The job, or None if the server does not know it.

        IBM's published DA simulator has no ``GET /v1/jobs/{id}`` (404/405): the job list
        then tells whether the job exists, and is used from then on.
        """
        if not self._list_only:
            response = self.client.request(
                "GET", _job_path(job_id), accept=(404, 405), want_json=True
            )
            if response.status_code == 200:
                return response.data
            if response.status_code == 405:
                self._list_only = True
        jobs = self.client.json("GET", "/v1/jobs").get("jobs")
        if not isinstance(jobs, list):
            raise ProviderError("Direct Access GET /v1/jobs: protocol error: no 'jobs' list")
        found = next((j for j in jobs if isinstance(j, dict) and j.get("id") == job_id), None)
        if found is not None and not self._list_only:
            log.debug("GET /v1/jobs/{id} is not served here; polling the job list instead")
            self._list_only = True
        return found

    # -- Provider interface -------------------------------------------------------------
    def _check_backend(self, backend: str) -> None:
        """Authenticate and check the backend before anything is uploaded."""
        response = self.client.request(
            "GET", f"/v1/backends/{quote(backend, safe='')}", accept=(404,), want_json=True
        )
        if response.status_code == 404:
            raise ConfigError(
                f"backend '{backend}' is not offered by Direct Access at "
                f"{self.client.endpoint}: {error_message(response)}"
            )
        info = response.data
        state = str(info.get("status", "online")).lower()
        if state != "online":
            log.warning(
                "backend %s is %s%s; the job will wait",
                backend,
                state,
                f" ({info['message']})" if info.get("message") else "",
            )
        elif info.get("locked"):
            # qrmi's Backend model: "locked by an active reservation" (POST then answers 423)
            log.warning("backend %s is locked by a reservation; the job will wait", backend)

    def submit(self, payload: CheckedPayload) -> str:
        job_id = self.context.request_id
        backend = self.resource.name
        self._check_backend(backend)
        if self.context.deterministic_id:
            existing = self._get_job(job_id)
            if existing is not None:
                log.info(
                    "job %s already exists on %s (status %s): an earlier run under this "
                    "id submitted it",
                    job_id,
                    backend,
                    existing.get("status"),
                )
                self.attached = True
                self.attached_digest = digest_of_job(existing)  # the runner checks it
                return job_id
        digest = self.context.payload_digest
        self.storage.upload_input(job_id, digest, json.dumps(payload.parameters).encode())
        body = {
            "id": job_id,
            "backend": backend,
            "program_id": payload.program_id,
            "log_level": self.settings["LOG_LEVEL"],
            "timeout_secs": self.timeout_secs,
            "storage": self.storage.presigned(job_id, self.timeout_secs, digest),
        }
        log.debug("POST /v1/jobs %s", json.dumps(body))  # presigned signatures are masked
        if self.context.interrupted():
            raise Interrupted  # nothing exists yet but the uploaded input
        self._posted = True
        try:
            response = self.client.request(
                "POST",
                "/v1/jobs",
                json=body,
                ok=(200, 201, 202, 204),
                accept=(400, 409, 413, 422),
                deadline=self._deadline,
            )
        except Interrupted:
            raise Interrupted(job_id) from None  # the POST may have reached the server
        except AuthenticationError:
            raise
        except ProviderError:
            # the POST may have succeeded although its answer was lost
            existing = self._get_job_quietly(job_id)
            if existing is None:
                raise
            found = digest_of_job(existing)
            if binding.matches(found, digest):
                log.warning("job %s was created although the POST reported an error", job_id)
            else:  # another run's job under this id: the runner refuses it
                self.attached, self.attached_digest = True, found
            return job_id
        if response.status_code == 409:
            # our id is the request id: a 409 is this request's own earlier job
            log.info("job %s already exists (409 on POST /v1/jobs)", job_id)
            self.attached = True
            existing = self._get_job_quietly(job_id)
            self.attached_digest = digest_of_job(existing) if existing else None
        elif response.status_code in (400, 413, 422):
            # 422: the body failed the service's validation (FastAPI's {"detail": [...]})
            raise PayloadError(
                f"Direct Access rejected the job (HTTP {response.status_code}): "
                f"{error_message(response)}"
            )
        return job_id

    def _get_job_quietly(self, job_id: str) -> dict[str, Any] | None:
        try:
            return self._get_job(job_id)
        except ProviderError:
            return None

    def status(self, task_id: str) -> StatusReport:
        job = self._get_job(task_id)
        if job is None:
            raise ProviderError(f"job {task_id} is not known to Direct Access (deleted?)")
        raw = str(job.get("status", "")).lower()
        status = _STATUS.get(raw)
        if status is None:
            raise ProviderError(f"job {task_id}: unexpected status {job.get('status')!r}")
        details: dict[str, Any] = {}
        usage = job.get("usage") or {}
        if isinstance(usage, dict) and usage.get("quantum_nanoseconds") is not None:
            details["quantum time"] = f"{usage['quantum_nanoseconds'] / 1e9:.3f} s"
        message = _failure_message(job) if status is TaskStatus.FAILED else None
        return StatusReport(status, message, details)

    def fetch_result(self, task_id: str, into: BinaryIO) -> None:
        self.storage.download(results_key(task_id), into)

    def fetch_logs(self, task_id: str, into: BinaryIO) -> bool:
        return self.storage.download(logs_key(task_id), into, missing_ok=True)

    def cancel(self, task_id: str) -> None:
        # 409: already terminal, which is what we wanted
        self.client.request(
            "POST", _job_path(task_id, "cancel"), ok=(200, 202, 204), accept=(404, 409), once=True
        )

    def cancel_submission(self) -> list[str]:
        # The job id is ours (the request id): cancel it blindly once our POST may have
        # created it; 404 means never created. Before the POST, a job under this id is
        # an earlier run's (perhaps for another payload, a --task-id reused): left alone.
        job_id = self.context.request_id
        if not self._posted:
            return []
        response = self.client.request(
            "POST", _job_path(job_id, "cancel"), ok=(200, 202, 204), accept=(404, 409), once=True
        )
        return [] if response.status_code == 404 else [job_id]

    def cleanup(self, task_id: str) -> None:
        # One attempt per request on a connection of its own (this also runs after a
        # cancel, beside a call that may still hold the old one); after a cancel the job
        # takes a moment to become terminal before DELETE is allowed (409 until then).
        deadline = time.monotonic() + _DELETE_WAIT_SECONDS
        delay = 0.05
        while True:
            try:
                response = self.client.request(
                    "DELETE", _job_path(task_id), ok=(200, 204), accept=(404, 409), once=True
                )
                if response.status_code != 409:
                    log.debug("job %s deleted", task_id)
                    return
                reason = "still not terminal"
            except TransientError as exc:
                reason = exc.message
            if time.monotonic() >= deadline:
                log.warning("job %s could not be deleted (%s)", task_id, reason)
                return
            time.sleep(delay)  # not cancellable on purpose: we are already stopping
            delay = min(delay * 2, 1.0)

    def close(self) -> None:
        self.client.session.close()
        if self._storage is not None:
            self._storage.close()
