"""Pasqal on-premises (``pasqal-local``) provider: Pulser sequences on a QPU behind the warden.

What qrmi's ``PasqalLocal`` does (qiskit-community/qrmi@b2ed2e5 ``src/pasqal/local.rs``),
through our client (:mod:`.warden`): a job is ``POST /jobs`` ``{"sequence", "shots"}`` in the
warden session ``X-Warden-Session``; its status and result come from ``GET /jobs/{id}``
(``results`` is the result JSON as a string, written out as it is); a cancel is
``POST /jobs/{id}/cancel``; logs are ``GET /jobs/{id}/logs``.

The session is the one the Slurm plugin opened for the job (qrmi's ``acquire()``, handed
over as ``{name}_QRMI_JOB_ACQUISITION_TOKEN``), left open for the plugin to close. Without
one the runner opens a session for the run (``POST /sessions`` with ``QRMI_JOB_UID`` and
``QRMI_JOB_ID``, as ``acquire()`` does) and revokes it when the run ends.

No reattach: a warden job carries neither a client-chosen id nor a tag, and the job list
does not say which session made a job, so a rerun cannot tell its job from another's
(``can_reattach = False``: a Slurm requeue cancels the job, the requeued run submits
anew), and a job whose create answer never arrives cannot be found to be cancelled.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any, BinaryIO, ClassVar, TypeVar
from urllib.parse import quote

from qrmi_tasks.config import Resource, Setting
from qrmi_tasks.errors import ConfigError, PayloadError, ProviderError
from qrmi_tasks.payload import PULSER, CheckedPayload
from qrmi_tasks.providers.base import Provider, StatusReport, TaskStatus
from qrmi_tasks.providers.declaration import ACQUISITION_TOKEN
from qrmi_tasks.providers.pasqal import PASQAL_LOCAL, WARDEN_ERRORS, munge
from qrmi_tasks.providers.pasqal.warden import WardenClient

log = logging.getLogger("qrmi_tasks.pasqal_local")
T = TypeVar("T")

#: the warden's job statuses (qrmi's ``JobStatus``, tests/conformance/pasqal_local)
STATUSES = {
    "PENDING": TaskStatus.QUEUED,
    "RUNNING": TaskStatus.RUNNING,
    "DONE": TaskStatus.COMPLETED,
    "CANCELED": TaskStatus.CANCELLED,
    "ERROR": TaskStatus.FAILED,
}
#: revoking our own session at exit: short, the process is on its way out
_REVOKE_TIMEOUTS = (1.0, 2.0)


def _segment(value: str) -> str:
    """``value`` as one URL path segment: an id never adds a query or another segment."""
    return quote(value, safe="")


class PasqalLocalProvider(Provider):
    """Run Pulser sequences on an on-premises Pasqal QPU through its warden."""

    payload_kinds: ClassVar[frozenset[str]] = frozenset({PULSER})
    has_logs: ClassVar[bool] = True
    can_reattach: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client: WardenClient | None = None
        self._own_session: str | None = None  # opened by this run: revoked by close()
        self._seen: str | None = None

    @classmethod
    def check_settings(cls, resource: Resource, settings: dict[str, Any]) -> None:
        """A MUNGE credential can be made on this node (every warden request needs one)."""
        try:
            munge.credential()
        except munge.MungeError as exc:
            raise ConfigError(
                f"resource '{resource.name}' (pasqal-local): the warden authenticates with "
                f"MUNGE, and no credential can be made here: {exc}"
            ) from None

    @property
    def client(self) -> WardenClient:
        if self._client is None:
            self._client = WardenClient(self.settings["URL"], self.context.pause)
        return self._client

    def _call(self, what: str, action: Callable[[], T], payload: bool = False) -> T:
        """A warden call; its failures become one-line errors (the package's WARDEN_ERRORS)."""
        session_var = self.resource.describe(PASQAL_LOCAL.setting(ACQUISITION_TOKEN))
        overrides = {400: PayloadError, 422: PayloadError} if payload else None
        with WARDEN_ERRORS.mapped(
            overrides=overrides,
            what=what,
            url=self.client.url,
            session=f"that {session_var} names an open session"
            if self.settings[ACQUISITION_TOKEN]
            else "that this user may open a warden session",
        ):
            return action()

    # -- the session ---------------------------------------------------------------------
    def _session(self) -> str:
        given = self.settings[ACQUISITION_TOKEN]
        if given:
            return given
        if self._own_session is None:
            uid = self.settings["QRMI_JOB_UID"]
            body = {
                "user_id": str(os.getuid() if uid is None else uid),
                "slurm_job_id": self.settings["QRMI_JOB_ID"]
                or self.settings["SLURM_JOB_ID"]
                or self.context.request_id,
            }
            answer = self._call(
                "open a session",
                lambda: self.client.request("POST", "/sessions", body=body, creates=True),
            )
            self._own_session = _field(answer, "id", str, "POST /sessions")
            log.info(
                "opened warden session %s for user %s, job %s (no %s: revoked at the end)",
                self._own_session,
                body["user_id"],
                body["slurm_job_id"],
                self.resource.variable(Setting(ACQUISITION_TOKEN, prefixed=False)),
            )
        return self._own_session

    # -- the task ------------------------------------------------------------------------
    def submit(self, payload: CheckedPayload) -> str:
        session = self._session()
        body = {"sequence": payload.sequence_json, "shots": payload.job_runs}
        job = self._call(
            "create the job",
            lambda: self.client.request(
                "POST", "/jobs", body=body, headers={"X-Warden-Session": session}, creates=True
            ),
            payload=True,
        )
        job_id = str(_field(job, "id", int, "POST /jobs"))
        log.info("job %s created on the warden (session %s)", job_id, session)
        return job_id

    def _job(self, task_id: str, what: str) -> dict[str, Any]:
        job = self._call(what, lambda: self.client.request("GET", f"/jobs/{_segment(task_id)}"))
        if not isinstance(job, dict):
            raise ProviderError(f"warden: GET /jobs/{task_id} answered {type(job).__name__}")
        return job

    def status(self, task_id: str) -> StatusReport:
        job = self._job(task_id, "get the job status")
        raw = _field(job, "status", str, f"GET /jobs/{task_id}")
        status = STATUSES.get(raw)
        if status is None:
            raise ProviderError(
                f"warden: job {task_id} has status {raw!r}, which this runner does not know "
                f"(known: {', '.join(STATUSES)})"
            )
        if status is TaskStatus.FAILED:
            return StatusReport(status, f"the warden reports job {task_id} ERROR (see --logs)")
        return StatusReport(status)

    def fetch_result(self, task_id: str, into: BinaryIO) -> None:
        job = self._job(task_id, "download the result")
        results = job.get("results")
        if not isinstance(results, str):
            raise ProviderError(f"warden: job {task_id} is {job.get('status')} but has no results")
        into.write(results.encode())

    def fetch_logs(self, task_id: str, into: BinaryIO) -> bool:
        answer = self._call(
            "get the job logs",
            lambda: self.client.request("GET", f"/jobs/{_segment(task_id)}/logs"),
        )
        logs = answer.get("logs") if isinstance(answer, dict) else None
        if not logs:
            return False
        into.write(str(logs).encode())
        return True

    def cancel(self, task_id: str) -> None:
        self._call(
            "cancel the job",
            lambda: self.client.request("POST", f"/jobs/{_segment(task_id)}/cancel", once=True),
        )

    def cancel_submission(self) -> list[str]:
        log.warning(
            "a warden job carries no id or tag of this run: if the submission in flight "
            "created one, it cannot be found to be cancelled; look for it in GET /jobs on %s",
            self.client.url,
        )
        return []

    def close(self) -> None:
        """Revoke the session this run opened (never the plugin's)."""
        session, self._own_session = self._own_session, None
        if session is not None:
            try:
                self._call(
                    "revoke the session",
                    lambda: self.client.request(
                        "DELETE",
                        f"/sessions/{_segment(session)}",
                        once=True,
                        timeout=_REVOKE_TIMEOUTS,
                    ),
                )
                log.info("revoked warden session %s", session)
            except Exception as exc:  # the run's outcome stands; the session expires
                log.warning("could not revoke warden session %s: %s", session, exc)
        if self._client is not None:
            self._client.close()


def _field(answer: Any, name: str, kind: type, where: str) -> Any:
    """``answer[name]`` of type ``kind``, or a ProviderError naming the route (a protocol
    error: not the warden's API)."""
    value = answer.get(name) if isinstance(answer, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        shown = json.dumps(answer)[:200] if answer is not None else "nothing"
        raise ProviderError(f"warden: {where} answered without a {kind.__name__} {name!r}: {shown}")
    return value
