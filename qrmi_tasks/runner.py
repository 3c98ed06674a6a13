"""One task's life: validate, submit, poll, write the result, clean up, or cancel.

Nothing here knows a provider's protocol; providers plug in through
:class:`qrmi_tasks.providers.base.Provider`. A run ends in a :class:`RunOutcome` (returned,
or carried by the :class:`~qrmi_tasks.errors.TaskFailed` it raises); the CLI turns it into
the exit code the README documents (constants in :mod:`qrmi_tasks.errors`).
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from qrmi_tasks import binding, calls, durations, isa, journal, output
from qrmi_tasks.calls import Call
from qrmi_tasks.config import RUNNER_SETTINGS, Resource
from qrmi_tasks.errors import (
    EXIT_OK,
    EXIT_SIGNAL_BASE,
    EXIT_TASK_FAILED,
    AuthenticationError,
    CallTimeout,
    Interrupted,
    OutputError,
    PayloadError,
    ProviderError,
    QrmiError,
    TaskFailed,
    TransientError,
    UsageError,
)
from qrmi_tasks.payload import CheckedPayload, load_payload, validate_sequence
from qrmi_tasks.providers import open_provider
from qrmi_tasks.providers.base import Provider, RunContext, StatusReport, TaskStatus
from qrmi_tasks.retry import Backoff, Retry, with_retries
from qrmi_tasks.signals import SignalWatch
from qrmi_tasks.slurm import requeue_in_progress

log = logging.getLogger("qrmi_tasks.runner")
T = TypeVar("T")

# How long a SIGCONT-triggered cancel waits for the SIGTERM that scancel sends ~10 ms later.
_SIGTERM_GRACE = 0.5
# Overall deadline of one provider call: a hung or slow-drip answer ends there even when
# per-read socket timeouts never fire. Generous: they include the provider's own retries.
CALL_TIMEOUT = 300.0
RESULT_TIMEOUT = 3600.0  # results can be hundreds of MB
# Counted from the signal (README, "Signals and cancellation"): the cancel lands or is
# given up by CANCEL_BUDGET, cleanup ends by CLEANUP_BUDGET, and the process exits well
# within Slurm's default KillWait (30 s) and our 5 s promise.
CANCEL_BUDGET = 3.0
CANCEL_ATTEMPT = 1.2  # one cancel attempt; a hung one is abandoned and a fresh one sent
CLEANUP_BUDGET = 4.3
# Waits while a provider does not answer after submission (up to the outage grace).
OUTAGE_BACKOFF = Backoff(initial=2.0, factor=2.0, cap=60.0)
# A submit in flight when the signal came may still settle (return its id) this quickly.
_SUBMIT_SETTLE = 0.4

# Namespace of deterministic (requeue-safe) request ids.
_REQUEST_NAMESPACE = uuid.UUID("6f1c5b8e-2f0a-4a57-9a55-6d0b1f4f8a21")


@dataclass(frozen=True)
class RunRequest:
    """What the user asked for on the command line."""

    resource_name: str
    payload_path: Path
    output_path: Path | None = None
    logs_path: Path | None = None
    config_path: Path | None = None
    task_id: str | None = None
    cancel_on_sigcont: bool = True
    #: an already parsed payload (the Python API); ``payload_path`` then only names it
    payload: CheckedPayload | None = None
    #: ``output_path`` is the caller's own scratch file (the Python API without
    #: ``output``): the user never named it and it goes right after, so logs omit it
    scratch_output: bool = False
    #: the Python API: a provider that can compute in the caller's process does
    #: (:attr:`~qrmi_tasks.providers.base.RunContext.in_process`); the CLI keeps its worker
    in_process: bool = False


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended, for the CLI (:attr:`exit_code`) and the Python API.

    ``status`` is the run's end in the provider-neutral terms: ``COMPLETED`` (the result
    was written), ``FAILED`` or ``CANCELLED`` as the provider reported the task's end
    (these two come with the :class:`~qrmi_tasks.errors.TaskFailed` the run raises, as its
    ``outcome``), or ``CANCELLED`` with ``signal`` set: a signal (or ``Task.cancel``)
    stopped the run (its task, if any, was cancelled unless it had already ended or Slurm
    is requeueing the job; the log says which). Other failures raise their
    :class:`~qrmi_tasks.errors.QrmiError` with no outcome.
    """

    status: TaskStatus
    #: the provider's id of the task (None when the run ended before one existed)
    task_id: str | None
    #: the payload that was run (None when a signal came before it was read and checked)
    payload: CheckedPayload | None
    #: the file the result was written to (None: stdout, or no result written)
    result_path: Path | None = None
    #: the number of the signal that stopped the run, else None
    signal: int | None = None

    @property
    def exit_code(self) -> int:
        """The process exit code the README documents for this end."""
        if self.signal is not None:
            return EXIT_SIGNAL_BASE + self.signal
        if self.status is TaskStatus.COMPLETED:
            return EXIT_OK
        return EXIT_TASK_FAILED


# What tells concurrent runs apart and stays the same when Slurm requeues the job: the
# step's job (array task, heterogeneous component: each has its own SLURM_JOB_ID), the
# step, and the task's rank in it (srun -n 5 runs five runners with one payload).
# Not SLURM_RESTART_COUNT, which changes on requeue.
_SLURM_ID_VARIABLES = (
    "SLURM_CLUSTER_NAME",
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_STEP_ID",
    "SLURM_PROCID",
)


def request_id_for(
    name: str, payload: CheckedPayload, environ: Mapping[str, str]
) -> tuple[str, bool]:
    """A request id that survives a Slurm requeue of the same task, step and payload.

    A UUID5 of the Slurm variables above, the resource and the payload digest; random
    outside Slurm. Returns the id and whether it is deterministic.
    """
    if not environ.get("SLURM_JOB_ID"):
        return str(uuid.uuid4()), False
    parts = [f"{v}={environ.get(v, '')}" for v in _SLURM_ID_VARIABLES]
    key = "/".join([*parts, name, payload.digest])
    return str(uuid.uuid5(_REQUEST_NAMESPACE, key)), True


# A --task-id becomes a job id in URL paths (Direct Access), a tag with a prefix (Runtime
# "qrmi-", Pasqal "qrmi:", IQM "qrmi-" within IQM's 50 characters: hence 45) and a file
# name's part: one rule that every provider takes as it is.
TASK_ID_MAX = 45
_TASK_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:-]{{0,{TASK_ID_MAX - 1}}}")


def check_task_id(task_id: str) -> None:
    """Refuse (exit 2) a ``--task-id`` that some provider could not carry unchanged."""
    if not _TASK_ID.fullmatch(task_id):
        shown = task_id if len(task_id) <= 60 else task_id[:57] + "..."
        raise UsageError(
            f"--task-id {shown!r} is not a valid task id: use 1 to {TASK_ID_MAX} characters "
            "of letters, digits, '.', '_', ':' and '-', starting with a letter or digit"
        )


def prepare(
    request: RunRequest, environ: Mapping[str, str], watch: SignalWatch | None = None
) -> tuple[Provider, CheckedPayload]:
    """Every check that needs no network, then the provider instance."""
    if request.task_id is not None:
        check_task_id(request.task_id)
    if request.output_path is not None:
        output.check_target(request.output_path)
    if request.logs_path is not None:
        output.check_target(request.logs_path)
        if request.output_path is not None and output.same_file(
            request.output_path, request.logs_path
        ):
            raise UsageError(
                f"-o {request.output_path} and --logs {request.logs_path} are the same file; "
                "give the logs another name"
            )
    checked: list[CheckedPayload] = []

    def run_context(resource: Resource, cls: type[Provider]) -> RunContext:
        """The payload, checked for this resource (its configuration is right by now),
        and the run's context: its request id derives from the payload."""
        if request.logs_path is not None and not cls.has_logs:
            log.warning("resource type %s has no task logs; --logs is ignored", resource.type.name)
        payload = request.payload or load_payload(request.payload_path)
        cls.check_kind(payload, f"resource '{resource.name}' ({resource.type.name})")
        validate_sequence(payload)
        if request.task_id:
            request_id, deterministic = request.task_id, True
        else:
            request_id, deterministic = request_id_for(resource.name, payload, environ)
        log.debug(
            "resource %s: type %s, payload %s (sha256 %s), request id %s%s",
            resource.name,
            resource.type.name,
            payload.source,
            payload.digest[:12],
            request_id,
            " (deterministic)" if deterministic else "",
        )
        checked.append(payload)
        if watch is None:
            return RunContext(
                request_id,
                deterministic,
                payload_digest=payload.digest,
                in_process=request.in_process,
            )
        return RunContext(
            request_id,
            deterministic,
            watch.sleep,
            watch.interrupted,
            payload_digest=payload.digest,
            in_process=request.in_process,
        )

    provider = open_provider(
        request.resource_name, environ, request.config_path, "run", run_context
    )
    return provider, checked[0]


class TaskRun:
    """Drives one run: input checks, the provider task, and every failure's outcome.

    Owns the cancel-once rule. For a remote provider every call runs in a worker thread
    (:mod:`qrmi_tasks.calls`) while the main thread watches for signals, so a cancel
    never waits for a blocked read.
    """

    provider: Provider
    payload: CheckedPayload

    def __init__(self, request: RunRequest, watch: SignalWatch, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.request = request
        self.watch = watch
        self.task_id: str | None = None
        self.last: StatusReport | None = None
        self.cancel_sent = False
        self.outage_grace = 0.0
        self.heartbeat = 0.0
        self.check_target = True
        self.max_result_bytes: int | None = None  # QRMI_MAX_RESULT_BYTES, once prepared
        #: the task is in the journal (journal.py): a rerun of this request attaches to it
        self.journaled = False
        self.prepared = False  # provider and payload are set
        self._contact = time.monotonic()  # when the provider last answered

    # -- calls ----------------------------------------------------------------------------
    def _call(self, what: str, action: Callable[[], T], timeout: float = CALL_TIMEOUT) -> T:
        """One provider call; Interrupted as soon as a signal arrives."""
        if not self.provider.remote:  # local calls never block: keep them on this thread
            if self.watch.triggered:
                raise Interrupted
            return action()
        return calls.call(self.watch, what, action, timeout)

    def _shielded(self, what: str, action: Callable[[], T], until: float) -> T:
        """A call of the cancel path: not interruptible by signals, bounded by ``until``."""
        if not self.provider.remote:
            return action()

        def run() -> T:
            with self.watch.shielded():
                return action()

        return calls.bounded(what, run, until)

    def _check_signal(self) -> None:
        if self.watch.triggered:
            raise Interrupted

    # -- the normal path ------------------------------------------------------------------
    def execute(self) -> RunOutcome:
        """Run the task; return its outcome or raise QrmiError for one-line failures."""
        try:
            return self._execute()
        finally:
            if self.prepared:
                self._close()

    def _execute(self) -> RunOutcome:
        try:
            self._prepare()
            return self._run()
        except Interrupted as exc:
            pending = None
            if self.task_id is None and self.prepared:
                self.task_id = exc.task_id  # submit was interrupted after the task may exist
                pending = exc.pending
            return self.interrupt(pending)
        except TaskFailed:
            raise  # the task is over: nothing to cancel or name
        except Exception as exc:
            if self.task_id is not None and self.watch.triggered:
                # a failure while a signal waits: the task must still be cancelled
                if isinstance(exc, QrmiError):
                    log.error("%s", exc)
                else:  # one line, as every error; the traceback only at -v
                    log.error("unexpected error while cancelling: %r", exc)
                    log.debug("traceback", exc_info=exc)
                return self.interrupt()
            self._name_task(exc)
            raise

    def _name_task(self, exc: Exception) -> None:
        """A failure ends the run: say what became of a task that exists."""
        if self.task_id is None:
            return
        if isinstance(exc, OutputError):
            kept = "; it was kept on the provider" if self.provider.remote else ""
            log.error("task %s completed but its result was not written%s", self.task_id, kept)
        elif not self.provider.remote:
            return
        elif isinstance(exc, ProviderError):
            log.error(
                "lost contact with the provider; task %s may still be running there", self.task_id
            )
        elif not isinstance(exc, QrmiError):
            # an SDK failure nobody foresaw (or a bug) must not orphan a task silently
            log.error("task %s may still be running on the provider", self.task_id)

    def _prepare(self) -> None:
        # in a worker thread too: reading a FIFO or rebuilding a Pulser sequence must not
        # hold a signal back
        self.provider, self.payload = calls.call(
            self.watch,
            "read and check the input",
            lambda: prepare(self.request, self.environ, self.watch),
            None,
        )
        self.prepared = True
        runner_settings = self.provider.resource.settings(RUNNER_SETTINGS)
        self.outage_grace = runner_settings["QRMI_OUTAGE_GRACE_SECONDS"]
        self.heartbeat = runner_settings["QRMI_HEARTBEAT_SECONDS"]
        self.check_target = runner_settings["QRMI_CHECK_TARGET"] == "on"
        self.max_result_bytes = runner_settings["QRMI_MAX_RESULT_BYTES"]

    def _close(self) -> None:
        try:
            self.provider.close()
        except Exception as exc:  # closing must not mask the outcome
            log.debug("closing the provider failed: %r", exc)

    def _check_target(self) -> None:
        """Refuse circuits the backend cannot run before they wait in its queue.

        Advisory when it cannot be made (documents unavailable or not a target, circuits
        our qiskit cannot decode): the backend then judges the payload itself.
        """
        if not (self.check_target and isa.checks_target(self.provider, self.payload)):
            return
        backend = self.provider.resource.name
        try:
            problems = self._call(
                "check the circuits against the backend's target",
                lambda: isa.target_problems(self.provider, self.payload, self.environ),
            )
        except (Interrupted, AuthenticationError):
            raise  # a signal, or credentials the submission would be refused with too
        except Exception as exc:
            log.warning(
                "could not check the circuits against %s's target (%s); submitting them unchecked",
                backend,
                exc if isinstance(exc, QrmiError) else repr(exc),
            )
            log.debug("traceback", exc_info=exc)
            return
        if problems:
            raise PayloadError(isa.refusal(self.payload, backend, problems))
        log.debug("the circuits fit %s's target (qubit count, ISA)", backend)

    def _run(self) -> RunOutcome:
        self._check_signal()
        if not self._attach_from_journal():
            self._check_target()
            log.info(
                "submitting %s to %s (%s)",
                self.payload.describe(),
                self.provider.resource.name,
                self.provider.resource.type.name,
            )
            task_id = self._call("submit the task", lambda: self.provider.submit(self.payload))
            if self.provider.attached:
                # before the task is taken over: no status, result or cancel of another's
                self._check_binding(task_id, self.provider.attached_digest)
            self.task_id = task_id
            if self.provider.attached:
                log.info("task %s: attached to existing job", self.task_id)
            else:
                log.info("task %s: submitted", self.task_id)
                self._record_in_journal(self.task_id)
        report = self._poll()
        return self._finish(report)

    def _check_binding(self, task_id: str, found: str | None) -> None:
        """Refuse (exit 2) a task an earlier run submitted for another payload."""
        binding.check(
            self.provider.context.request_id,
            task_id,
            self.provider.resource.name,
            self.payload.digest,
            found,
            id_from_payload=self.request.task_id is None,
        )

    # -- the journal: reattach where the service cannot find our task (journal.py) --------
    def _uses_journal(self) -> bool:
        return self.provider.journaled and self.provider.context.deterministic_id

    def _attach_from_journal(self) -> bool:
        """Take over the task an earlier run of this request submitted, if the journal
        names one that can still deliver; False: submit."""
        if not self._uses_journal():
            return False
        request_id = self.provider.context.request_id
        entry = journal.find(self.environ, request_id)
        if entry is None:
            return False
        if entry.resource != self.provider.resource.name:
            raise binding.refusal(
                request_id, entry.task_id, entry.resource, "submitted to another resource"
            )
        self._check_binding(entry.task_id, entry.digest)
        self._contact = time.monotonic()
        # an outage is waited out: submitting again instead would run the work twice
        usable = self._riding_out(
            "take over the task an earlier run submitted",
            lambda: self.provider.reattach(entry.task_id),
        )
        if not usable:
            log.info(
                "task %s, which an earlier run of this request submitted, can no longer "
                "deliver a result; submitting anew",
                entry.task_id,
            )
            journal.forget(self.environ, request_id)
            return False
        self.task_id = entry.task_id
        self.provider.attached = True
        self.journaled = True
        log.info(
            "task %s: attached to the task an earlier run of this request submitted", entry.task_id
        )
        return True

    def _record_in_journal(self, task_id: str) -> None:
        if not self._uses_journal():
            return
        resource = self.provider.resource
        entry = journal.Entry(
            self.provider.context.request_id,
            resource.name,
            resource.type.name,
            task_id,
            self.payload.digest,
            time.time(),
        )
        self.journaled = journal.record(self.environ, entry)

    def _forget_in_journal(self) -> None:
        """The task has ended and its outcome was dealt with: a rerun starts afresh."""
        if self.journaled:
            journal.forget(self.environ, self.provider.context.request_id)
            self.journaled = False

    def _pause(self, seconds: float) -> None:
        if self.watch.sleep(seconds):
            raise Interrupted

    def _outage(self, exc: Exception) -> Retry | None:
        """A transient failure after submission: ride it out (see :meth:`_riding_out`)."""
        if isinstance(exc, TransientError):
            return Retry(exc.message)
        return None

    def _riding_out(
        self,
        what: str,
        action: Callable[[], T],
        timeout: float = CALL_TIMEOUT,
        classify: Callable[[Exception], Retry | None] | None = None,
    ) -> T:
        """A call after submission: a provider outage is waited out for the grace period.

        The task may have queued for hours; losing it to a short outage (connection
        refused, timeouts, 5xx, 429, after the provider's own retries) would waste that.
        Each wait is logged; a signal still cancels at once.
        """
        started = time.monotonic()
        result = with_retries(
            lambda: self._call(what, action, timeout),
            what=what,
            classify=classify or self._outage,
            pause=self._pause,
            attempts=None,
            until=self._contact + self.outage_grace,
            backoff=OUTAGE_BACKOFF,
            level=logging.WARNING,
        )
        now = time.monotonic()
        if now - started > 1.0 and now - self._contact > OUTAGE_BACKOFF.initial:
            log.info("the provider answers again (after %.0f s)", now - self._contact)
        self._contact = now
        return result

    def _duration_key(self) -> str:
        resource = self.provider.resource
        return durations.kind_key(resource.name, resource.type.name, self.payload.describe())

    def _poll(self) -> StatusReport:
        policy = self.provider.poll_policy
        learning = policy.learns and not self.provider.attached
        expected = None
        if learning:
            expected = durations.expected_window(
                durations.recent(self.environ, self._duration_key())
            )
            if expected is not None:
                log.debug("tasks like this one ended %.1f-%.1f s after starting", *expected)
        schedule = policy.schedule(expected)
        task_id = self.task_id
        self._contact = submitted = said = time.monotonic()
        while True:
            self._check_signal()
            try:
                report = self._riding_out(
                    "get the task status", lambda: self.provider.status(task_id)
                )
            except TransientError as exc:
                raise TransientError(
                    f"{exc.message} (no answer for {self.outage_grace:.0f} s, the outage "
                    "grace period)"
                ) from None
            log.debug("task %s: status %s", task_id, report.status.value)
            now = time.monotonic()
            if self.last is None or report.status != self.last.status:
                log.info("task %s: %s", task_id, report.status.value)
                said = now
            elif now - said >= self.heartbeat:
                log.info(
                    "task %s: still %s (%s since submission)",
                    task_id,
                    report.status.value,
                    _duration(now - submitted),
                )
                said = now
            self.last = report
            if report.status.final:
                ended = schedule.ended_between(now)
                if learning and report.status is TaskStatus.COMPLETED and ended is not None:
                    durations.record(self.environ, self._duration_key(), ended)
                return report
            if self.watch.sleep(schedule.next_wait(report.status, now)):
                raise Interrupted

    def _finish(self, report: StatusReport) -> RunOutcome:
        for key, value in report.details.items():
            log.info("task %s: %s: %s", self.task_id, key, value)
        if report.status is not TaskStatus.COMPLETED:
            self._save_logs()
            reason = f": {report.message}" if report.message else ""
            self._cleanup()
            self._forget_in_journal()
            raise TaskFailed(
                f"task {self.task_id} {report.status.value}{reason}",
                RunOutcome(report.status, self.task_id, self.payload),
            )
        sink = output.ResultSink(self.request.output_path, self.max_result_bytes)
        task_id = self.task_id
        with sink.open() as stream:

            def download() -> None:
                stream.seek(0)
                stream.truncate()  # a retried download starts over
                self.provider.fetch_result(task_id, stream)

            # not after a CallTimeout: the abandoned download would still write here
            self._riding_out(
                "download the result",
                download,
                RESULT_TIMEOUT,
                lambda exc: None if isinstance(exc, CallTimeout) else self._outage(exc),
            )
        if self.watch.triggered:
            sink.discard()
            raise Interrupted
        sink.publish()
        if self.request.scratch_output:
            log.info("task %s: result received", task_id)
        else:
            where = self.request.output_path or "stdout"
            log.info("task %s: result written to %s", task_id, where)
        self._forget_in_journal()
        self._save_logs()
        self._cleanup()
        return RunOutcome(TaskStatus.COMPLETED, task_id, self.payload, self.request.output_path)

    def _save_logs(self) -> None:
        if self.request.logs_path is None or not self.provider.has_logs:
            return
        task_id = self.task_id
        sink = output.ResultSink(self.request.logs_path, self.max_result_bytes)
        try:
            with sink.open() as stream:
                found = self._call(
                    "download the task logs", lambda: self.provider.fetch_logs(task_id, stream)
                )
            if found:
                sink.publish()
                log.info("task %s: logs written to %s", task_id, self.request.logs_path)
            else:
                sink.discard()
                log.info("task %s: no logs available", task_id)
        except QrmiError as exc:  # logs are a bonus; never turn a result into a failure
            log.warning("task %s: could not save logs: %s", task_id, exc)

    def _cleanup(self) -> None:
        task_id = self.task_id
        try:
            self._call("clean up the task", lambda: self.provider.cleanup(task_id))
        except QrmiError as exc:
            log.warning("task %s: cleanup failed: %s", task_id, exc)

    # -- the cancel path ------------------------------------------------------------------
    def _requeued(self) -> bool:
        context = self.provider.context
        return (
            (self.provider.can_reattach or self.journaled)
            and context.deterministic_id
            and requeue_in_progress(self.environ)
        )

    def interrupt(self, pending: Call[str] | None = None) -> RunOutcome:
        """Cancel the task for a received signal (once) and return the run's outcome.

        ``pending`` is a submit still running when the signal came (no task id yet).
        """
        start = self.watch.first_at or time.monotonic()
        # scancel and scontrol requeue both send SIGCONT then SIGTERM ~10 ms apart:
        # decide on the pair (a requeue is only visible to Slurm queries by then).
        self.watch.wait_for_terminating(start + _SIGTERM_GRACE)
        name = self.watch.cause  # a signal's name, or a cancel from Python
        if self.task_id is None and pending is not None:
            task_id = self._settle_submit(pending, name, start)
            if task_id is None or not self._ours_to_cancel(task_id, name):
                return self._stopped()
            self.task_id = task_id
        if self.task_id is None:
            log.warning("received %s before the task was submitted; nothing to cancel", name)
        elif self.last is not None and self.last.status.final:
            kept = " (kept on the provider)" if self.provider.remote else ""
            log.warning(
                "received %s; task %s already %s, result not written%s",
                name,
                self.task_id,
                self.last.status.value,
                kept,
            )
        elif self._requeued():
            log.warning(
                "received %s: Slurm is requeueing job %s; task %s is left running "
                "for the requeued job to attach to",
                name,
                self.environ.get("SLURM_JOB_ID"),
                self.task_id,
            )
        elif not self.cancel_sent:
            self.cancel_sent = True  # never twice, whatever arrives while cancelling
            log.warning("received %s; cancelling task %s", name, self.task_id)
            self._forget_in_journal()  # cancelled: a rerun must not take it over
            if self._cancel(self.task_id, start):
                log.info(
                    "task %s: cancel requested (%.2fs after the trigger)",
                    self.task_id,
                    time.monotonic() - start,
                )
            self._cleanup_after_cancel(self.task_id, start)
        return self._stopped()

    def _ours_to_cancel(self, task_id: str, name: str) -> bool:
        """Whether the task a submission overtaken by a signal attached to is ours to
        cancel: not when it ran another payload (it is then another run's)."""
        if not self.provider.attached:
            return True
        try:
            self._check_binding(task_id, self.provider.attached_digest)
        except UsageError as exc:
            log.warning("received %s while submitting; task %s left alone: %s", name, task_id, exc)
            return False
        return True

    def _stopped(self) -> RunOutcome:
        """The outcome of a run a signal ended."""
        return RunOutcome(
            TaskStatus.CANCELLED,
            self.task_id,
            self.payload if self.prepared else None,
            signal=self.watch.exit_signal,
        )

    def _cleanup_after_cancel(self, task_id: str, start: float) -> None:
        try:
            self._shielded(
                "clean up the task",
                lambda: self.provider.cleanup(task_id),
                start + CLEANUP_BUDGET,
            )
        except QrmiError as exc:
            log.warning("task %s: cleanup failed: %s", task_id, exc)
        except Exception as exc:
            log.warning("task %s: cleanup failed: %r", task_id, exc)

    def _cancel(self, task_id: str, start: float) -> bool:
        """Send the cancel; retry transient failures until it lands or the budget is spent."""
        until = start + CANCEL_BUDGET
        delay, attempt = 0.1, 0
        while True:
            attempt += 1
            try:
                self._shielded(
                    "cancel the task",
                    lambda: self.provider.cancel(task_id),
                    min(until, time.monotonic() + CANCEL_ATTEMPT),
                )
                return True
            except TransientError as exc:
                reason = exc.message
            except QrmiError as exc:
                log.error("task %s: cancel failed: %s", task_id, exc)
                return False
            except Exception as exc:
                log.error("task %s: cancel failed: unexpected %r", task_id, exc)
                log.debug("traceback", exc_info=exc)
                return False
            if time.monotonic() + delay >= until:
                log.error(
                    "task %s: cancel did not land after %d attempt(s) (%s); the task may "
                    "still run on the provider",
                    task_id,
                    attempt,
                    reason,
                )
                return False
            log.info("task %s: cancel attempt %d failed (%s); retrying", task_id, attempt, reason)
            time.sleep(delay)  # not interruptible: further signals must not stop the cancel
            delay = min(delay * 2, 0.8)

    def _settle_submit(self, pending: Call[str], name: str, start: float) -> str | None:
        """The signal overtook ``submit``: return the task it created, or cancel blindly."""
        if pending.join(start + _SUBMIT_SETTLE):
            return _submitted_id(pending, name)
        self.cancel_sent = True
        log.warning(
            "received %s while the submission was in flight; cancelling whatever it created",
            name,
        )
        cancelled: list[str] = []
        try:
            cancelled = self._shielded(
                "cancel the submission", self.provider.cancel_submission, start + CANCEL_BUDGET
            )
        except Exception as exc:
            log.error("could not check whether the submission created a task: %s", exc)
        for task_id in cancelled:
            log.info("task %s: cancel requested", task_id)
            self._cleanup_after_cancel(task_id, start)
        if pending.join(start + CANCEL_BUDGET):  # the answer may still come in time
            task_id = _submitted_id(pending, name)
            if task_id is not None and task_id not in cancelled:
                self.cancel_sent = False
                return task_id
            return None
        pending.abandon()
        log.warning(
            "the submission was still unanswered at exit; if it reached the provider, its "
            "task carries request id %s",
            self.provider.context.request_id,
        )
        return None


def _duration(seconds: float) -> str:
    """``seconds`` as people read a wait: 45 s, 12 min, 3 h 05 min."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return f"{seconds:.0f} s"
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _submitted_id(pending: Call[str], name: str) -> str | None:
    """The id a settled submit returned (or named in its Interrupted), else None."""
    try:
        return pending.outcome()
    except Interrupted as exc:
        return exc.task_id
    except Exception as exc:
        log.warning("received %s while submitting; the submission failed: %s", name, exc)
        return None


def run(
    request: RunRequest,
    environ: Mapping[str, str] | None = None,
    watch: SignalWatch | None = None,
    on_start: Callable[[TaskRun], None] | None = None,
) -> RunOutcome:
    """Run one task end to end and return its :class:`RunOutcome` (the CLI exits with its
    ``exit_code``).

    Raises :class:`QrmiError` subclasses for errors the CLI prints as one line (a task that
    failed on the provider's side: :class:`TaskFailed`, its ``outcome`` set). The
    Python API (:mod:`qrmi_tasks.api`) passes its own ``watch`` (no handlers in a
    thread, handlers restored in a notebook) and ``on_start``, which gets the
    :class:`TaskRun` before the input is read so it can report the task's status.
    """
    environ = os.environ if environ is None else environ
    if watch is None:
        watch = SignalWatch(request.cancel_on_sigcont)
    with watch:
        task = TaskRun(request, watch, environ)
        if on_start is not None:
            on_start(task)
        return task.execute()
