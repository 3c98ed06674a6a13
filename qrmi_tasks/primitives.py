"""Qiskit's own primitives on any configured resource: :class:`SamplerV2`, :class:`EstimatorV2`.

::

    from qrmi_tasks import EstimatorV2, SamplerV2, backend

    isa = generate_preset_pass_manager(backend=backend("ibm_torino")).run(circuit)
    job = SamplerV2(mode="ibm_torino").run([isa], shots=1000)
    job.status()                      # 'QUEUED', 'RUNNING', 'DONE'... as RuntimeJobV2
    job.result()[0].data.meas.get_counts()

They implement qiskit's ``BaseSamplerV2`` / ``BaseEstimatorV2``; ``mode`` is a resource
name as for ``qrmi-task-runner`` (``local``, or one of ``SLURM_JOB_QPU_RESOURCES``) or a
:func:`qrmi_tasks.backend`. On a remote resource each ``run()`` becomes a payload
(:mod:`generators.primitives`) run by :func:`qrmi_tasks.submit`: the runner's checks,
cancel and reattach. On ``local`` the pubs are computed in this process by the local
worker's own engine (:mod:`qrmi_tasks.providers.local.sim`: same engine choice, stds and
memory refusal), with no JSON in between.
"""

from __future__ import annotations

import itertools
import os
import time
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from qiskit.primitives import BasePrimitiveJob, PrimitiveResult
from qiskit.primitives.base import BaseEstimatorV2, BaseSamplerV2
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub

from qrmi_tasks.errors import PayloadError, QrmiError, TaskFailed, UsageError

#: RuntimeJobV2's statuses for ours (qrmi_tasks.api.Task.status)
STATUS = {
    "preparing": "INITIALIZING",
    "submitting": "INITIALIZING",
    "submitted": "QUEUED",
    "queued": "QUEUED",
    "running": "RUNNING",
    "completed": "DONE",
    "failed": "ERROR",
    "error": "ERROR",
    "cancelled": "CANCELLED",
}
FINAL = frozenset({"DONE", "ERROR", "CANCELLED"})

_numbers = itertools.count(1)


class PrimitiveJob(BasePrimitiveJob[PrimitiveResult, str]):
    """A primitive's job, with qiskit-ibm-runtime's ``RuntimeJobV2`` conventions:
    :meth:`status` is ``'INITIALIZING'``, ``'QUEUED'``, ``'RUNNING'``, ``'DONE'``,
    ``'ERROR'`` or ``'CANCELLED'``; :meth:`result` waits. ``task`` is the
    :class:`qrmi_tasks.api.Task` that runs it on a remote resource (None on ``local``)."""

    def __init__(self, handle: _Local | _Remote) -> None:
        super().__init__(handle.placeholder)
        self._handle = handle
        self.task = handle.task

    def job_id(self) -> str:
        """The provider's task id (waits for the submission; ``local-inproc-N`` on local)."""
        return self._handle.job_id()

    def status(self) -> str:
        """RuntimeJobV2's status string for where the job is."""
        return self._handle.status()

    def result(self, timeout: float | None = None) -> PrimitiveResult:
        """Wait for the job and return its ``PrimitiveResult``.

        Raises the job's :class:`~qrmi_tasks.errors.QrmiError` (one line), or
        :class:`~qrmi_tasks.api.TaskCancelled` after :meth:`cancel`, or ``TimeoutError``.
        Ctrl-C while waiting cancels the job (a QPU task must not run on with nobody
        waiting for it), then raises ``KeyboardInterrupt``.
        """
        try:
            return self._handle.result(timeout)
        except KeyboardInterrupt:
            self.cancel()
            raise

    def cancel(self) -> None:
        """Cancel the job: the remote task is cancelled; on ``local`` a simulation that
        has started runs to its end on its thread (Aer cannot be interrupted), but its
        result is dropped and :meth:`result` raises ``TaskCancelled``."""
        self._handle.cancel()

    def done(self) -> bool:
        """Whether the job has completed successfully."""
        return self.status() == "DONE"

    def running(self) -> bool:
        """Whether the job is running."""
        return self.status() == "RUNNING"

    def cancelled(self) -> bool:
        """Whether the job was cancelled."""
        return self.status() == "CANCELLED"

    def errored(self) -> bool:
        """Whether the job failed."""
        return self.status() == "ERROR"

    def in_final_state(self) -> bool:
        """Whether the job has ended (``DONE``, ``ERROR`` or ``CANCELLED``)."""
        return self.status() in FINAL

    def __repr__(self) -> str:
        return f"<PrimitiveJob {self._handle.placeholder}: {self.status()}>"


class _Local:
    """A job on the local engine in this process (it computes on the engine's thread)."""

    task = None

    def __init__(self, start: Any) -> None:
        self.placeholder = f"local-inproc-p{next(_numbers)}"
        self._result: PrimitiveResult | None = None
        self._error: BaseException | None = None
        self._cancelled = False
        self._started = _local_errors(self.placeholder, start)  # checked: now running

    def job_id(self) -> str:
        return self.placeholder

    def status(self) -> str:
        if self._cancelled:
            return "CANCELLED"
        if self._result is None and self._error is None and not self._started.done():
            return "RUNNING"
        self._settle()
        return "ERROR" if self._error is not None else "DONE"

    def _settle(self) -> None:
        if self._result is None and self._error is None:
            try:
                self._result = _local_errors(self.placeholder, lambda: _result(self._started))
            except QrmiError as exc:
                self._error = exc

    def result(self, timeout: float | None) -> PrimitiveResult:
        from qrmi_tasks.api import TaskCancelled

        if timeout is not None:
            deadline = time.monotonic() + timeout
            while not (self._cancelled or self._started.done()):
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"job {self.placeholder} not finished after {timeout} s")
                time.sleep(0.01)
        if not self._cancelled:
            self._settle()
        if self._cancelled:
            raise TaskCancelled(f"job {self.placeholder} was cancelled; its result is dropped")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def cancel(self) -> None:
        if self._result is None and self._error is None:
            self._cancelled = True
            self._started.cancel()


def _local_errors(name: str, action: Any) -> Any:
    """``action()``, the local engine's failures as our one-line errors."""
    from qrmi_tasks.providers.local.sim import ExecutionError, Rejected

    try:
        return action()
    except Rejected as exc:  # refused before anything was allocated
        raise PayloadError(str(exc)) from None
    except ExecutionError as exc:
        raise TaskFailed(f"job {name} failed: {exc}") from None
    except MemoryError:
        raise TaskFailed(f"job {name} failed: out of memory") from None


class _Remote:
    """A job run through :func:`qrmi_tasks.api.submit`: the runner's whole lifecycle."""

    def __init__(self, task: Any) -> None:
        self.task = task
        self.placeholder = f"qrmi-{task.request.resource_name}-p{next(_numbers)}"

    def job_id(self) -> str:
        while self.task.task_id is None and not self.task.done():
            time.sleep(0.01)  # the submission is under way on the task's thread
        return self.task.task_id or self.placeholder

    def status(self) -> str:
        return STATUS.get(self.task.status(), "ERROR")

    def result(self, timeout: float | None) -> PrimitiveResult:
        return self.task.result(timeout)

    def cancel(self) -> None:
        self.task.cancel()


class _Mode:
    """Where a primitive runs: a resource name and, for ``local``, its engine."""

    def __init__(
        self,
        mode: Any,
        environ: Mapping[str, str] | None,
        config: str | os.PathLike[str] | None,
    ) -> None:
        from qrmi_tasks.payload import QISKIT
        from qrmi_tasks.providers import provider_class, resolve_resource
        from qrmi_tasks.providers.local.provider import LocalProvider

        if mode is None:
            mode = "local"
        if not isinstance(mode, str):
            resource = getattr(mode, "resource", None)
            if not isinstance(resource, str):
                raise UsageError(
                    f"mode must be a resource name or a qrmi_tasks.backend(...), not "
                    f"{type(mode).__name__}"
                )
            environ = environ if environ is not None else getattr(mode, "environ", None)
            config = config if config is not None else getattr(mode, "config", None)
            mode = resource
        self.name = mode
        self.environ = os.environ if environ is None else environ
        self.config = config
        resource = resolve_resource(mode, self.environ, config)
        cls = provider_class(resource.type.name)
        if QISKIT not in cls.payload_kinds:
            raise UsageError(
                f"resource '{mode}' ({resource.type.name}) does not run Qiskit primitives; "
                f"it runs {', '.join(sorted(cls.payload_kinds))} payloads"
            )
        self.engine: Any = None
        self.seed: int | None = None
        if issubclass(cls, LocalProvider):
            from qrmi_tasks.providers import open_provider
            from qrmi_tasks.providers.base import RunContext

            provider = open_provider(mode, self.environ, config, "run", RunContext("qrmi-prim"))
            try:
                self.engine, self.seed = provider.engine(), provider.settings["SEED"]
            finally:
                provider.close()


def _pub_list(pubs: Any, single: type) -> list[Any]:
    from qiskit import QuantumCircuit

    if isinstance(pubs, QuantumCircuit | single):
        return [pubs]  # one pub given bare: a friendlier form of [pub]
    return list(pubs)


class _Primitive:
    def __init__(
        self,
        mode: Any = None,
        options: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        config: str | os.PathLike[str] | None = None,
        log_level: int | str | None = "WARNING",
    ) -> None:
        self._mode = _Mode(mode, environ, config)
        self.options: dict[str, Any] = dict(options or {})
        self._log_level = log_level

    @property
    def mode(self) -> str:
        """The resource this primitive runs on."""
        return self._mode.name

    def _submit(self, payload: Any) -> PrimitiveJob:
        from qrmi_tasks.api import submit

        task = submit(
            payload,
            self._mode.name,
            config=self._mode.config,
            environ=self._mode.environ,
            log_level=self._log_level,
        )
        return PrimitiveJob(_Remote(task))

    def _payload(self, build: Any, *args: Any, **kwargs: Any) -> Any:
        from generators.core import GeneratorError, IsaWarning

        with warnings.catch_warnings():
            # ISA or not is the runner's check, against the resource's own target
            warnings.simplefilter("ignore", IsaWarning)
            try:
                return build(*args, support_qiskit=True, options=self.options, **kwargs)
            except GeneratorError as exc:
                raise ValueError(str(exc)) from None


def _physical(circuit: Any) -> bool:
    """Whether the circuit's qubits are a backend's (transpiled: it has a layout)."""
    return circuit.layout is not None or not circuit.qregs


class SamplerV2(_Primitive, BaseSamplerV2):
    """Qiskit's ``BaseSamplerV2`` on resource ``mode`` (a name, or a
    :func:`qrmi_tasks.backend`; default ``local``).

    ``options``: qiskit-ibm-runtime's sampler options as plain JSON (``default_shots``,
    ``simulator.seed_simulator``...), sent with each payload. ``environ``/``config``: the
    configuration to read instead of ``os.environ`` (as for :func:`qrmi_tasks.run`).
    ``log_level``: the runner's lines on stderr for remote runs.
    """

    def run(self, pubs: Iterable[Any], *, shots: int | None = None) -> PrimitiveJob:
        """Run the pubs (``(circuit, parameter_values, shots)`` tuples, circuits,
        ``SamplerPub``); ``shots`` applies to pubs that set none."""
        if shots is None:
            shots = self.options.get("default_shots")
        items = _pub_list(pubs, SamplerPub)
        coerced = [SamplerPub.coerce(pub, shots) for pub in items]  # coerce validates
        if self._mode.engine is None:
            from generators.primitives import sampler_payload

            return self._submit(self._payload(sampler_payload, coerced, shots=shots))
        return PrimitiveJob(_Local(self._local(coerced)))

    def _local(self, coerced: list[SamplerPub]) -> Any:
        from qrmi_tasks.providers.local import sim

        default, seed = sim.sampler_defaults({"options": self.options})
        seed = seed if seed is not None else self._mode.seed
        pubs = []
        for index, pub in enumerate(coerced):
            try:
                circuit = sim.sampler_circuit(pub.circuit, f"pubs[{index}]", _physical(pub.circuit))
            except sim.ExecutionError as exc:
                raise ValueError(str(exc)) from None
            pubs.append((circuit, pub.parameter_values, pub.shots))
        sampled = sum((pub.shots or default) * max(1, pub.parameter_values.size) for pub in coerced)
        engine = self._mode.engine
        return lambda: sim.start_sampler(pubs, default, seed, engine, sampled)


class EstimatorV2(_Primitive, BaseEstimatorV2):
    """Qiskit's ``BaseEstimatorV2`` on resource ``mode`` (as :class:`SamplerV2`).

    ``options``: qiskit-ibm-runtime's estimator options as plain JSON
    (``default_precision``, ``default_shots``, ``seed_estimator``...). On ``local`` each
    std is the precision its value was drawn with (Aer draws N(exact, precision)).
    """

    def run(self, pubs: Iterable[Any], *, precision: float | None = None) -> PrimitiveJob:
        """Run the pubs (``(circuit, observables, parameter_values, precision)`` tuples
        or ``EstimatorPub``); ``precision`` applies to pubs that set none."""
        if precision is None:
            precision = self.options.get("default_precision")
        items = _pub_list(pubs, EstimatorPub)
        coerced = [EstimatorPub.coerce(pub, precision) for pub in items]  # coerce validates
        if self._mode.engine is None:
            from generators.primitives import estimator_payload

            return self._submit(self._payload(estimator_payload, coerced, precision=precision))
        return PrimitiveJob(_Local(self._local(coerced)))

    def _local(self, coerced: list[EstimatorPub]) -> Any:
        from qrmi_tasks.providers.local import sim

        default, seed = sim.estimator_defaults({"options": self.options})
        seed = seed if seed is not None else self._mode.seed
        pubs = []
        for index, pub in enumerate(coerced):
            where = f"pubs[{index}]"
            try:
                circuit, observables = sim.estimator_circuit(
                    pub.circuit, pub.observables, where, _physical(pub.circuit)
                )
            except sim.ExecutionError as exc:
                raise ValueError(str(exc)) from None
            pubs.append((circuit, observables, pub.parameter_values, pub.precision))
        engine = self._mode.engine
        return lambda: sim.start_estimator(pubs, default, seed, engine)


def _result(started: Any) -> PrimitiveResult:
    """The engine's result as the worker's file would give it: Aer's per-run simulator
    metadata dropped, as a :class:`~qrmi_tasks.result_objects.QrmiResult`."""
    from qrmi_tasks.providers.local.sim import steady_metadata
    from qrmi_tasks.result_objects import from_decoded

    return from_decoded(steady_metadata(started.result()))


__all__ = ["EstimatorV2", "PrimitiveJob", "QrmiError", "SamplerV2"]
