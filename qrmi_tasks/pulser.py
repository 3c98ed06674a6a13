"""A Pulser ``RemoteConnection`` on our resources: ``QPUBackend`` without learning ``run()``.

::

    from pulser import QPUBackend
    from qrmi_tasks.pulser import QRMIConnection

    connection = QRMIConnection("FRESNEL")          # or "local"
    connection.fetch_available_devices()            # {"FRESNEL": Device(...)}
    results = QPUBackend(sequence, connection=connection).run(
        job_params=[{"runs": 100}, {"runs": 200}], wait=True
    )
    results.results[0].final_bitstrings             # pulser Results, one per job

A batch is our bookkeeping: each job (one entry of ``job_params``) is one task. On a
remote resource (``pasqal-cloud``, ``pasqal-local``) a task is a
:func:`qrmi_tasks.api.submit` Task: the runner's whole lifecycle (configuration, checks,
reattach under Slurm, cancel) with no second path; Ctrl-C while ``wait=True`` waits
cancels the batch's tasks. On ``local`` the sequence is emulated in this process by the
worker's own code (:func:`qrmi_tasks.providers.local.sim.run_pulser`, after the same
memory refusal), so ``submit`` returns once the emulation is done, whatever ``wait`` says.
Open batches are not supported (as in qrmi's ``PulserQRMIConnection``).

Imports pulser: never import this module from ``qrmi_tasks`` or the CLIs.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Mapping
from collections.abc import Sequence as Seq
from dataclasses import dataclass
from typing import Any

from pulser import Sequence
from pulser.abstract_repr import deserialize_device
from pulser.backend.remote import (
    BatchStatus,
    JobParams,
    JobStatus,
    RemoteConnection,
    RemoteResults,
    RemoteResultsError,
)
from pulser.backend.results import Results
from pulser.devices import Device
from pulser.json.utils import make_json_compatible

from qrmi_tasks import api
from qrmi_tasks.errors import PayloadError, ProviderError, QrmiError, UsageError, first_line
from qrmi_tasks.payload import PULSER, CheckedPayload, check_document, validate_sequence
from qrmi_tasks.providers import open_provider, provider_class, resolve_resource
from qrmi_tasks.runner import request_id_for

log = logging.getLogger("qrmi_tasks.pulser")

# A Task's status (api.Task.status) as Pulser's job status.
_JOB_STATUS = {
    "preparing": JobStatus.PENDING,
    "submitting": JobStatus.PENDING,
    "submitted": JobStatus.PENDING,
    "queued": JobStatus.PENDING,
    "running": JobStatus.RUNNING,
    "completed": JobStatus.DONE,
    "cancelled": JobStatus.CANCELED,
    "failed": JobStatus.ERROR,
    "error": JobStatus.ERROR,
}
_UNFINISHED = (JobStatus.PENDING, JobStatus.RUNNING)
# Per-job request ids under Slurm: the runner's (payload digest) would make two jobs of
# one batch with the same sequence and runs one task.
_JOB_NAMESPACE = uuid.UUID("0b6f3c1e-7a52-4d8e-9f0c-3e1d2a4b5c6d")


class SequenceRefused(PayloadError, ValueError):
    """The sequence or its job parameters cannot run on the resource (a one-line
    :class:`PayloadError`, and a ``ValueError`` as Pulser's own validation raises)."""


class OpenBatchRefused(UsageError, NotImplementedError):
    """Open batches are not supported by this connection."""


@dataclass
class _Job:
    """One job of a batch: its built sequence and either a Task or a local outcome."""

    sequence: Sequence
    task: api.Task | None = None
    counts: dict[str, int] | None = None
    error: BaseException | None = None

    def status(self) -> JobStatus:
        if self.task is None:
            return JobStatus.ERROR if self.error is not None else JobStatus.DONE
        return _JOB_STATUS.get(self.task.status(), JobStatus.ERROR)

    def result(self) -> Results:
        """The job's counts as Pulser's Results (``final_bitstrings``; the job must be DONE),
        built as Pulser asks now that SampledResult is deprecated (1.9), as qrmi does."""
        counts = self.counts
        if counts is None and self.task is not None:
            counts = self.counts = dict(self.task.result())
        return Results.from_final_bitstrings(
            atom_order=self.sequence.get_register(include_mappable=True).qubit_ids,
            total_duration=self.sequence.get_duration(),
            final_bitstrings=dict(counts or {}),
        )

    def failure(self) -> BaseException:
        """Why the job has no result (it ended ERROR or CANCELED)."""
        if self.error is not None:
            return self.error
        try:
            self.task.result(timeout=0)  # type: ignore[union-attr]
        except BaseException as exc:  # the run's own one-line error
            return exc
        return ProviderError("the job ended without a result")


class QRMIConnection(RemoteConnection):
    """Pulser's ``RemoteConnection`` to a qrmi-tasks resource (``local``, ``pasqal-cloud``,
    ``pasqal-local``), configured as for ``qrmi-task-runner``.

    ``resource``: a name as for the runner (``local``, or one of ``SLURM_JOB_QPU_RESOURCES``
    / ``config``); ``environ`` and ``config`` as for :func:`qrmi_tasks.api.run`;
    ``log_level``: our progress lines on stderr (None: leave logging to the application).
    The resource's configuration is checked here (no network); a resource that runs no
    Pulser sequences is refused.
    """

    def __init__(
        self,
        resource: str = "local",
        *,
        config: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        log_level: int | str | None = "INFO",
    ) -> None:
        self.environ = os.environ if environ is None else environ
        self.config = config
        self.log_level = log_level
        api._setup_logging(log_level)
        found = resolve_resource(resource, self.environ, config)
        if PULSER not in provider_class(found.type.name).payload_kinds:
            raise UsageError(
                f"resource '{found.name}' ({found.type.name}) runs no Pulser sequences; "
                "use a local, pasqal-cloud or pasqal-local resource"
            )
        self._provider = open_provider(resource, self.environ, config, "run")
        self.resource = self._provider.resource.name
        self.resource_type = self._provider.resource.type.name
        self._in_process = not self._provider.remote
        self._batches: dict[str, list[str]] = {}
        self._jobs: dict[str, _Job] = {}
        self._last_batch: str | None = None

    # -- what the resource offers -----------------------------------------------------------
    def supports_open_batch(self) -> bool:
        """Open batches are not supported: each job is one task, submitted at once."""
        return False

    def fetch_available_devices(self) -> dict[str, Device]:
        """The devices the resource runs, by name.

        ``local``: every device of ``pulser.devices`` (the emulators take any). Pasqal Cloud:
        the device specs the service lists (``GET /api/v1/devices/specs``), only the
        resource's own device type when it is listed (a QPU), else all of them (an
        emulator mimics any). ``pasqal-local`` has no specs route: NotImplementedError,
        which Pulser's QPUBackend takes as "validate against the sequence's device".
        """
        if self._in_process:
            import pulser.devices

            found = {
                name: device
                for name, device in vars(pulser.devices).items()
                if isinstance(device, pulser.devices.Device | pulser.devices.VirtualDevice)
                and not name.startswith("_")
            }
            return dict(sorted(found.items()))
        device_specs = getattr(self._provider, "device_specs", None)
        if device_specs is None:
            return super().fetch_available_devices()
        specs = device_specs()
        if self.resource in specs:
            specs = {self.resource: specs[self.resource]}
        devices = {}
        for kind, text in specs.items():
            try:
                devices[kind] = deserialize_device(text)
            except Exception as exc:  # a device a newer service describes: skip it, say so
                log.warning("device %s: its specs cannot be read (%s)", kind, first_line(exc))
        return devices

    def update_sequence_device(self, sequence: Sequence) -> Sequence:
        """Pulser's check that the sequence's device is one of the resource's, refusing with
        a one-line :class:`SequenceRefused` that names the devices."""
        try:
            return super().update_sequence_device(sequence)
        except ValueError as exc:
            raise self._device_refusal(sequence, exc) from None

    def _device_refusal(self, sequence: Sequence, exc: Exception | None = None) -> QrmiError:
        names = sorted(device.name for device in self.fetch_available_devices().values())
        reason = f" ({first_line(exc.__cause__)})" if exc and exc.__cause__ else ""
        if sequence.device.name in names:  # Pulser's with_new_device refused the new specs
            return SequenceRefused(
                f"the sequence does not fit the current specs of '{sequence.device.name}' on "
                f"resource '{self.resource}'{reason}; rebuild it on fetch_available_devices()"
                f"['{sequence.device.name}']"
            )
        return SequenceRefused(
            f"the sequence's device '{sequence.device.name}' is not one resource "
            f"'{self.resource}' runs{reason}; build the sequence on one of "
            f"fetch_available_devices(): {', '.join(names) or 'none listed'}"
        )

    # -- submitting -------------------------------------------------------------------------
    def submit(
        self,
        sequence: Sequence,
        wait: bool = False,
        open: bool = False,
        batch_id: str | None = None,
        backend_configuration: Any = None,
        **kwargs: Any,
    ) -> RemoteResults:
        """Run ``sequence`` once per entry of ``job_params`` (``runs``, and ``variables``
        for a parametrized sequence): one task each, results in the same order.

        ``wait``: return once every job has ended (Ctrl-C then cancels them). Open batches
        and a ``backend_configuration`` are refused (the resource's settings choose the
        emulator); so is a sequence on a device the resource does not run.
        """
        if open or batch_id is not None:
            raise OpenBatchRefused(
                "open batches are not supported by QRMIConnection; submit every job at once "
                "(QPUBackend.run(job_params=[...]))"
            )
        if backend_configuration is not None:
            raise UsageError(
                f"a backend configuration is not taken by QRMIConnection; resource "
                f"'{self.resource}' is set up by its variables ({self.resource_type})"
            )
        job_params: list[JobParams] = make_json_compatible(kwargs.get("job_params") or [])
        if not job_params:
            raise SequenceRefused("job_params must list at least one job ({'runs': N})")
        sequence = self._add_measurement_to_sequence(sequence)
        self._check_device(sequence, job_params)
        built = [self._build(sequence, params, index) for index, params in enumerate(job_params)]
        new_batch = str(uuid.uuid4())
        job_ids = []
        try:
            for index, (seq, payload) in enumerate(built):
                job_id = f"{new_batch}.{index}"
                self._jobs[job_id] = self._start(seq, payload, index)
                job_ids.append(job_id)
        except BaseException:
            self._cancel(job_ids)  # no half batch left running
            raise
        self._batches[new_batch] = job_ids
        self._last_batch = new_batch
        if wait:
            self._wait(job_ids)
        return RemoteResults(new_batch, self, job_ids)

    def _check_device(self, sequence: Sequence, job_params: list[JobParams]) -> None:
        try:
            devices = self.fetch_available_devices()
        except NotImplementedError:
            devices = {}
        if not devices:
            return
        target = next((d for d in devices.values() if d.name == sequence.device.name), None)
        if target is None:
            raise self._device_refusal(sequence)
        try:
            self.validate_job_params(job_params, target.max_runs)
        except (TypeError, ValueError) as exc:
            raise SequenceRefused(first_line(exc)) from None

    @staticmethod
    def validate_job_params(job_params: list[JobParams], max_runs: int | None) -> None:
        """Pulser's QPU checks of the job parameters (each has ``runs``, within max_runs)."""
        from pulser.backend.remote import RemoteBackend

        RemoteBackend.validate_job_params(job_params, max_runs)

    def _build(
        self, sequence: Sequence, params: JobParams, index: int
    ) -> tuple[Sequence, CheckedPayload]:
        """The job's sequence with its variables, and its checked payload."""
        where = f"job_params[{index}]"
        if not isinstance(params, dict) or "runs" not in params:
            raise SequenceRefused(f"{where} must be a dict with 'runs'")
        seq = sequence
        if sequence.is_parametrized() or sequence.is_register_mappable():
            try:
                seq = sequence.build(**(params.get("variables") or {}))
            except Exception as exc:  # pulser's TypeError/ValueError on missing variables
                message = f"{where}: cannot build the sequence: {first_line(exc)}"
                raise SequenceRefused(message) from None
        elif params.get("variables"):
            raise SequenceRefused(f"{where} has variables but the sequence declares none")
        try:
            text = seq.to_abstract_repr()
        except Exception as exc:
            message = f"{where}: cannot serialize the sequence: {first_line(exc)}"
            raise SequenceRefused(message) from None
        document = {"sequence": json.loads(text), "job_runs": params["runs"]}
        payload = check_document(document, f"<{where}>")
        validate_sequence(payload)
        return seq, payload

    def _start(self, sequence: Sequence, payload: CheckedPayload, index: int) -> _Job:
        if self._in_process:
            return self._emulate(sequence, payload)
        request_id, deterministic = request_id_for(self.resource, payload, self.environ)
        # requeue-safe and distinct per job; random (the runner's own) outside Slurm
        task_id = (
            str(uuid.uuid5(_JOB_NAMESPACE, f"{request_id}/{index}")) if deterministic else None
        )
        task = api.submit(
            payload.document,
            self.resource,
            config=self.config,
            task_id=task_id,
            environ=self.environ,
            log_level=self.log_level,
        )
        return _Job(sequence, task=task)

    def _emulate(self, sequence: Sequence, payload: CheckedPayload) -> _Job:
        """Emulate in this process with the ``local`` worker's code and settings."""
        from qrmi_tasks.providers.local.sim import Engine, ExecutionError, run_pulser

        provider = self._provider
        provider.refuse_a_register_that_cannot_fit(payload)  # type: ignore[attr-defined]
        settings = provider.settings
        engine = Engine(
            pulser=settings["PULSER_ENGINE"], variables=provider.resource.variable_prefix
        )
        log.info("emulating %s in this process (%s)", payload.describe(), settings["PULSER_ENGINE"])
        try:
            counts = run_pulser(payload.sequence_json, payload.job_runs, settings["SEED"], engine)
        except ExecutionError as exc:
            return _Job(sequence, error=ProviderError(f"local emulation failed: {exc}"))
        return _Job(sequence, counts=counts)

    def _wait(self, job_ids: list[str]) -> None:
        """Wait for the jobs' tasks; Ctrl-C cancels the unfinished ones, then propagates."""
        try:
            for job_id in job_ids:
                task = self._jobs[job_id].task
                if task is not None:
                    task._done.wait()
        except KeyboardInterrupt:
            log.warning("interrupted: cancelling the batch's unfinished tasks")
            self._cancel(job_ids)
            raise

    # -- the batch ------------------------------------------------------------------------
    def _get_job_ids(self, batch_id: str) -> list[str]:
        try:
            return list(self._batches[batch_id])
        except KeyError:
            raise RemoteResultsError(
                f"batch {batch_id!r} was not submitted through this connection"
            ) from None

    def _get_batch_status(self, batch_id: str) -> BatchStatus:
        statuses = [self._jobs[j].status() for j in self._get_job_ids(batch_id)]
        if all(s is JobStatus.PENDING for s in statuses):
            return BatchStatus.PENDING
        if any(s in _UNFINISHED for s in statuses):
            return BatchStatus.RUNNING
        if all(s is JobStatus.CANCELED for s in statuses):
            return BatchStatus.CANCELED
        if all(s is JobStatus.ERROR for s in statuses):
            return BatchStatus.ERROR
        return BatchStatus.DONE

    def _query_job_progress(self, batch_id: str) -> Mapping[str, tuple[JobStatus, Any]]:
        progress: dict[str, tuple[JobStatus, Any]] = {}
        for job_id in self._get_job_ids(batch_id):
            job = self._jobs[job_id]
            status = job.status()
            progress[job_id] = (status, job.result() if status is JobStatus.DONE else None)
        return progress

    def _fetch_result(self, batch_id: str, job_ids: list[str] | None) -> Seq[Any]:
        """Every job's result, in order. A job still running: RemoteResultsError (Pulser's
        "not yet"); a job that failed or was cancelled: its own one-line error."""
        wanted = self._get_job_ids(batch_id) if job_ids is None else job_ids
        results = []
        for job_id in wanted:
            job = self._jobs.get(job_id)
            if job is None:
                raise RemoteResultsError(f"job {job_id!r} is not in batch {batch_id!r}")
            status = job.status()
            if status in _UNFINISHED:
                raise RemoteResultsError(f"job {job_id} is {status.name}: no result yet")
            if status is not JobStatus.DONE:
                raise job.failure()
            results.append(job.result())
        return tuple(results)

    def cancel_batch_jobs(self, batch_id: str | None = None) -> None:
        """Cancel the batch's unfinished tasks (the last batch by default), each as
        :meth:`qrmi_tasks.api.Task.cancel` does, and wait for their cancels."""
        batch_id = batch_id or self._last_batch
        if batch_id is None:
            return
        self._cancel(self._get_job_ids(batch_id))

    def _cancel(self, job_ids: list[str]) -> None:
        tasks = [t for j in job_ids if (t := self._jobs[j].task) is not None and not t.done()]
        for task in tasks:
            task.cancel(wait=False)  # all at once: each cancel has its own budget
        for task in tasks:
            task.cancel(wait=True)

    def tasks(self, batch_id: str | None = None) -> list[api.Task | None]:
        """The batch's Tasks in job order (None for a job emulated in process)."""
        batch_id = batch_id or self._last_batch
        return [] if batch_id is None else [self._jobs[j].task for j in self._get_job_ids(batch_id)]


__all__ = ["OpenBatchRefused", "QRMIConnection", "SequenceRefused"]
