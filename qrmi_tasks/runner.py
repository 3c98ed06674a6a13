"""One task's life: validate, submit, poll, write the result, clean up, or cancel.

Nothing here knows a provider's protocol; providers plug in through
:class:`qrmi_tasks.providers.base.Provider`. Exit codes are documented in the README
and defined in :mod:`qrmi_tasks.errors`.
"""

from __future__ import annotations

import logging
import os
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from qrmi_tasks import output
from qrmi_tasks.config import resolve_resource
from qrmi_tasks.errors import (
    EXIT_OK,
    EXIT_SIGNAL_BASE,
    Interrupted,
    OutputError,
    ProviderError,
    QrmiError,
    TaskFailed,
)
from qrmi_tasks.logsetup import SECRETS
from qrmi_tasks.payload import Payload, load_payload, validate_sequence
from qrmi_tasks.providers import provider_class
from qrmi_tasks.providers.base import PollPolicy, Provider, RunContext, StatusReport, TaskStatus
from qrmi_tasks.signals import SignalWatch, describe
from qrmi_tasks.slurm import requeue_in_progress

log = logging.getLogger("qrmi_tasks.runner")

# How long a SIGCONT-triggered cancel waits for the SIGTERM that scancel sends ~10 ms later.
_SIGTERM_GRACE = 0.5

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


def request_id_for(name: str, payload: Payload, environ: Mapping[str, str]) -> tuple[str, bool]:
    """A request id that survives a Slurm requeue of the same step and payload.

    Derived from SLURM_JOB_ID, SLURM_STEP_ID, the resource and the payload digest (not
    SLURM_RESTART_COUNT, which changes on requeue). Outside Slurm: random.
    """
    job_id = environ.get("SLURM_JOB_ID")
    if not job_id:
        return str(uuid.uuid4()), False
    step_id = environ.get("SLURM_STEP_ID", "batch")
    key = f"{environ.get('SLURM_CLUSTER_NAME', '')}/{job_id}/{step_id}/{name}/{payload.digest}"
    return str(uuid.uuid5(_REQUEST_NAMESPACE, key)), True


def prepare(
    request: RunRequest, environ: Mapping[str, str], watch: SignalWatch | None = None
) -> tuple[Provider, Payload]:
    """Every check that needs no network, then the provider instance."""
    if request.output_path is not None:
        output.check_target(request.output_path)
    if request.logs_path is not None:
        output.check_target(request.logs_path)
    resource = resolve_resource(request.resource_name, environ, request.config_path)
    cls = provider_class(resource.type.name)
    settings = resource.settings(cls.settings_spec)
    SECRETS.add(resource.secret_values(cls.settings_spec))
    if request.logs_path is not None and not cls.has_logs:
        log.warning("resource type %s has no task logs; --logs is ignored", resource.type.name)
    payload = load_payload(request.payload_path)
    cls.check_kind(payload, f"resource '{resource.name}' ({resource.type.name})")
    validate_sequence(payload)
    cls.check_payload(payload, resource)
    if request.task_id:
        request_id, deterministic = request.task_id, True
    else:
        request_id, deterministic = request_id_for(resource.name, payload, environ)
    if watch is None:
        context = RunContext(request_id, deterministic)
    else:
        context = RunContext(request_id, deterministic, watch.sleep, lambda: watch.triggered)
    log.debug(
        "resource %s: type %s, payload %s (sha256 %s), request id %s%s",
        resource.name,
        resource.type.name,
        payload.source,
        payload.digest[:12],
        request_id,
        " (deterministic)" if deterministic else "",
    )
    return cls(resource, settings, context), payload


class TaskRun:
    """Drives one provider task; owns the cancel-once rule."""

    def __init__(
        self,
        provider: Provider,
        payload: Payload,
        request: RunRequest,
        watch: SignalWatch,
        environ: Mapping[str, str],
    ) -> None:
        self.environ = environ
        self.provider = provider
        self.payload = payload
        self.request = request
        self.watch = watch
        self.task_id: str | None = None
        self.last: StatusReport | None = None
        self.cancel_sent = False

    def _check_signal(self) -> None:
        if self.watch.triggered:
            raise Interrupted

    def run(self) -> int:
        """Return the exit code; raise QrmiError for reportable failures."""
        try:
            self._check_signal()
            log.info(
                "submitting %s to %s (%s)",
                self.payload.describe(),
                self.provider.resource.name,
                self.provider.resource.type.name,
            )
            self.task_id = self.provider.submit(self.payload)
            log.info("task %s: submitted", self.task_id)
            report = self._poll()
            return self._finish(report)
        except Interrupted as exc:
            if self.task_id is None and exc.args:
                self.task_id = exc.args[0]  # submit was interrupted after the task may exist
            return self.interrupt()

    def _poll(self) -> StatusReport:
        policy: PollPolicy = self.provider.poll_policy
        interval = policy.initial
        while True:
            self._check_signal()
            report = self.provider.status(self.task_id)
            log.debug("task %s: status %s", self.task_id, report.status.value)
            if self.last is None or report.status != self.last.status:
                log.info("task %s: %s", self.task_id, report.status.value)
            self.last = report
            if report.status.final:
                return report
            delay = interval * (1 + random.uniform(-policy.jitter, policy.jitter))
            if self.watch.sleep(delay):
                raise Interrupted
            interval = min(policy.cap, interval * policy.factor)

    def _finish(self, report: StatusReport) -> int:
        for key, value in report.details.items():
            log.info("task %s: %s: %s", self.task_id, key, value)
        if report.status is not TaskStatus.COMPLETED:
            self._save_logs()
            reason = f": {report.message}" if report.message else ""
            self._cleanup()
            raise TaskFailed(f"task {self.task_id} {report.status.value}{reason}")
        sink = output.ResultSink(self.request.output_path)
        with sink.open() as stream:
            self.provider.fetch_result(self.task_id, stream)
        if self.watch.triggered:
            sink.discard()
            raise Interrupted
        sink.publish()
        log.info(
            "task %s: result written to %s", self.task_id, self.request.output_path or "stdout"
        )
        self._save_logs()
        self._cleanup()
        return EXIT_OK

    def _save_logs(self) -> None:
        if self.request.logs_path is None or not self.provider.has_logs:
            return
        sink = output.ResultSink(self.request.logs_path)
        try:
            with sink.open() as stream:
                found = self.provider.fetch_logs(self.task_id, stream)
            if found:
                sink.publish()
                log.info("task %s: logs written to %s", self.task_id, self.request.logs_path)
            else:
                sink.discard()
                log.info("task %s: no logs available", self.task_id)
        except QrmiError as exc:  # logs are a bonus; never turn a result into a failure
            log.warning("task %s: could not save logs: %s", self.task_id, exc)

    def _cleanup(self) -> None:
        try:
            self.provider.cleanup(self.task_id)
        except QrmiError as exc:
            log.warning("task %s: cleanup failed: %s", self.task_id, exc)

    def _requeued(self) -> bool:
        context = self.provider.context
        return (
            self.provider.can_reattach
            and context.deterministic_id
            and requeue_in_progress(self.environ)
        )

    def interrupt(self) -> int:
        """Cancel the task for a received signal (once) and return the exit code."""
        # scancel and scontrol requeue both send SIGCONT then SIGTERM ~10 ms apart:
        # decide on the pair (a requeue is only visible to Slurm queries by then).
        self.watch.wait_for_terminating(_SIGTERM_GRACE)
        name = describe(self.watch.exit_signal)
        if self.task_id is None:
            log.warning("received %s before the task was submitted; nothing to cancel", name)
        elif self.last is not None and self.last.status.final:
            log.warning(
                "received %s; task %s already %s, result not written",
                name,
                self.task_id,
                self.last.status.value,
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
            started = time.monotonic()
            try:
                self.provider.cancel(self.task_id)
                log.info(
                    "task %s: cancel requested (%.2fs)", self.task_id, time.monotonic() - started
                )
            except QrmiError as exc:
                log.error("task %s: cancel failed: %s", self.task_id, exc)
            self._cleanup()
        return EXIT_SIGNAL_BASE + self.watch.exit_signal


def run(request: RunRequest, environ: Mapping[str, str] | None = None) -> int:
    """Run one task end to end and return the process exit code.

    Raises :class:`QrmiError` subclasses for errors the CLI prints as one line.
    """
    environ = os.environ if environ is None else environ
    with SignalWatch(request.cancel_on_sigcont) as watch:
        provider, payload = prepare(request, environ, watch)
        try:
            task = TaskRun(provider, payload, request, watch, environ)
            try:
                return task.run()
            except (ProviderError, OutputError) as exc:
                if task.task_id is not None and watch.triggered:
                    log.error("%s", exc)
                    return task.interrupt()
                if isinstance(exc, OutputError) and task.task_id is not None:
                    log.error(
                        "task %s completed but its result was not written; it was kept "
                        "on the provider",
                        task.task_id,
                    )
                elif task.task_id is not None:
                    log.error(
                        "lost contact with the provider; task %s may still be running there",
                        task.task_id,
                    )
                raise
            except QrmiError:
                raise
            except Exception as exc:
                # An SDK failure nobody foresaw (or a bug) must not orphan a running
                # task silently: cancel it on a pending signal, else name it.
                if task.task_id is not None and watch.triggered:
                    # one line, as every error; the traceback only at -v, as in cli.report
                    log.error("unexpected error while cancelling: %r", exc)
                    log.debug("traceback", exc_info=exc)
                    return task.interrupt()
                if task.task_id is not None:
                    log.error("task %s may still be running on the provider", task.task_id)
                raise
        finally:
            provider.close()
