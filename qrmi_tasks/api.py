"""Run payloads from Python (notebooks, scripts) with the runner's whole lifecycle.

::

    import qrmi_tasks

    result = qrmi_tasks.run(payload, resource="local")   # a Qiskit PrimitiveResult
    result[0].data.meas.get_counts()

    task = qrmi_tasks.submit(payload, resource="ibm_torino")   # returns at once
    task.status()   # "preparing", "submitting", "queued", "running", "completed"...
    task.result()   # waits; task.cancel() cancels the remote task

Same configuration, checks and providers as ``qrmi-task-runner`` (it is the same code:
:func:`qrmi_tasks.runner.run`). :func:`run` in the main thread cancels the task on
Ctrl-C (a notebook's "interrupt kernel") and on SIGTERM/SIGHUP (Slurm's scancel), then
raises ``KeyboardInterrupt`` (SIGINT) or ``SystemExit(128+N)``; the previous signal
handlers are restored afterwards, so the kernel keeps its own. :func:`submit` runs the
task in a background thread, which installs no signal handler: cancel it with
:meth:`Task.cancel` (unfinished tasks are cancelled when the interpreter exits).
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qrmi_tasks.errors import QrmiError, TaskFailed, UsageError
from qrmi_tasks.logsetup import LOGGER_NAME, SECRETS, secret_env_values
from qrmi_tasks.payload import CheckedPayload, check_document, load_payload
from qrmi_tasks.providers.base import TaskStatus
from qrmi_tasks.runner import CANCEL_BUDGET, CLEANUP_BUDGET, RunOutcome, RunRequest, TaskRun
from qrmi_tasks.signals import SignalWatch, cancel_on_sigcont_default, describe

_live: weakref.WeakSet[Task] = weakref.WeakSet()
_log_handler: logging.Handler | None = None
# Our logger's (level, propagate) before _setup_logging added its handler.
_logger_before: tuple[int, bool] | None = None
#: How a cancel from :meth:`Task.cancel` is named in log lines (not as a signal).
CANCEL_FROM_PYTHON = "a cancel from Python (Task.cancel)"
# How long cancel() waits for the runner's cancel path (budgets counted from the trigger).
_CANCEL_WAIT = CANCEL_BUDGET + CLEANUP_BUDGET + 2.0


class TaskCancelled(TaskFailed):
    """The task was cancelled from Python (:meth:`Task.cancel`) or by a signal."""


def _payload(payload: Any, support_qiskit: bool | None) -> tuple[CheckedPayload | None, Path]:
    """The parsed payload (None: let the runner read the file) and the name it goes by."""
    if isinstance(payload, str | os.PathLike):
        path = Path(payload)
        if support_qiskit is None:
            return None, path  # read and checked by the runner, as from the CLI
        parsed = load_payload(path)
        document, source = copy.deepcopy(parsed.document), str(path)
    elif isinstance(payload, CheckedPayload):
        document, source = copy.deepcopy(payload.document), payload.source
    elif isinstance(payload, Mapping):
        document, source = copy.deepcopy(dict(payload)), "<payload dict>"
    elif isinstance(getattr(payload, "document", None), Mapping):  # generators' payloads
        document, source = copy.deepcopy(dict(payload.document)), f"<{type(payload).__name__}>"
    else:
        raise UsageError(
            f"cannot run a {type(payload).__name__}: give a payload file path, a payload "
            "dict, or a payload from generators (sampler_payload, estimator_payload...)"
        )
    if support_qiskit is not None:
        if "parameters" not in document:
            raise UsageError("support_qiskit applies to Qiskit primitive payloads only")
        document["parameters"]["support_qiskit"] = bool(support_qiskit)
    return check_document(document, source), Path(source)


def _setup_logging(level: int | str | None) -> None:
    """Our log lines to stderr at ``level``, secrets masked; None leaves logging to the
    application: the handler an earlier call added goes, and the logger's level and
    propagation are what they were before it."""
    global _log_handler, _logger_before
    logger = logging.getLogger(LOGGER_NAME)
    if level is None:
        if _log_handler is not None and _log_handler in logger.handlers:
            logger.removeHandler(_log_handler)
            if _logger_before is not None:
                logger.setLevel(_logger_before[0])
                logger.propagate = _logger_before[1]
        _logger_before = None
        return
    if _log_handler is None or _log_handler not in logger.handlers:
        _logger_before = (logger.level, logger.propagate)
    if _log_handler is None:
        _log_handler = _CurrentStderr()
        _log_handler.setFormatter(logging.Formatter("qrmi-tasks %(levelname)s %(message)s"))
        _log_handler.addFilter(SECRETS)
    if _log_handler not in logger.handlers:
        logger.addHandler(_log_handler)
    logger.propagate = False  # unmasked copies must not reach the application's handlers
    logger.setLevel(level)


class _CurrentStderr(logging.StreamHandler):
    """A handler on whatever ``sys.stderr`` is when a line is written: notebooks and test
    runners swap it, and a handler holding an old one writes where nobody reads."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # StreamHandler.__init__ assigns it
        pass


class Task:
    """One task run through the runner: :meth:`status`, :meth:`result`, :meth:`cancel`."""

    def __init__(
        self,
        payload: Any,
        resource: str,
        *,
        config: str | os.PathLike[str] | None,
        output: str | os.PathLike[str] | None,
        task_id: str | None,
        support_qiskit: bool | None,
        environ: Mapping[str, str] | None,
        log_level: int | str | None,
        handlers: bool,
        in_process: bool = True,
    ) -> None:
        self.environ = os.environ if environ is None else environ
        _setup_logging(log_level)
        SECRETS.add(secret_env_values(self.environ))
        parsed, path = _payload(payload, support_qiskit)
        self._scratch = None if output is not None else Path(tempfile.mkdtemp(prefix="qrmi-"))
        self.output = Path(output) if output is not None else self._scratch / "result.json"
        self.request = RunRequest(
            resource_name=resource,
            payload_path=path,
            output_path=self.output,
            config_path=Path(config) if config is not None else None,
            task_id=task_id,
            cancel_on_sigcont=cancel_on_sigcont_default(self.environ),
            payload=parsed,
            scratch_output=self._scratch is not None,
            in_process=in_process,
        )
        self._watch = SignalWatch(
            self.request.cancel_on_sigcont, handlers=handlers, keep_after_cancel=False
        )
        self._run: TaskRun | None = None
        self._done = threading.Event()
        self._outcome: RunOutcome | None = None  # also a failed task's (TaskFailed.outcome)
        self._error: BaseException | None = None
        self._result: Any = None
        _live.add(self)

    # -- running ----------------------------------------------------------------------------
    def _execute(self) -> None:
        from qrmi_tasks import runner
        from qrmi_tasks.results import load

        try:
            self._outcome = runner.run(self.request, self.environ, self._watch, self._started)
            if self._outcome.status is TaskStatus.COMPLETED:
                # the estimator's observables are named from the payload that ran, which
                # the runner read from the user's file when given a path
                payload = self._outcome.payload
                self._result = load(self.output, payload.document if payload else None)
        except BaseException as exc:  # handed to whoever asks for the result
            if isinstance(exc, TaskFailed):
                self._outcome = exc.outcome
            self._error = exc
        finally:
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)
            self._done.set()

    def _started(self, task_run: TaskRun) -> None:
        self._run = task_run

    def _start_thread(self) -> None:
        thread = threading.Thread(target=self._execute, name="qrmi: task", daemon=True)
        thread.start()

    # -- the handle -------------------------------------------------------------------------
    @property
    def task_id(self) -> str | None:
        """The provider's id of the task (None until it is submitted)."""
        return None if self._run is None else self._run.task_id

    def done(self) -> bool:
        """Whether the run has ended (result, failure or cancel)."""
        return self._done.is_set()

    def status(self) -> str:
        """``preparing``, ``submitting``, ``submitted``, the provider's ``queued`` /
        ``running``, then ``completed``, ``failed``, ``cancelled`` or ``error``."""
        if self._done.is_set():
            outcome = self._outcome
            failed = self._error is not None and not isinstance(self._error, TaskFailed)
            if outcome is None or failed:
                return "error"  # the run raised, or its result could not be read
            if outcome.signal is not None:
                return "cancelled"
            return outcome.status.value  # completed, or the provider's failed / cancelled
        run = self._run
        if run is None or not run.prepared:
            return "preparing"
        if run.task_id is None:
            return "submitting"
        return "submitted" if run.last is None else run.last.status.value

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the task and return its result (a ``PrimitiveResult`` or a Pulser
        counter). Raises the run's error (``TaskFailed``, ``ProviderError``...),
        :class:`TaskCancelled` after a cancel, or ``TimeoutError`` after ``timeout``
        seconds (the task keeps running). Interrupting this wait does not cancel."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"task not finished after {timeout} s (status {self.status()})")
        if self._error is not None:
            raise self._error
        if self._outcome is not None and self._outcome.signal is not None:
            cause = self._watch.reason or describe(self._outcome.signal)
            raise TaskCancelled(f"task {self.task_id or '(not submitted)'} cancelled ({cause})")
        return self._result

    def cancel(self, wait: bool = True) -> bool:
        """Cancel the task as a signal would (once); with ``wait``, return whether the run
        has ended (within the runner's cancel and cleanup budgets)."""
        if not self._done.is_set():
            # SIGINT's exit status and handling; the log says who asked
            self._watch.trigger(signal.SIGINT, CANCEL_FROM_PYTHON)
        return self._done.wait(_CANCEL_WAIT) if wait else self._done.is_set()

    def _repr_html_(self) -> str:
        from html import escape

        task = f" {escape(self.task_id)}" if self.task_id else ""
        return (
            f"<div><b>qrmi-tasks task</b>{task} on <code>{escape(self.request.resource_name)}"
            f"</code>: {escape(self.status())}</div>"
        )

    def __repr__(self) -> str:
        return f"<Task {self.task_id or '-'} on {self.request.resource_name}: {self.status()}>"


def run(
    payload: Any,
    resource: str = "local",
    *,
    config: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    task_id: str | None = None,
    support_qiskit: bool | None = None,
    environ: Mapping[str, str] | None = None,
    log_level: int | str | None = "INFO",
    in_process: bool = True,
) -> Any:
    """Run one payload on ``resource`` and return its result.

    ``payload``: a payload file path, a payload dict, or a payload object from
    :mod:`generators`. ``resource``: a name as for ``qrmi-task-runner`` (``local``, or
    one of ``SLURM_JOB_QPU_RESOURCES`` / ``config``). ``output``: also keep the result
    file there (written atomically). ``support_qiskit`` overrides the payload's.
    ``log_level``: our progress lines on stderr (None: leave logging to the application).
    ``in_process``: a Qiskit payload on ``local`` computes in this process, on the
    worker's engine (no interpreter to start); a cancel then drops its result but cannot
    stop a simulation that has started. False: in a worker process, which a cancel stops
    at once (the CLI's way; Pulser and IQM payloads always use it).

    Returns a Qiskit ``PrimitiveResult`` (sampler or estimator, whichever JSON form the
    provider wrote) or a :class:`~qrmi_tasks.result_objects.PulserCounts` counter.
    Errors are raised as :class:`~qrmi_tasks.errors.QrmiError` subclasses, each with the
    CLI's one-line message and exit code. Ctrl-C cancels the task, then raises
    ``KeyboardInterrupt``.
    """
    in_main = threading.current_thread() is threading.main_thread()
    task = Task(
        payload,
        resource,
        config=config,
        output=output,
        task_id=task_id,
        support_qiskit=support_qiskit,
        environ=environ,
        log_level=log_level,
        handlers=in_main,
        in_process=in_process,
    )
    task._execute()
    outcome = task._outcome
    if outcome is not None and outcome.signal is not None and in_main:
        if outcome.signal == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(outcome.exit_code)
    return task.result()


def submit(
    payload: Any,
    resource: str = "local",
    *,
    config: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    task_id: str | None = None,
    support_qiskit: bool | None = None,
    environ: Mapping[str, str] | None = None,
    log_level: int | str | None = "INFO",
    in_process: bool = True,
) -> Task:
    """Start :func:`run` in a background thread and return its :class:`Task` at once.

    A payload that cannot be read or parsed is refused at once; every other outcome
    (an unknown resource, a failed task...) is raised by :meth:`Task.result`.
    """
    task = Task(
        payload,
        resource,
        config=config,
        output=output,
        task_id=task_id,
        support_qiskit=support_qiskit,
        environ=environ,
        log_level=log_level,
        handlers=False,
        in_process=in_process,
    )
    task._start_thread()
    return task


@atexit.register
def _cancel_unfinished() -> None:
    """A submitted task must not keep running on a QPU after the interpreter is gone."""
    for task in list(_live):
        if not task.done():
            with contextlib.suppress(Exception):  # exiting: nothing more to do
                task.cancel()


__all__ = ["QrmiError", "Task", "TaskCancelled", "run", "submit"]
