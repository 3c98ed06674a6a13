"""Qiskit Runtime Service (``qiskit-runtime-service``, also ``ibm-quantum-compute-service``).

Our REST client :mod:`qrmi_tasks.providers.ibm.qiskit_runtime_api` speaks to the service
(see docs/qiskit-runtime.md for the requests): IAM token exchange at the configured IAM
endpoint, ``POST /jobs`` with the payload's ``parameters`` unchanged on backend NAME,
polling ``GET /jobs/{id}``, the result body streamed byte for byte, one-attempt cancels.
Retries follow the shared IBM rules (:mod:`qrmi_tasks.providers.ibm.rest`); failures
become one-line errors through ``ibm.RUNTIME_ERRORS``. qiskit-ibm-runtime is not imported.

Each job carries the tag ``qrmi-<request id>``: under Slurm a requeued or rerun step finds
the job it already submitted and attaches to it instead of running it twice. It also
carries ``qrmi-digest-<16 hex>``, its payload's digest (:mod:`qrmi_tasks.binding`): a
``--task-id`` reused for another payload is refused instead of attached.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, BinaryIO, ClassVar, TypeVar

import requests

from qrmi_tasks import binding
from qrmi_tasks.config import Setting
from qrmi_tasks.errors import (
    ConfigError,
    Interrupted,
    PayloadError,
    ProviderError,
    QrmiError,
)
from qrmi_tasks.payload import QISKIT, CheckedPayload
from qrmi_tasks.providers.base import Provider, StatusReport, TaskStatus
from qrmi_tasks.providers.ibm import QISKIT_RUNTIME, RUNTIME_ERRORS, job_reason
from qrmi_tasks.providers.ibm.qiskit_runtime_api import RuntimeApi
from qrmi_tasks.retry import one_line

log = logging.getLogger("qrmi_tasks.qiskit_runtime")
T = TypeVar("T")

TAG_PREFIX = "qrmi-"
# The API's job states (JobState.status: Queued, Running, Completed, Failed, Cancelled;
# see tests/conformance/qiskit_runtime/), lower-cased.
_STATUS = {
    "initializing": TaskStatus.QUEUED,
    "queued": TaskStatus.QUEUED,
    "running": TaskStatus.RUNNING,
    "completed": TaskStatus.COMPLETED,
    "failed": TaskStatus.FAILED,
    "cancelled": TaskStatus.CANCELLED,
}
# A job cancelled for running past its cost: a failure, as qiskit-ibm-runtime reports it.
RAN_TOO_LONG = 1305
_ALIVE = ("queued", "running", "completed", "initializing")


def _state(job: dict[str, Any]) -> dict[str, Any]:
    """A job's ``state`` object (``status``, ``reason``, ``reason_code``, ...)."""
    state = job.get("state")
    return state if isinstance(state, dict) else {}


def _api_status(job: dict[str, Any]) -> str:
    return str(_state(job).get("status") or job.get("status") or "").lower()


def _reason(state: dict[str, Any]) -> str:
    """``state.reason`` with its code and suggested solution, or '' when there is none."""
    code = state.get("reason_code") or state.get("reasonCode")
    return job_reason(code, state.get("reason"), state.get("reason_solution"))


def _session_messages(answer: dict[str, Any]) -> list[str]:
    """The notes a session answer carries (``messages``: strings or objects)."""
    found = []
    for item in answer.get("messages") or []:
        if isinstance(item, dict):
            text = item.get("data") or item.get("message") or item.get("text") or item
        else:
            text = item
        found.append(one_line(text))
    return found


class QiskitRuntimeProvider(Provider):
    """Run Qiskit primitives on an IBM Qiskit Runtime (IBM Quantum Platform) backend."""

    payload_kinds: ClassVar[frozenset[str]] = frozenset({QISKIT})
    can_reattach: ClassVar[bool] = True
    #: makes the client's HTTP sessions (None: ``requests.Session``); tests hand one whose
    #: transport they script
    session_factory: ClassVar[Callable[[], requests.Session] | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._api: RuntimeApi | None = None
        # a given session (SESSION_ID or the plugin's acquisition token) is never closed here
        self._session_id: str | None = self.settings["SESSION_ID"]
        self._own_session = False  # a session this run opened (and so closes)

    # -- the service's API ----------------------------------------------------------------
    @property
    def api(self) -> RuntimeApi:
        """Our client of the service's REST API (built on first use)."""
        if self._api is None:
            s = self.settings
            self._api = RuntimeApi(
                s["ENDPOINT"],
                s["IAM_ENDPOINT"],
                s["IAM_APIKEY"],
                s["SERVICE_CRN"],
                self.context.pause,
                self.session_factory or requests.Session,
            )
            log.debug(
                "Qiskit Runtime API %s, IAM %s, instance %s",
                self._api.endpoint,
                self._api.iam_endpoint,
                s["SERVICE_CRN"],
            )
        return self._api

    def _variable(self, name: str) -> str:
        return self.resource.source(Setting(name))

    def _session_source(self) -> str:
        """Which variable named the given session (SESSION_ID or the acquisition token)."""
        hit = self.resource.found(QISKIT_RUNTIME.setting("SESSION_ID"))
        return hit[0] if hit else self._variable("SESSION_ID")

    def _call(
        self,
        what: str,
        action: Callable[[], T],
        *,
        fail: dict[int, type[QrmiError]] | None = None,
    ) -> T:
        """Run one client call (the client retries what may be retried); raise its
        failure as a one-line error. ``fail`` maps HTTP statuses to the error class to
        raise (default ProviderError)."""
        with RUNTIME_ERRORS.mapped(overrides=fail, what=what, **self._where()):
            return action()

    def _where(self) -> dict[str, str]:
        """What RUNTIME_ERRORS' messages name: the URLs and the variables to check."""
        return {
            "endpoint": self.api.endpoint,
            "iam": self.api.iam_endpoint,
            "apikey": self._variable("IAM_APIKEY"),
            "crn": self._variable("SERVICE_CRN"),
        }

    def backend_documents(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Backend NAME's configuration and properties, with the same endpoints, IAM
        handling and error messages as a run."""
        api = self.api
        self._call("get an IAM token", api.check_credentials)
        return self._call(
            f"get the configuration and properties of {self.resource.name}",
            lambda: api.backend_documents(self.resource.name),
            fail={404: ConfigError},
        )

    # -- Provider interface -------------------------------------------------------------
    @property
    def tag(self) -> str:
        return TAG_PREFIX + self.context.request_id

    def _ours(self, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The jobs that carry this request's tag.

        Checked here, not left to the server's ``tags`` filter: a job without our tag is
        someone else's (or another run's), and attaching to it or cancelling it would
        hand this user a stranger's result or kill a stranger's job.
        """
        ours = []
        for job in jobs:
            tags = job.get("tags")
            if isinstance(tags, list) and self.tag in tags:
                ours.append(job)
            else:
                log.debug("job %s does not carry tag %s; not ours", job.get("id"), self.tag)
        return ours

    @property
    def digest_tag(self) -> str:
        """The tag that ties a job to this run's payload."""
        return binding.label(self.context.payload_digest)

    def _same_payload(self, job: dict[str, Any]) -> bool:
        """Whether a job of our tag was made for this run's payload (not by another run
        that reused the task id for another payload: that job is not ours to cancel)."""
        return binding.matches(self._digest_of(job), self.context.payload_digest)

    def _digest_of(self, job: dict[str, Any]) -> str | None:
        tags = job.get("tags")
        return binding.digest_in(tags if isinstance(tags, list) else [], ignore=self.tag)

    def _existing_job(self) -> str | None:
        """A live job this request already submitted (Slurm requeue / rerun), if any.

        With ``SESSION_MODE`` (and no ``SESSION_ID``) the job's session was opened by the
        earlier run of this same request: adopt it, so this run closes it when done.
        """
        backend = self.resource.name
        jobs = self._call(
            "list the jobs tagged " + self.tag, lambda: self.api.find_jobs(self.tag, backend)
        )
        for job in self._ours(jobs):
            status = _api_status(job)
            if status in _ALIVE and job.get("id"):
                log.info(
                    "job %s (tag %s) already exists on %s, status %s: an earlier run "
                    "under this id submitted it",
                    job["id"],
                    self.tag,
                    backend,
                    status,
                )
                # the runner refuses a job of another payload before it is used (and
                # before its session, adopted here, could be closed)
                self.attached_digest = self._digest_of(job)
                session = job.get("session_id")
                if session and self._session_id is None and self.settings["SESSION_MODE"]:
                    self._session_id, self._own_session = str(session), True
                    log.info("session %s of the earlier run is now this run's", session)
                return str(job["id"])
        return None

    def _open_session(self, backend: str, mode: str) -> str:
        """Open a session of ``mode`` for this run; log what the service says about it."""
        answer = self._call(
            f"open a {mode} session on {backend}",
            lambda: self.api.create_session(backend, mode, self.settings["SESSION_MAX_TTL"]),
            fail={400: ConfigError, 404: ConfigError},
        )
        if not isinstance(answer, dict) or not answer.get("id"):
            raise ProviderError(
                f"Qiskit Runtime: session creation answered without an id: {one_line(answer)}"
            )
        session_id = str(answer["id"])
        # e.g. a dedicated session on an open plan runs in job mode: say so, the user
        # asked for something else
        for message in _session_messages(answer):
            log.warning("session %s: %s", session_id, message)
        granted = str(answer.get("mode") or mode).lower()
        if granted != mode:
            log.warning("session %s runs in %s mode, not %s", session_id, granted, mode)
        log.info("%s session %s opened on %s", granted, session_id, backend)
        return session_id

    def submit(self, payload: CheckedPayload) -> str:
        api = self.api
        backend = self.resource.name
        # One token exchange up front: a wrong key is a clear error before anything else.
        self._call("get an IAM token", api.check_credentials)
        if self.context.deterministic_id:
            existing = self._existing_job()
            if existing is not None:
                self.attached = True
                return existing
        mode = self.settings["SESSION_MODE"] or ""
        if self._session_id is None and mode:
            self._session_id = self._open_session(backend, mode)
            self._own_session = True
        elif self._session_id is not None and not self._own_session:
            log.info(
                "the job goes into session %s (from %s), which this run leaves open",
                self._session_id,
                self._session_source(),
            )
        cost = self.settings["TIMEOUT_SECONDS"]
        if self.context.interrupted():
            raise Interrupted  # the job does not exist yet
        log.debug(
            "POST %s/jobs: program %s, backend %s, cost %s, session %s, params %s",
            api.endpoint,
            payload.program_id,
            backend,
            cost,
            self._session_id,
            one_line(json.dumps(payload.parameters), 2000),
        )
        answer = self._call(
            f"create the job on {backend}",
            lambda: api.create_job(
                payload.program_id,
                backend,
                payload.parameters,
                cost,
                self._session_id,
                [self.tag, self.digest_tag],
            ),
            # re-posted only after what certainly created no job (see rest.REPOST_SAFE_STATUSES)
            fail={400: PayloadError, 404: ConfigError, 413: PayloadError, 422: PayloadError},
        )
        job_id = str(answer["id"]) if isinstance(answer, dict) and answer.get("id") else None
        if job_id is None:
            raise ProviderError(f"Qiskit Runtime: job creation answered without an id: {answer}")
        if answer.get("backend") and answer["backend"] != backend:
            log.info("job %s was placed on backend %s", job_id, answer["backend"])
        return job_id

    def status(self, task_id: str) -> StatusReport:
        job = self._call("get the job status", lambda: self.api.job_state(task_id))
        if not isinstance(job, dict):
            raise ProviderError(f"Qiskit Runtime: job {task_id}: the answer is not a job")
        state = _state(job)
        raw = _api_status(job)
        status = _STATUS.get(raw)
        if status is None and raw.startswith("cancelled"):
            status = TaskStatus.CANCELLED
        if status is None:
            raise ProviderError(f"Qiskit Runtime: job {task_id}: unexpected status {raw!r}")
        code = state.get("reason_code") or state.get("reasonCode")
        if status is TaskStatus.CANCELLED and code == RAN_TOO_LONG:
            status = TaskStatus.FAILED
        message = None
        if status is TaskStatus.FAILED:
            message = _reason(state) or self._error_text(task_id)
        elif status is TaskStatus.CANCELLED:
            message = _reason(state) or None
        return StatusReport(status, message)

    def _error_text(self, task_id: str) -> str:
        """The failed job's traceback tail, for a job whose state gives no reason."""
        try:
            text = self._call(
                "get the job's error text",
                lambda: self.api.error_text(task_id),
            )
        except QrmiError as exc:  # the failure is the news; a missing text is not
            log.debug("job %s: no error text: %s", task_id, exc)
            return "the service gave no reason"
        return one_line(text) if text and text.strip() else "the service gave no reason"

    def fetch_result(self, task_id: str, into: BinaryIO) -> None:
        size = self._call("download the job result", lambda: self.api.stream_results(task_id, into))
        log.debug("job %s: result %d bytes", task_id, size)

    def cancel(self, task_id: str) -> None:
        # one attempt: the runner retries transient failures within its cancel budget
        if not self._call("cancel the job", lambda: self.api.cancel_job(task_id)):
            log.info("job %s is already finished; nothing to cancel", task_id)

    def cancel_submission(self) -> list[str]:
        api = self.api
        jobs = self._call(
            "list the jobs tagged " + self.tag,
            lambda: api.find_jobs_once(self.tag, self.resource.name),
        )
        cancelled = []
        for job in self._ours(jobs):  # never cancel a job without our tag
            if not self._same_payload(job):
                log.warning(
                    "job %s carries tag %s for another payload; left alone", job.get("id"), self.tag
                )
                continue
            status = _api_status(job)
            if job.get("id") and status in _ALIVE and status != "completed":
                job_id = str(job["id"])
                if self._call("cancel the job", lambda j=job_id: api.cancel_job(j)):
                    cancelled.append(job_id)
        return cancelled

    def cleanup(self, task_id: str) -> None:
        if self._own_session and self._session_id:
            session_id = self._session_id
            self._call(
                "close the session",
                lambda: self.api.close_session(session_id),
            )
            log.debug("session %s closed", session_id)
            self._own_session = False

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
