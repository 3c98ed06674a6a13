"""Qiskit Runtime Service (``qiskit-runtime-service``, also ``ibm-quantum-compute-service``).

Hands the job to the ``qiskit-ibm-runtime`` library (see docs/qiskit-runtime.md): IAM
token exchange at the configured IAM endpoint, ``POST /jobs`` with the payload's
``parameters`` unchanged on backend NAME, polling through the library's ``RuntimeJobV2``,
the result body streamed byte for byte, cancel through ``RuntimeJobV2.cancel``. The
library's internals are used only in :mod:`qrmi_tasks.providers.qiskit_runtime_api`,
imported on first use (importing qiskit-ibm-runtime costs over a second).

Each job carries the tag ``qrmi-<request id>``: under Slurm a requeued or rerun step finds
the job it already submitted and attaches to it instead of running it twice.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any, BinaryIO, ClassVar, TypeVar

from qrmi_tasks.compat import ACQUISITION_TOKEN, JOB_TIMEOUT
from qrmi_tasks.config import Resource, Setting, positive_int
from qrmi_tasks.errors import (
    AuthenticationError,
    ConfigError,
    Interrupted,
    PayloadError,
    ProviderError,
    QrmiError,
    TransientError,
)
from qrmi_tasks.logsetup import SECRETS
from qrmi_tasks.payload import QISKIT, Payload
from qrmi_tasks.providers.base import Provider, StatusReport, TaskStatus
from qrmi_tasks.retry import is_transient, retry_after_seconds

log = logging.getLogger("qrmi_tasks.qiskit_runtime")
T = TypeVar("T")

SESSION_MODES = ("batch", "dedicated")
TAG_PREFIX = "qrmi-"
# RuntimeJobV2.status() values (the library maps the API's Completed/Failed to DONE/ERROR)
_STATUS = {
    "INITIALIZING": TaskStatus.QUEUED,
    "QUEUED": TaskStatus.QUEUED,
    "RUNNING": TaskStatus.RUNNING,
    "DONE": TaskStatus.COMPLETED,
    "ERROR": TaskStatus.FAILED,
    "CANCELLED": TaskStatus.CANCELLED,
}
# Job list entries carry the API's own status names.
_ALIVE = ("queued", "running", "completed", "initializing")
# The library already retries 5xx (urllib3, up to 5 times); transient failures are
# retried once more from here with cancellable waits.
MAX_ATTEMPTS = 6
MAX_MESSAGE = 500


def _one_line(text: Any, limit: int = MAX_MESSAGE) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _response(exc: BaseException) -> Any:
    """The ``requests.Response`` behind a library error, if any."""
    cause = exc.__cause__
    return getattr(cause, "response", None)


def _api_message(exc: BaseException) -> str:
    """The service's error message: ``errors[].message`` (or ``error.message``), one line."""
    response = _response(exc)
    if response is not None:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            errors = body.get("errors")
            if isinstance(errors, list):
                messages = [
                    str(e.get("message"))
                    for e in errors
                    if isinstance(e, dict) and e.get("message")
                ]
                if messages:
                    return _one_line("; ".join(messages))
            error = body.get("error")
            if isinstance(error, dict) and error.get("message"):
                return _one_line(error["message"])
            if body.get("message"):
                return _one_line(body["message"])
        elif response.text.strip():
            return _one_line(response.text, 300)
    return _one_line(exc, 300)


def _retry_after(exc: BaseException) -> float | None:
    response = _response(exc)
    return retry_after_seconds(response.headers.get("Retry-After") if response else None, 60.0)


class QiskitRuntimeProvider(Provider):
    """Run Qiskit primitives on an IBM Qiskit Runtime (IBM Quantum Platform) backend."""

    payload_kinds: ClassVar[frozenset[str]] = frozenset({QISKIT})
    settings_spec: ClassVar[tuple[Setting, ...]] = (
        Setting("ENDPOINT"),
        Setting("IAM_ENDPOINT"),
        Setting("IAM_APIKEY", secret=True),
        Setting("SERVICE_CRN"),
        # qrmi reads {NAME}_QRMI_JOB_TIMEOUT_SECONDS when TIMEOUT_SECONDS is unset
        Setting(
            "TIMEOUT_SECONDS",
            required=False,
            parse=positive_int,
            aliases=(Setting(JOB_TIMEOUT, prefixed=False),),
        ),
        Setting("SESSION_MODE", required=False),
        Setting("SESSION_MAX_TTL", required=False, parse=positive_int),
        # The session to run in: SESSION_ID, else the token the spank_qrmi plugin handed the
        # job (its acquire() opened that session), as qrmi's ::new reads them
        Setting(
            "SESSION_ID", required=False, aliases=(Setting(ACQUISITION_TOKEN, prefixed=False),)
        ),
    )
    can_reattach: ClassVar[bool] = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lib: Any = None
        self._api: Any = None
        self._jobs: dict[str, Any] = {}
        # a given session (SESSION_ID or the plugin's acquisition token) is never closed here
        self._session_id: str | None = self.settings["SESSION_ID"]
        self._own_session = False  # a session this run opened (and so closes)

    @classmethod
    def check_payload(cls, payload: Payload, resource: Resource) -> None:
        for name in ("ENDPOINT", "IAM_ENDPOINT"):
            value = (resource.raw(Setting(name)) or "").strip()
            if value and not value.startswith(("http://", "https://")):
                raise ConfigError(
                    f"{resource.variable(Setting(name))} must be an http(s) URL (got {value!r})"
                )
        mode = (resource.raw(Setting("SESSION_MODE")) or "").strip().lower()
        if mode and mode not in SESSION_MODES:
            raise ConfigError(
                f"{resource.variable(Setting('SESSION_MODE'))} must be batch or dedicated "
                f"(got {mode!r})"
            )

    # -- library access -----------------------------------------------------------------
    @property
    def api(self) -> Any:
        """The adapter around qiskit-ibm-runtime (imported and built on first use)."""
        if self._api is None:
            try:
                from qrmi_tasks.providers import qiskit_runtime_api as lib

                lib.load()
            except ImportError as exc:
                raise ConfigError(
                    f"resource type '{self.resource.type.name}' cannot use the installed "
                    f"qiskit-ibm-runtime: {_one_line(exc)}"
                ) from None
            s = self.settings
            self._lib = lib
            self._api = lib.RuntimeApi(
                s["ENDPOINT"],
                s["IAM_ENDPOINT"],
                s["IAM_APIKEY"],
                s["SERVICE_CRN"],
                on_token=lambda token: SECRETS.add([token]),
            )
            log.debug(
                "Qiskit Runtime API %s, IAM %s, instance %s",
                self._api.endpoint,
                self._api.iam_endpoint,
                s["SERVICE_CRN"],
            )
        return self._api

    def _variable(self, name: str) -> str:
        return self.resource.variable(Setting(name))

    def _session_source(self) -> str:
        """Which variable named the given session (SESSION_ID or the acquisition token)."""
        spec = next(s for s in self.settings_spec if s.name == "SESSION_ID")
        hit = self.resource.found(spec)
        return hit[0] if hit else self._variable("SESSION_ID")

    def _call(
        self,
        what: str,
        action: Callable[[], T],
        *,
        retry: Callable[[int], bool] = lambda status: True,
        fail: dict[int, type[QrmiError]] | None = None,
    ) -> T:
        """Run one library call; retry transient failures; raise one-line errors.

        ``retry(status)`` says whether a transient failure with this HTTP status (-1: no
        answer, 0: IAM unreachable) may be repeated; ``fail`` maps other statuses to the
        error class to raise (default ProviderError).
        """
        lib = self._lib
        attempt = 0
        refreshed = False
        while True:
            try:
                return action()
            except lib.IamError as exc:
                if exc.refused:
                    raise AuthenticationError(
                        f"authentication failed: IAM at {self.api.iam_endpoint} refused the API "
                        f"key (HTTP {exc.status}: {exc.detail}); check "
                        f"{self._variable('IAM_APIKEY')}"
                    ) from None
                status, reason, wait = 0, f"IAM at {self.api.iam_endpoint}: {exc.detail}", None
            except lib.IBMNotAuthorizedError:
                if not refreshed:  # the token expired or was revoked early: exchange again
                    refreshed = True
                    log.info("Qiskit Runtime answered 401; renewing the IAM token")
                    self.api.expire_token()
                    continue
                raise AuthenticationError(
                    f"authentication failed: Qiskit Runtime at {self.api.endpoint} refused a "
                    f"fresh IAM token (HTTP 401) while trying to {what}; check "
                    f"{self._variable('IAM_APIKEY')} and {self._variable('SERVICE_CRN')}"
                ) from None
            except lib.RequestsApiError as exc:
                status = exc.status_code
                if status == 403:
                    raise AuthenticationError(
                        f"authentication failed: Qiskit Runtime refused access while trying to "
                        f"{what} (HTTP 403: {_api_message(exc)}); check "
                        f"{self._variable('SERVICE_CRN')}"
                    ) from None
                if status != -1 and not is_transient(status):  # -1: no HTTP answer
                    error = (fail or {}).get(status, ProviderError)
                    raise error(
                        f"Qiskit Runtime: cannot {what}: HTTP {status}: {_api_message(exc)}"
                    ) from None
                reason = f"HTTP {status}" if status > 0 else self._no_answer(exc)
                wait = _retry_after(exc)
            except lib.RuntimeInvalidStateError:
                raise
            except lib.IBMError as exc:  # RuntimeJobV2 wraps failures in IBMRuntimeError
                raise ProviderError(f"Qiskit Runtime: cannot {what}: {_one_line(exc)}") from None
            except json.JSONDecodeError:
                raise ProviderError(
                    f"Qiskit Runtime: cannot {what}: the service's answer is not JSON"
                ) from None
            attempt += 1
            if attempt >= MAX_ATTEMPTS or not retry(status):
                raise TransientError(f"Qiskit Runtime: cannot {what}: {reason}")
            delay = wait if wait is not None else min(30.0, 0.5 * 2 ** (attempt - 1))
            log.warning("cannot %s (%s); retrying in %.1f s", what, reason, delay)
            if self.context.sleep(delay):
                raise Interrupted

    def _no_answer(self, exc: BaseException) -> str:
        """Why a request got no HTTP answer, in a few words."""
        text = str(exc)
        errno = re.search(r"\[Errno -?\d+\] [^\"')]+", text)
        if errno or "Max retries exceeded" in text:
            detail = errno.group(0) if errno else "retries exhausted"
            return f"no answer from {self.api.endpoint} ({detail})"
        return _one_line(text, 300)

    def backend_documents(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Backend NAME's configuration and properties (for ``qrmi-gen --resource``)."""
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

    def _job(self, task_id: str, program_id: str | None = None) -> Any:
        job = self._jobs.get(task_id)
        if job is None:
            # program_id only picks the result decoder, which is never used here
            job = self.api.job(task_id, program_id or "sampler", self._session_id)
            self._jobs[task_id] = job
        return job

    def _existing_job(self) -> str | None:
        """A live job this request already submitted (Slurm requeue / rerun), if any.

        With ``SESSION_MODE`` (and no ``SESSION_ID``) the job's session was opened by the
        earlier run of this same request: adopt it, so this run closes it when done.
        """
        backend = self.resource.name
        jobs = self._call(
            "list the jobs tagged " + self.tag, lambda: self.api.find_jobs(self.tag, backend)
        )
        for job in jobs:
            state = job.get("state") if isinstance(job.get("state"), dict) else {}
            status = str(state.get("status") or job.get("status") or "").lower()
            if status in _ALIVE and job.get("id"):
                log.info(
                    "job %s (tag %s) already exists on %s, status %s: attaching instead of "
                    "submitting again",
                    job["id"],
                    self.tag,
                    backend,
                    status,
                )
                session = job.get("session_id")
                if session and self._session_id is None and self.settings["SESSION_MODE"]:
                    self._session_id, self._own_session = str(session), True
                    log.info("session %s of the earlier run is now this run's", session)
                return str(job["id"])
        return None

    def submit(self, payload: Payload) -> str:
        api = self.api
        backend = self.resource.name
        # One token exchange up front: a wrong key is a clear error before anything else.
        self._call("get an IAM token", api.check_credentials)
        if self.context.deterministic_id:
            existing = self._existing_job()
            if existing is not None:
                self._job(existing, payload.program_id)
                return existing
        mode = (self.settings["SESSION_MODE"] or "").lower()
        if self._session_id is None and mode:
            self._session_id = self._call(
                f"open a {mode} session on {backend}",
                lambda: api.create_session(backend, mode, self.settings["SESSION_MAX_TTL"]),
                retry=lambda status: status in (0, 429),
                fail={400: ConfigError, 404: ConfigError},
            )
            self._own_session = True
            log.info("%s session %s opened on %s", mode, self._session_id, backend)
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
            _one_line(json.dumps(payload.parameters), 2000),
        )
        answer = self._call(
            f"create the job on {backend}",
            lambda: api.create_job(
                payload.program_id,
                backend,
                payload.parameters,
                cost,
                self._session_id,
                [self.tag],
            ),
            # the library re-posts on 5xx itself (IBM documents that as safe); from here
            # only what certainly did not create a job: IAM unreachable, 429
            retry=lambda status: status in (0, 429),
            fail={400: PayloadError, 404: ConfigError, 413: PayloadError, 422: PayloadError},
        )
        job_id = str(answer["id"]) if isinstance(answer, dict) and answer.get("id") else None
        if job_id is None:
            raise ProviderError(f"Qiskit Runtime: job creation answered without an id: {answer}")
        if answer.get("backend") and answer["backend"] != backend:
            log.info("job %s was placed on backend %s", job_id, answer["backend"])
        self._job(job_id, payload.program_id)
        return job_id

    def status(self, task_id: str) -> StatusReport:
        job = self._job(task_id)
        state = str(self._call("get the job status", job.status)).upper()
        status = _STATUS.get(state)
        if status is None and state.startswith("CANCELLED"):
            status = TaskStatus.CANCELLED
        if status is None:
            raise ProviderError(f"Qiskit Runtime: job {task_id}: unexpected status {state!r}")
        message = None
        if status is TaskStatus.FAILED:
            message = _one_line(
                self._call("get the job's error message", job.error_message)
                or "the service gave no error message"
            )
        return StatusReport(status, message)

    def fetch_result(self, task_id: str, into: BinaryIO) -> None:
        def download() -> int:
            into.seek(0)
            into.truncate()  # a cut transfer starts over
            return self.api.stream_results(task_id, into)

        size = self._call("download the job result", download)
        log.debug("job %s: result %d bytes", task_id, size)

    def cancel(self, task_id: str) -> None:
        # one attempt: the runner retries transient failures within its cancel budget
        if not self._call(
            "cancel the job", lambda: self.api.cancel_job(task_id), retry=lambda status: False
        ):
            log.info("job %s is already finished; nothing to cancel", task_id)

    def cancel_submission(self) -> list[str]:
        api = self.api
        jobs = self._call(
            "list the jobs tagged " + self.tag,
            lambda: api.find_jobs_once(self.tag, self.resource.name),
            retry=lambda status: False,
        )
        cancelled = []
        for job in jobs:
            state = job.get("state") if isinstance(job.get("state"), dict) else {}
            status = str(state.get("status") or job.get("status") or "").lower()
            if job.get("id") and status in _ALIVE and status != "completed":
                job_id = str(job["id"])
                if self._call(
                    "cancel the job", lambda j=job_id: api.cancel_job(j), retry=lambda s: False
                ):
                    cancelled.append(job_id)
        return cancelled

    def cleanup(self, task_id: str) -> None:
        if self._own_session and self._session_id:
            session_id = self._session_id
            self._call(
                "close the session",
                lambda: self.api.close_session(session_id),
                retry=lambda status: False,
            )
            log.debug("session %s closed", session_id)
            self._own_session = False

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
