"""The embedded ``local`` resource: runs payloads on this machine, in a child process
(or, for the Python API's Qiskit payloads, on a thread of the caller: :mod:`.inprocess`).

The child (``python -m qrmi_tasks.providers.local.worker``) imports Qiskit Aer or pulser
and computes the result; this process stays light and can stop the child the moment a
signal asks to cancel, exactly like a remote task. A state that cannot fit in the job's
memory is refused before simulating (a Pulser register here, before the child starts;
a Qiskit payload's circuits by the child once decoded); that is an input error (exit 2).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from qrmi_tasks import leftovers
from qrmi_tasks.config import Resource
from qrmi_tasks.errors import ConfigError, PayloadError, ProviderError
from qrmi_tasks.payload import IQM, PULSER, QISKIT, CheckedPayload
from qrmi_tasks.providers.base import PollPolicy, Provider, StatusReport, TaskStatus
from qrmi_tasks.providers.iqm.circuits import shots as iqm_shots
from qrmi_tasks.providers.local import memory
from qrmi_tasks.providers.local.inprocess import InProcessRun
from qrmi_tasks.providers.local.worker import EXIT_REJECTED
from qrmi_tasks.signals import describe

_SCRATCH_PREFIX = "qrmi-local-"
_SCRATCH = re.compile(re.escape(_SCRATCH_PREFIX) + r"(?P<pid>\d+)-[^-]+")


def _scratch_directory() -> Path:
    """The worker's scratch directory (it holds a copy of the payload): in the job's
    ``$TMPDIR``, which Slurm cleans, named with the runner's pid so that a later run
    removes it if a SIGKILL skipped :meth:`LocalProvider.close`."""
    root = os.environ.get("TMPDIR", "")
    base = Path(root) if root and os.path.isdir(root) else Path(tempfile.gettempdir())
    leftovers.remove_stale(base, _SCRATCH)
    try:
        return Path(tempfile.mkdtemp(prefix=f"{_SCRATCH_PREFIX}{os.getpid()}-", dir=base))
    except OSError as exc:
        reason = exc.strerror or exc
        raise ProviderError(f"cannot create a scratch directory in {base}: {reason}") from None


class LocalProvider(Provider):
    """Simulate on this machine (no credentials, no network)."""

    payload_kinds: ClassVar[frozenset[str]] = frozenset({QISKIT, PULSER, IQM})
    # A status call is one waitpid(WNOHANG): polling every 50 ms costs nothing and a short
    # simulation's end is seen at once (a 1 s cap added up to half a second to a Bell run),
    # so there is nothing to gain from placing polls by what earlier runs took.
    poll_policy: ClassVar[PollPolicy] = PollPolicy(
        initial=0.02, factor=1.5, cap=0.05, late_cap=0.5, learns=False
    )
    # Calls only poll a child process: they never block, and the child must be started
    # from the main thread (its parent-death signal follows the thread that forked it).
    remote: ClassVar[bool] = False
    # Starts the worker process: subprocess.Popen, or a stand-in with its signature and
    # interface (pid, poll, wait, terminate, kill). The test suite forks its workers from
    # a server that imported Qiskit and Pulser once (tests/forked.py).
    worker_launcher: ClassVar[Callable[..., subprocess.Popen[bytes]]] = subprocess.Popen
    # The worker's stderr: what ran and how, its timing, the simulators' own messages.
    has_logs: ClassVar[bool] = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._workdir: Path | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._stopped_by_us = False
        self._in_process: InProcessRun | None = None

    def engine(self) -> Any:
        """The :class:`~qrmi_tasks.providers.local.sim.Engine` these settings choose
        (imports the simulator module: for runs in this process only)."""
        from qrmi_tasks.providers.local.sim import Engine

        settings = self.settings
        return Engine(
            settings["ENGINE"],
            settings["METHOD"],
            settings["DEVICE"],
            settings["PULSER_ENGINE"],
            self.resource.variable_prefix,
        )

    @classmethod
    def check_settings(cls, resource: Resource, settings: dict[str, Any]) -> None:
        if settings["ENGINE"] == "reference" and settings["METHOD"] not in (
            "automatic",
            "statevector",
        ):
            variables = resource.variable_prefix
            raise ConfigError(
                f"{variables}ENGINE=reference simulates statevectors only; unset "
                f"{variables}METHOD or use {variables}ENGINE=aer for {settings['METHOD']}"
            )

    def _command(self) -> list[str]:
        settings = self.settings  # every one resolved, defaults included (the declaration's)
        command = [sys.executable, "-m", "qrmi_tasks.providers.local.worker", str(self._workdir)]
        # the worker dies with us (Slurm's KillWait SIGKILL): it arranges that itself after
        # exec; a preexec_fn doing it could deadlock in a threaded parent (a notebook)
        command += ["--parent", str(os.getpid())]
        if settings["SEED"] is not None:
            command += ["--seed", str(settings["SEED"])]
        for option, name in (
            ("--engine", "ENGINE"),
            ("--method", "METHOD"),
            ("--device", "DEVICE"),
            ("--pulser-engine", "PULSER_ENGINE"),
        ):
            command += [option, settings[name]]
        return [*command, "--variables", self.resource.variable_prefix]

    def refuse_a_register_that_cannot_fit(self, payload: CheckedPayload) -> None:
        """A Pulser register too large for this job's memory: exit 2 before any worker
        starts (the sequence is already rebuilt by the payload check; a Qiskit payload's
        circuits are checked in the worker, which decodes them anyway)."""
        engine = self.settings["PULSER_ENGINE"]
        sequence = payload.sequence
        atoms = len(sequence.register.qubit_ids)
        levels = 3 if len(sequence.get_addressed_bases()) > 1 else 2
        needed = memory.pulser_state_bytes(engine, atoms, levels)
        if needed is None:
            return
        variables = self.resource.variable_prefix
        reason = memory.refusal(
            needed,
            f"emulating {atoms} atoms with {engine} needs about",
            f"Set {variables}PULSER_ENGINE=emu-mps (memory grows with entanglement, not "
            "with atoms), ask the job for more memory, or run it on a Pasqal Cloud resource",
        )
        if reason is not None:
            raise PayloadError(reason)

    def _refuse_shots_that_cannot_fit(self, payload: CheckedPayload) -> None:
        """Shots whose per-shot results would not fit this job's memory: exit 2 before
        any worker starts (10**7 shots kept 2.5 GB in the worker)."""
        if payload.kind == QISKIT:
            document = payload.document
            shots, circuits = memory.sampled_shots(
                document["program_id"], document.get("parameters") or {}
            )
        elif payload.kind == IQM:
            job = json.loads(payload.iqm_json)
            circuits = len(job.get("circuits") or [])
            try:
                shots = iqm_shots(job) * circuits
            except ValueError:  # the worker names it, with the job's other problems
                return
        else:
            return
        reason = memory.shots_refusal(shots, circuits)
        if reason is not None:
            raise PayloadError(reason)

    def submit(self, payload: CheckedPayload) -> str:
        if payload.kind == PULSER:
            self.refuse_a_register_that_cannot_fit(payload)
        if payload.kind == IQM and payload.document["job_type"] != "circuit":
            raise PayloadError(
                f"{payload.source}: the local simulator runs IQM 'circuit' jobs only, not "
                f"'{payload.document['job_type']}' (pulse-level) jobs; run it on an "
                "iqm-server resource"
            )
        self._refuse_shots_that_cannot_fit(payload)
        if payload.kind == QISKIT and self.context.in_process:
            # Pulser and IQM payloads keep the worker: their engines are not shared here
            self._in_process = InProcessRun(payload.document, self.engine(), self.settings["SEED"])
            return self._in_process.task_id
        self._workdir = _scratch_directory()
        (self._workdir / "payload.json").write_text(json.dumps(payload.document))
        command = self._command()
        try:
            self._child = type(self).worker_launcher(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=(self._workdir / "worker.log").open("wb"),
                start_new_session=True,  # a terminal's Ctrl-C reaches the runner, which cancels
            )
        except OSError as exc:
            raise ProviderError(f"cannot start the local simulator: {exc.strerror}") from None
        return f"local-{self._child.pid}"

    def status(self, task_id: str) -> StatusReport:
        if self._in_process is not None:
            return self._in_process_status(self._in_process)
        code = self._child.poll() if self._child else None
        if code is None:
            return StatusReport(TaskStatus.RUNNING)
        if code == 0 and (self._workdir / "result.json").exists():
            return StatusReport(TaskStatus.COMPLETED)
        if code < 0 and self._stopped_by_us:
            return StatusReport(TaskStatus.CANCELLED, f"simulator stopped by {describe(-code)}")
        if code < 0:  # nobody here sent it: the OOM killer, an admin, a crash
            hint = ", probably out of memory" if -code == signal.SIGKILL else ""
            return StatusReport(TaskStatus.FAILED, f"simulator killed by {describe(-code)}{hint}")
        if code == EXIT_REJECTED:  # refused before simulating: the input, not the task
            raise PayloadError(self._error_text(code))
        return StatusReport(TaskStatus.FAILED, self._error_text(code))

    @staticmethod
    def _in_process_status(run: InProcessRun) -> StatusReport:
        if run.cancelled:
            return StatusReport(TaskStatus.CANCELLED, "cancelled; the simulation's result dropped")
        if not run.done:
            return StatusReport(TaskStatus.RUNNING)
        if run.text is not None:
            return StatusReport(TaskStatus.COMPLETED)
        if run.rejected:  # refused before simulating: the input, not the task
            raise PayloadError(run.error or "the payload cannot run here")
        return StatusReport(TaskStatus.FAILED, run.error)

    def _error_text(self, code: int) -> str:
        error = self._workdir / "error.txt"
        if error.exists():
            return error.read_text().strip() or f"simulator exited with {code}"
        log = (self._workdir / "worker.log").read_text(errors="replace").strip().splitlines()
        return f"simulator exited with {code}" + (f": {log[-1]}" if log else "")

    def fetch_result(self, task_id: str, into: BinaryIO) -> None:
        if self._in_process is not None:
            into.write((self._in_process.text or "").encode())
            return
        with (self._workdir / "result.json").open("rb") as source:
            shutil.copyfileobj(source, into, 1 << 20)

    def fetch_logs(self, task_id: str, into: BinaryIO) -> bool:
        log = None if self._workdir is None else self._workdir / "worker.log"
        if log is None or not log.exists():
            return False
        with log.open("rb") as source:
            shutil.copyfileobj(source, into, 1 << 20)
        return True

    def cancel(self, task_id: str) -> None:
        if self._in_process is not None:
            # the thread cannot be stopped inside Aer; its result is dropped when it ends
            self._in_process.cancelled = True
            return
        child = self._child
        if child is None or child.poll() is not None:
            return
        self._stopped_by_us = True
        child.terminate()
        try:
            child.wait(timeout=2)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    def close(self) -> None:
        if self._child is not None and self._child.poll() is None:
            self.cancel("")
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
