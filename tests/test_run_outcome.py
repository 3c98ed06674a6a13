"""runner.run's RunOutcome, in process against the scripted provider (tests/scripted.py):
its fields for each way a run ends, the exit code the CLI takes from it, and the Python
API's statuses and results, which read it."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import pytest
import scripted as sp
from helpers import BELL, EXAMPLES
from scripted import signal_self

import qrmi_tasks
from qrmi_tasks.errors import InputError, TaskFailed
from qrmi_tasks.payload import load_payload
from qrmi_tasks.providers.base import StatusReport, TaskStatus
from qrmi_tasks.runner import RunOutcome, RunRequest, run

RUNNING, COMPLETED = TaskStatus.RUNNING, TaskStatus.COMPLETED
FAILED, CANCELLED = TaskStatus.FAILED, TaskStatus.CANCELLED
# a result the API can load (Pasqal's form): the scripted default is not a runner result
COUNTER = b'{"counter": {"00": 3, "11": 5}}'


def _request(output: Path | None = None, payload: Path = BELL) -> RunRequest:
    return RunRequest(sp.RESOURCE, payload, output_path=output)


# -- runner.run -----------------------------------------------------------------------------
def test_completed_run_names_its_task_payload_and_result_file(scripted, tmp_path):
    out = tmp_path / "out.json"
    outcome = run(_request(out))
    assert outcome.status is COMPLETED and outcome.signal is None
    assert outcome.task_id == "task-1"
    assert outcome.result_path == out and out.read_bytes() == sp.RESULT
    assert outcome.payload is not None and outcome.payload.source == str(BELL)
    assert outcome.payload.digest == load_payload(BELL).digest
    assert outcome.exit_code == 0


def test_completed_run_to_stdout_has_no_result_path(scripted):
    outcome = run(_request())
    assert (outcome.status, outcome.result_path, outcome.exit_code) == (COMPLETED, None, 0)
    assert scripted.capsys.readouterr().out == sp.RESULT.decode() + "\n"


@pytest.mark.parametrize("end", [FAILED, CANCELLED])
def test_task_ended_by_the_provider_raises_task_failed_with_its_outcome(scripted, tmp_path, end):
    scripted.script.status = [RUNNING, StatusReport(end, "reason_code 1517")]
    out = tmp_path / "out.json"
    with pytest.raises(TaskFailed, match=f"task task-1 {end.value}: reason_code 1517") as caught:
        run(_request(out))
    outcome = caught.value.outcome
    assert isinstance(outcome, RunOutcome)
    assert outcome.status is end and outcome.signal is None  # the provider's end, no signal
    assert outcome.task_id == "task-1" and outcome.payload.source == str(BELL)
    assert outcome.result_path is None and not out.exists()
    assert outcome.exit_code == caught.value.exit_code == 1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signalled_run_is_cancelled_with_the_signal(scripted, tmp_path, signum):
    scripted.script.status = [RUNNING, signal_self(signum, RUNNING), RUNNING]
    outcome = run(_request(tmp_path / "out.json"))
    assert outcome.status is CANCELLED and outcome.signal == signum
    assert outcome.task_id == "task-1" and outcome.payload.source == str(BELL)
    assert outcome.result_path is None
    assert outcome.exit_code == 128 + signum
    assert scripted.script.count("cancel") == 1


def test_signal_during_submission_names_the_task_it_created(scripted):
    scripted.script.submit = [signal_self(signal.SIGTERM, "task-1")]
    outcome = run(_request())
    assert (outcome.status, outcome.signal, outcome.exit_code) == (CANCELLED, signal.SIGTERM, 143)
    assert outcome.payload is not None  # read and checked before the signal came
    # the submit answered at once: its task was cancelled like a running one
    assert outcome.task_id == "task-1" and scripted.script.count("cancel") == 1


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (RunOutcome(COMPLETED, "t", None), 0),
        (RunOutcome(FAILED, "t", None), 1),
        (RunOutcome(CANCELLED, "t", None), 1),  # by the provider: the task failed
        (RunOutcome(CANCELLED, None, None, signal=signal.SIGTERM), 143),
        (RunOutcome(CANCELLED, "t", None, signal=signal.SIGCONT), 128 + signal.SIGCONT),
    ],
    ids=["completed", "failed", "provider-cancelled", "sigterm", "sigcont"],
)
def test_exit_code_of_each_outcome(outcome, code):
    assert outcome.exit_code == code


def test_cli_exits_with_the_outcome_code(scripted, tmp_path):
    scripted.script.status = [RUNNING, signal_self(signal.SIGHUP, RUNNING), RUNNING]
    assert scripted.run(sp.RESOURCE, str(BELL), "-o", str(tmp_path / "o.json")).code == 129


# -- the Python API reads the outcome -------------------------------------------------------
def _submit(payload: Path = BELL) -> qrmi_tasks.Task:
    return qrmi_tasks.submit(payload, resource=sp.RESOURCE, log_level=None)


def test_api_completed(scripted):
    scripted.script.result = [COUNTER]
    task = _submit()
    assert task.result(timeout=30) == {"00": 3, "11": 5}
    assert task.status() == "completed" and task.task_id == "task-1"


@pytest.mark.parametrize("end", [FAILED, CANCELLED])
def test_api_provider_end_is_its_status(scripted, end):
    scripted.script.status = [RUNNING, end]
    task = _submit()
    with pytest.raises(TaskFailed) as caught:
        task.result(timeout=30)
    assert not isinstance(caught.value, qrmi_tasks.TaskCancelled)  # not cancelled by us
    assert task.status() == end.value


def test_api_cancel_is_cancelled(scripted):
    running = threading.Event()

    def report_running():
        running.set()
        return RUNNING

    scripted.script.status = [report_running]
    task = _submit()
    assert running.wait(30)
    assert task.cancel()
    assert task.status() == "cancelled"
    cancelled = r"task task-1 cancelled \(a cancel from Python \(Task.cancel\)\)"
    with pytest.raises(qrmi_tasks.TaskCancelled, match=cancelled):
        task.result()
    assert scripted.script.count("cancel") == 1


def test_api_unreadable_result_is_an_error(scripted):
    scripted.script.result = [b"not a result\n"]
    task = _submit()
    with pytest.raises(InputError):
        task.result(timeout=30)
    assert task.status() == "error"  # the run completed, its result is unusable


@pytest.mark.parametrize(
    ("signum", "raised"), [(signal.SIGTERM, SystemExit), (signal.SIGINT, KeyboardInterrupt)]
)
def test_api_run_in_the_main_thread_raises_for_the_signal(scripted, signum, raised):
    scripted.script.status = [RUNNING, signal_self(signum, RUNNING), RUNNING]
    with pytest.raises(raised) as caught:
        qrmi_tasks.run(BELL, resource=sp.RESOURCE, log_level=None)
    if raised is SystemExit:
        assert caught.value.code == 143


def test_api_names_observables_from_the_payload_that_ran(scripted, tmp_path):
    """The labels come from the outcome's payload, not from the file read again: a file
    changed while the task ran does not rename the result's observables."""
    payload = tmp_path / "estimator.json"
    document = json.loads((EXAMPLES / "qiskit" / "bell_estimator.json").read_text())
    payload.write_text(json.dumps(document))
    changed = json.loads(json.dumps(document))
    changed["parameters"]["pubs"][0][1] = ["YY", "XX", "ZI"]

    def rewrite_then_running():
        payload.write_text(json.dumps(changed))
        return RUNNING

    scripted.script.status = [rewrite_then_running, COMPLETED]
    scripted.script.result = [b'{"results": [{"data": {"evs": [1.0, 1.0, 0.0]}}]}']
    result = _submit(payload).result(timeout=30)
    assert result.observables == [["ZZ", "XX", "ZI"]]
    assert list(result[0].data.evs) == [1.0, 1.0, 0.0]
