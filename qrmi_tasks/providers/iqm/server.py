"""IQM Server (``iqm-server``) provider: IQM JSON jobs through the IQM Server REST API.

The resource name is qrmi's: the quantum computer's alias with its last ``_`` turned into
``:`` (``sirius_mock`` -> ``sirius:mock``, ``garnet`` -> ``garnet``), which is also the
``{name}_`` of its variables. A run submits the payload's ``iqmjson`` as a job of its
``job_type`` (``use_timeslot``, ``tag`` as query parameters), polls the job, and writes
qrmi's result document ``{"measurement_counts": ..., "measurements": ...}`` (the job's two
artifacts; ``null`` for one the job type does not produce), pretty-printed with sorted
keys as qrmi's ``serde_json::to_string_pretty`` writes it.

Tags and reruns: the job carries the payload's own ``tag`` when it has one, else
``qrmi-<request id>`` (41 of the 50 characters allowed), so that a job can be traced to
the Slurm task that submitted it. IQM Server's API has no job listing (qrmi@b2ed2e5's
generated client: submit, get, cancel, delete, payload, artifacts only), so a job can never
be found again by its tag: the runner keeps the job's id in its journal instead
(``journaled``, :mod:`qrmi_tasks.journal`), and a rerun of the same request (a Slurm
requeue, which then leaves the job running) takes the job over by its id
(:meth:`IQMServerProvider.reattach`). A signal that overtakes an unanswered submit cannot
cancel what it created (the runner logs the request id to look for).

Before submitting a ``circuit`` job (unless ``QRMI_CHECK_TARGET=off``) the circuits are
checked against the dynamic quantum architecture of their calibration set
(:mod:`.circuits`): unknown qubits, operations or loci are refused (exit 2) before the
job waits in a queue; when the architecture cannot be had, a warning, and the server
judges.
"""

from __future__ import annotations

import json
import logging
from typing import Any, BinaryIO, ClassVar

from qrmi_tasks.config import RUNNER_SETTINGS, Resource
from qrmi_tasks.errors import (
    AuthenticationError,
    ConfigError,
    Interrupted,
    PayloadError,
    ProviderError,
    QrmiError,
)
from qrmi_tasks.payload import IQM, CheckedPayload
from qrmi_tasks.providers.base import Provider, StatusReport, TaskStatus
from qrmi_tasks.providers.iqm import circuits
from qrmi_tasks.providers.iqm.api import IQMServerAPI
from qrmi_tasks.retry import one_line

log = logging.getLogger("qrmi_tasks.iqm_server")

TAG_PREFIX = "qrmi-"
#: IqmServerJobStatus (generated client, models/iqm_server_job_status.rs)
STATUSES = {
    "waiting": TaskStatus.QUEUED,
    "processing": TaskStatus.RUNNING,
    "completed": TaskStatus.COMPLETED,
    "failed": TaskStatus.FAILED,
    "cancelled": TaskStatus.CANCELLED,
}
#: the artifacts qrmi's task_result reads, in its document's keys
ARTIFACTS = ("measurements", "measurement_counts")


def quantum_computer(name: str) -> str:
    """qrmi's quantum computer name for resource ``name``: its last ``_`` becomes ``:``."""
    head, sep, tail = name.rpartition("_")
    return f"{head}:{tail}" if sep else name


def job_message(job: dict[str, Any]) -> str:
    """A failed or cancelled job's reasons, one line (``errors`` then ``messages``)."""
    parts = [
        f"{e.get('error_code', '?')}: {e.get('message', '')} ({e.get('source', '?')})"
        for e in job.get("errors") or []
        if isinstance(e, dict)
    ]
    parts += [
        f"{m.get('message', '')} ({m.get('source', '?')})"
        for m in job.get("messages") or []
        if isinstance(m, dict)
    ]
    return one_line("; ".join(parts)) or "no details given"


class IQMServerProvider(Provider):
    """Run IQM JSON jobs on an IQM Server quantum computer."""

    payload_kinds: ClassVar[frozenset[str]] = frozenset({IQM})
    has_logs: ClassVar[bool] = True
    can_reattach: ClassVar[bool] = False  # no job listing: see the module docstring
    journaled: ClassVar[bool] = True  # reruns attach by the id the runner's journal keeps

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.qc = quantum_computer(self.resource.name)
        self._api: IQMServerAPI | None = None
        self._last: dict[str, Any] = {}

    @classmethod
    def check_settings(cls, resource: Resource, settings: dict[str, Any]) -> None:
        """qrmi's ``NAME,CALIBRATION_SET_ID`` form is not a resource name here."""
        if "," in resource.name:
            raise ConfigError(
                f"resource name '{resource.name}': the ',CALIBRATION_SET_ID' suffix qrmi "
                "accepts is not supported; name the quantum computer alone (the job's "
                "calibration set is the 'calibration_set_id' of its iqmjson)"
            )

    @property
    def api(self) -> IQMServerAPI:
        """The REST client (its session made on first use)."""
        if self._api is None:
            self._api = IQMServerAPI(
                self.settings["ENDPOINT"],
                self.settings["TOKEN"],
                f"{self.resource.variable_prefix}TOKEN",
                self.context.pause,
            )
        return self._api

    def tag(self, payload: CheckedPayload) -> str:
        """The job's tag: the payload's own when it has one, else ours."""
        own = payload.document.get("tag")
        return own if own else TAG_PREFIX + self.context.request_id

    def architecture(self, calibration_set: str = "default") -> dict[str, Any]:
        """The dynamic quantum architecture of a calibration set (``qrmi-gen iqm
        --resource`` transpiles for it)."""
        return self.api.architecture(self.qc, calibration_set)

    # -- before submitting ------------------------------------------------------------------
    def _check_architecture(self, payload: CheckedPayload, job: dict[str, Any]) -> None:
        """Refuse circuits the calibration set cannot run (advisory when unavailable)."""
        if payload.document["job_type"] != "circuit":
            return
        if self.resource.settings(RUNNER_SETTINGS)["QRMI_CHECK_TARGET"] != "on":
            return
        calibration_set = job.get("calibration_set_id") or "default"
        try:
            dqa = self.api.architecture(self.qc, str(calibration_set))
            problems = circuits.architecture_problems(job, dqa)
        except (Interrupted, AuthenticationError):
            raise
        except (QrmiError, ValueError, KeyError, TypeError, AttributeError) as exc:
            reason = exc.message if isinstance(exc, QrmiError) else f"{type(exc).__name__}: {exc}"
            log.warning(
                "could not check the circuits against %s's architecture (%s); submitting "
                "them unchecked",
                self.qc,
                reason,
            )
            return
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise PayloadError(
                f"{payload.source} cannot run on {self.qc} (calibration set "
                f"{calibration_set}): {problems[0]}{more}; transpile it for this quantum "
                f"computer ('qrmi-gen iqm ... --resource {self.resource.name}')"
            )
        log.debug("the circuits fit %s's dynamic quantum architecture", self.qc)

    # -- the task ---------------------------------------------------------------------------
    def submit(self, payload: CheckedPayload) -> str:
        job = json.loads(payload.iqm_json)
        self._check_architecture(payload, job)
        if self.context.interrupted():
            raise Interrupted  # nothing was created
        tag = self.tag(payload)
        created = self.api.submit(
            self.qc,
            payload.document["job_type"],
            payload.iqm_json,
            bool(payload.document.get("use_timeslot", False)),
            tag,
        )
        job_id = created.get("id")
        if not isinstance(job_id, str) or not job_id:
            raise ProviderError(
                f"IQM Server: the submit answer has no job id (request id "
                f"{self.context.request_id}, tag {tag}): look for the tag in IQM's dashboard"
            )
        log.info("job %s created on %s (tag %s)", job_id, self.qc, tag)
        self._last[job_id] = created
        if self.context.interrupted():
            raise Interrupted(job_id)  # the runner cancels it
        return job_id

    def status(self, task_id: str) -> StatusReport:
        job = self.api.job(task_id)
        self._last[task_id] = job
        raw = job.get("status")
        status = STATUSES.get(raw) if isinstance(raw, str) else None
        if status is None:
            raise ProviderError(f"IQM Server: job {task_id} has status {raw!r}, unknown here")
        details = {k: job[k] for k in ("queue_position", "runtime_ms") if job.get(k) is not None}
        if status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
            return StatusReport(status, f"job {raw}: {job_message(job)}", details)
        return StatusReport(status, None, details)

    def reattach(self, task_id: str) -> bool:
        """Take over job ``task_id`` of an earlier run, unless it is gone or has failed."""
        try:
            job = self.api.job(task_id)
        except ProviderError as exc:
            if exc.status == 404:  # deleted, or never this server's
                return False
            raise
        status = STATUSES.get(job.get("status")) if isinstance(job.get("status"), str) else None
        return status in (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.COMPLETED)

    def fetch_result(self, task_id: str, into: BinaryIO) -> None:
        document = {name: self.api.artifact(task_id, name) for name in ARTIFACTS}
        if all(value is None for value in document.values()):
            raise ProviderError(
                f"IQM Server: job {task_id} completed without measurements or "
                "measurement_counts artifacts"
            )
        into.write(json.dumps(document, indent=2, sort_keys=True).encode())

    def cancel(self, task_id: str) -> None:
        try:
            self.api.cancel(task_id)
        except ProviderError as exc:
            if exc.status == 403:  # illegal_job_status: already final, nothing to stop
                log.info("job %s: not cancelled, it is already final (%s)", task_id, exc.message)
                return
            raise

    def cancel_submission(self) -> list[str]:
        # No listing: what an unanswered submit created cannot be found (module docstring).
        return []

    def fetch_logs(self, task_id: str, into: BinaryIO) -> bool:
        """The job's timeline and messages, as qrmi's ``task_logs`` lays them out."""
        job = self.api.job(task_id)
        lines = ["Timeline   :"]
        lines += [
            f"  {e.get('timestamp', '')} [{e.get('source', ''):<24}] {e.get('status', '')}"
            for e in job.get("timeline") or []
        ]
        messages = job.get("messages") or []
        if not messages:
            lines.append("Messages   : (none)")
        else:
            lines.append("Messages   :")
            lines += [f"  [{m.get('source', ''):<24}] {m.get('message', '')}" for m in messages]
        into.write(("\n".join(lines) + "\n").encode())
        return True
