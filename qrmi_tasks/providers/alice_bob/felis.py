"""Alice & Bob Felis (``alice-bob-felis``) provider: human-readable QIR programs.

The resource name is qrmi's device name of a Felis target: ``ab_emu_1q_lescanne_2020`` is
target ``EMU:1Q:LESCANNE_2020`` (qrmi's ``device_to_target``: ``ab_`` dropped, the first
two ``_`` become ``:``, upper case); a name that already holds a ``:`` is used as the
target as it is. A run checks the program against the target's published description
(``GET /v1/targets/``: qubit count, instructions, input parameters), creates the job
(``POST /v1/jobs/``), uploads the QIR text (the job starts then), polls the job's last
event and writes the output histogram (CSV text, as qrmi's ``task_result`` returns it).

Felis jobs carry no client-chosen name, tag or id (``CreateExternalJob`` has target,
formats and input params only), so nothing of ours finds the job an earlier run submitted:
the runner keeps its id in its journal (``journaled``, :mod:`qrmi_tasks.journal`) and a
rerun of the same request (a Slurm requeue) takes it over by its id; a signal that comes
while the create request is still
unanswered cannot cancel the job that request may have made (it has no input, so it
never runs). Once created, the job's id is known: a signal during the upload cancels it.
The run's request id travels in the User-Agent header, for Alice & Bob's support.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, BinaryIO, ClassVar, TypeVar

import requests

from qrmi_tasks import __version__
from qrmi_tasks.config import RUNNER_SETTINGS
from qrmi_tasks.errors import (
    AuthenticationError,
    ConfigError,
    Interrupted,
    PayloadError,
    ProviderError,
    QrmiError,
)
from qrmi_tasks.payload import QIR, CheckedPayload
from qrmi_tasks.providers.alice_bob import FELIS_ERRORS, job_errors
from qrmi_tasks.providers.alice_bob.felis_client import FelisClient, FelisHttpError
from qrmi_tasks.providers.alice_bob.qir_text import read_qir, signature_function
from qrmi_tasks.providers.base import Provider, StatusReport, TaskStatus
from qrmi_tasks.retry import REQUEST_BACKOFF, Retry, is_transient, with_retries

log = logging.getLogger("qrmi_tasks.alice_bob_felis")
T = TypeVar("T")

# A job's status is its last event (EventType in qrmi's generated client; the same table
# as qrmi's task_status): waiting for input or a slot is queued, the stack's stages run.
EVENTS: dict[str, TaskStatus] = {
    "CREATED": TaskStatus.QUEUED,
    "FETCHING_INPUT": TaskStatus.QUEUED,
    "INPUT_READY": TaskStatus.QUEUED,
    "COMPILING": TaskStatus.RUNNING,
    "COMPILED": TaskStatus.RUNNING,
    "TRANSPILING": TaskStatus.RUNNING,
    "TRANSPILED": TaskStatus.RUNNING,
    "EXECUTING": TaskStatus.RUNNING,
    "SUCCEEDED": TaskStatus.COMPLETED,
    "CANCELLED": TaskStatus.CANCELLED,
    "TIMED_OUT": TaskStatus.FAILED,
    "COMPILATION_FAILED": TaskStatus.FAILED,
    "TRANSPILATION_FAILED": TaskStatus.FAILED,
    "EXECUTION_FAILED": TaskStatus.FAILED,
}
# Throttling (429) is retried this long at most; other transient failures 6 times, with
# these waits (about 15 s in all; the runner then rides out a longer outage)
THROTTLE_SECONDS = 120.0
BACKOFF = REQUEST_BACKOFF
# A job's input cannot be taken back: these statuses refuse the job, never retried.
REFUSED_PAYLOAD = {400: PayloadError, 422: PayloadError}


def felis_target(resource_name: str) -> str:
    """The Felis target of a resource name, as qrmi maps it (see the module docstring)."""
    if ":" in resource_name:
        return resource_name
    device = resource_name[3:] if resource_name.startswith("ab_") else resource_name
    return device.replace("_", ":", 2).upper()


def device_name(target: str) -> str:
    """qrmi's resource name of Felis target ``target`` (its ``target_to_device``)."""
    return "ab_" + target.replace(":", "_").lower()


def _retry(exc: Exception) -> Retry | None:
    """A failure another attempt may cure: no answer, 5xx, 429 (Retry-After honoured)."""
    if isinstance(exc, FelisHttpError) and is_transient(exc.status):
        return Retry(f"HTTP {exc.status}", exc.retry_after, throttled=exc.status == 429)
    if isinstance(exc, requests.RequestException):
        return Retry(f"{type(exc).__name__} (no answer)")
    return None


class FelisProvider(Provider):
    """Run human-readable QIR programs on an Alice & Bob Felis target."""

    payload_kinds: ClassVar[frozenset[str]] = frozenset({QIR})
    can_reattach: ClassVar[bool] = False
    journaled: ClassVar[bool] = True  # reruns attach by the id the runner's journal keeps
    #: makes the client's HTTP sessions (None: ``requests.Session``)
    session_factory: ClassVar[Callable[[], requests.Session] | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.target = felis_target(self.resource.name)
        self.client = FelisClient(
            self.settings["BASE_ENDPOINT"],
            self.settings["API_KEY"],
            self._session,
        )
        self._job_id: str | None = None  # set as soon as the create answers
        self._seen: str | None = None  # last event logged
        self._reported = TaskStatus.QUEUED

    def _session(self) -> requests.Session:
        session = (self.session_factory or requests.Session)()
        session.headers["User-Agent"] = (
            f"qrmi-tasks/{__version__} request/{self.context.request_id}"
        )
        return session

    @property
    def _key_variable(self) -> str:
        """The API key variable(s), for an authentication error."""
        from qrmi_tasks.providers import declaration

        return self.resource.describe(declaration(self.resource.type.name).setting("API_KEY"))

    def _call(
        self,
        what: str,
        action: Callable[[], T],
        *,
        once: bool = False,
        overrides: dict[int, type[QrmiError]] | None = None,
        client: FelisClient | None = None,
    ) -> T:
        """One API call, retried on transient failures (``once``: a single attempt); its
        failures become one-line errors (the package's ``FELIS_ERRORS``)."""
        fields = {"what": what, "endpoint": (client or self.client).endpoint}
        with FELIS_ERRORS.mapped(overrides=overrides, key=self._key_variable, **fields):
            if once:
                return action()
            return with_retries(
                action,
                what=f"Felis: cannot {what}",
                classify=_retry,
                pause=self.context.pause,
                until=time.monotonic() + THROTTLE_SECONDS,
                backoff=BACKOFF,
            )

    # -- the target check -------------------------------------------------------------
    def _check_target(self, payload: CheckedPayload) -> None:
        """Refuse, before a job exists, a program or parameters the target cannot take.

        Advisory when the targets cannot be listed (the service then judges the job); an
        unknown target is a configuration error.
        """
        if self.resource.settings(RUNNER_SETTINGS)["QRMI_CHECK_TARGET"] != "on":
            return
        try:
            targets = self._call("list the targets", self.client.targets)
        except AuthenticationError:
            raise  # the job would be refused too
        except ProviderError as exc:
            log.warning("could not list Felis's targets (%s); submitting unchecked", exc)
            return
        found = next(
            (t for t in targets if isinstance(t, dict) and t.get("name") == self.target), None
        )
        if found is None:
            names = sorted(str(t.get("name")) for t in targets if isinstance(t, dict))
            offered = ", ".join(f"{n} ({device_name(n)})" for n in names) or "none"
            raise ConfigError(
                f"resource '{self.resource.name}' is Felis target {self.target}, which "
                f"{self.client.endpoint} does not offer; its targets (resource names): {offered}"
            )
        problems = target_problems(
            found, payload.document["human_qir"], payload.document["input_params"]
        )
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise PayloadError(
                f"{payload.source} cannot run on Felis target {self.target}: {problems[0]}{more}"
            )
        log.debug("the program fits target %s (qubits, instructions, input params)", self.target)

    # -- Provider interface -----------------------------------------------------------
    def submit(self, payload: CheckedPayload) -> str:
        self._check_target(payload)
        if self.context.interrupted():
            raise Interrupted  # nothing exists yet
        params = payload.document["input_params"]
        job = self._call(
            "create the job",
            lambda: self.client.create_job(self.target, params),
            overrides=REFUSED_PAYLOAD,
        )
        job_id = job.get("id")
        if not isinstance(job_id, str) or not job_id:
            raise ProviderError("Felis: the answer to creating the job has no job id")
        self._job_id = job_id
        log.info("job %s created on target %s; uploading the program", job_id, self.target)
        if self.context.interrupted():
            raise Interrupted(job_id)  # it has no input, so it never ran: the runner cancels it
        try:
            self._call(
                "upload the job's program",
                lambda: self.client.upload_input(job_id, payload.document["human_qir"]),
                overrides=REFUSED_PAYLOAD,
            )
        except Interrupted:
            raise Interrupted(job_id) from None
        except QrmiError as exc:
            if self._input_arrived(job_id):  # a lost answer to an upload that landed
                log.warning("uploading the program reported %s, but job %s has it", exc, job_id)
                return job_id
            self._give_up_on(job_id, exc)
        return job_id

    def _input_arrived(self, job_id: str) -> bool:
        """Whether job ``job_id`` got its input (its events moved past CREATED)."""
        try:
            job = self._call("get the job", lambda: self.client.job(job_id), once=True)
        except QrmiError:
            return False
        return any(
            e.get("type") != "CREATED" for e in job.get("events") or [] if isinstance(e, dict)
        )

    def _give_up_on(self, job_id: str, exc: QrmiError) -> None:
        """The upload failed: cancel the input-less job (it would wait for input forever),
        then raise ``exc`` saying so."""
        try:
            self.cancel(job_id)
            outcome = "it was cancelled"
        except QrmiError as cancel_exc:
            outcome = f"cancelling it failed too ({cancel_exc.message})"
        error = type(exc)(f"{exc.message} (job {job_id} had been created; {outcome})")
        error.status = exc.status
        raise error from None

    def status(self, task_id: str) -> StatusReport:
        job = self._call("get the job", lambda: self.client.job(task_id))
        events = [e for e in job.get("events") or [] if isinstance(e, dict)]
        if not events:
            return StatusReport(self._reported)  # just created: no event recorded yet
        event = str(events[-1].get("type"))
        status = EVENTS.get(event)
        if event != self._seen:
            self._seen = event
            if status is None:
                log.warning(
                    "job %s: event %s is unknown to this runner; polling again", task_id, event
                )
            else:
                log.debug("job %s: %s", task_id, event)
        if status is None:
            return StatusReport(self._reported)
        self._reported = status
        if status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
            return StatusReport(status, f"{event}: {job_errors(job)}")
        return StatusReport(status)

    def reattach(self, task_id: str) -> bool:
        """Take over job ``task_id`` of an earlier run, unless it is gone or has ended
        without a result (the journal records a job once its program is uploaded)."""
        try:
            job = self._call("get the job", lambda: self.client.job(task_id))
        except ProviderError as exc:
            if exc.status == 404:
                return False
            raise
        events = [e for e in job.get("events") or [] if isinstance(e, dict)]
        status = EVENTS.get(str(events[-1].get("type"))) if events else TaskStatus.QUEUED
        return status in (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.COMPLETED)

    def fetch_result(self, task_id: str, into: BinaryIO) -> None:
        into.write(self._call("download the job's output", lambda: self.client.output(task_id)))

    def cancel(self, task_id: str) -> None:
        client = self.client.fresh()  # the old connection may be stuck in a read
        try:
            self._call("cancel the job", lambda: client.cancel(task_id), once=True, client=client)
        except ProviderError as exc:
            if exc.status != 409:
                raise
            log.info("job %s: no longer cancellable (HTTP 409): it has ended", task_id)
        finally:
            client.close()

    def cancel_submission(self) -> list[str]:
        if self._job_id is None:
            log.warning(
                "the request creating the Felis job was unanswered; Felis jobs carry no label "
                "of ours, so a job it made cannot be found (it has no program and never runs)"
            )
            return []
        self.cancel(self._job_id)
        return [self._job_id]

    def close(self) -> None:
        self.client.close()


def target_problems(target: dict[str, Any], qir: str, params: dict[str, Any]) -> list[str]:
    """One line per way the program or its input params do not fit ``target`` (a Felis
    ``TargetConfiguration``: ``numQubits``, ``instructions[].signature``, ``inputParams``)."""
    problems = []
    program = read_qir(qir)
    limit = target.get("numQubits")
    if isinstance(limit, int) and program.qubits > limit:
        problems.append(f"it uses {program.qubits} qubits, the target has {limit}")
    offered = {
        signature_function(str(i.get("signature", "")))
        for i in target.get("instructions") or []
        if isinstance(i, dict)
    }
    if offered:
        for name in sorted(program.functions - offered):
            problems.append(f"instruction {name} is not one of the target's")
    described = target.get("inputParams")
    if isinstance(described, dict):
        problems += _param_problems(described, params)
    return problems


def _param_problems(described: dict[str, Any], params: dict[str, Any]) -> list[str]:
    problems = []
    for name in sorted(set(params) - set(described)):
        known = ", ".join(sorted(described)) or "none"
        problems.append(f"input param {name} is not one of the target's ({known})")
    for name, spec in sorted(described.items()):
        if not isinstance(spec, dict):
            continue
        value = params.get(name)
        if value is None:
            if spec.get("required") and spec.get("default") is None:
                problems.append(f"input param {name} is required")
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue  # the service judges types we do not model
        for constraint in spec.get("constraints") or []:
            low, high = constraint.get("min"), constraint.get("max")
            if (low is not None and value < low) or (high is not None and value > high):
                problems.append(f"input param {name}={value} is outside [{low}, {high}]")
    return problems
