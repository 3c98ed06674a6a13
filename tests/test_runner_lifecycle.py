"""The runner's lifecycle rules, in process, against a scripted provider (tests/scripted.py).

Each rule here is the runner's own, not a provider's protocol: one cancel whatever
arrives, an outage ridden out for the grace period and no longer, the exit code of each
failure, no half-written output, a requeued task left running. The signals are real
(sent to this process, handled by the runner's SignalWatch); only the provider is
scripted. End-to-end tests (test_signals, test_cancel_matrix, test_outage,
test_failure_exits, test_slurm) prove the same paths through a real process.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading

import pytest
import scripted as sp
from helpers import BELL
from scripted import RESULT, hang, signal_self

from qrmi_tasks.errors import ProviderError, TransientError
from qrmi_tasks.providers.base import StatusReport, TaskStatus

RUNNING, COMPLETED = TaskStatus.RUNNING, TaskStatus.COMPLETED


def _run(scripted, tmp_path, *extra: str):
    out = tmp_path / "out.json"
    return scripted.run(sp.RESOURCE, str(BELL), "-o", str(out), *extra), out


def test_completed_task_writes_the_result_and_cleans_up(scripted, tmp_path):
    done, out = _run(scripted, tmp_path)
    assert done.code == 0, done.stderr
    assert out.read_bytes() == RESULT
    names = [name for name, _ in scripted.script.calls]
    assert names[0] == "submit" and names[-2:] == ["cleanup", "close"]
    assert scripted.script.count("submit") == 1 and scripted.script.count("cancel") == 0


def test_a_new_result_file_takes_the_users_umask_read_never_set(scripted, tmp_path, monkeypatch):
    """Setting the umask to learn it would, for an instant, strip it from the files a
    notebook's other threads create: the runner only reads it. An existing file keeps its
    own mode."""
    previous = os.umask(0o027)
    real_umask, calls = os.umask, []
    monkeypatch.setattr(os, "umask", lambda mask: calls.append(mask) or real_umask(mask))
    try:
        done, out = _run(scripted, tmp_path)
    finally:
        real_umask(previous)
    assert done.code == 0, done.stderr
    assert calls == [] and out.stat().st_mode & 0o777 == 0o640
    out.chmod(0o604)
    done, _ = _run(scripted, tmp_path)
    assert done.code == 0 and out.stat().st_mode & 0o777 == 0o604


def test_result_to_stdout_when_no_output_file(scripted):
    done = scripted.run(sp.RESOURCE, str(BELL))
    assert done.code == 0, done.stderr
    assert done.stdout == RESULT.decode() + "\n"  # the next log line starts a line of its own


# -- signals: one cancel, the exit code of the signal -------------------------------------
@pytest.mark.parametrize(
    ("signals", "code"),
    [
        ((signal.SIGTERM,), 143),
        ((signal.SIGINT,), 130),
        ((signal.SIGHUP,), 129),
        ((signal.SIGTERM, signal.SIGTERM, signal.SIGTERM), 143),  # repeated: one cancel
        ((signal.SIGCONT, signal.SIGTERM), 143),  # scancel's pair: one cancel, TERM's code
        ((signal.SIGCONT,), 128 + signal.SIGCONT),  # SIGCONT alone cancels by default
    ],
    ids=["term", "int", "hup", "term-x3", "cont-term", "cont"],
)
def test_signal_while_running_cancels_once(scripted, tmp_path, signals, code):
    sent = threading.Event()

    def send_all():
        for signum in signals:
            signal_self(signum)()
        sent.set()
        return RUNNING

    scripted.script.status = [RUNNING, send_all, RUNNING]
    # The cancel waits for the last signal: a signal sent after the run had ended (and
    # the test process's own handlers were back) would kill this pytest worker.
    scripted.script.cancel = [lambda: sent.wait(10) and None]
    (tmp_path / "out.json").write_text("old\n")
    done, out = _run(scripted, tmp_path)
    assert done.code == code, done.stderr
    assert scripted.script.count("cancel") == 1
    assert done.stderr.count("cancelling task task-1") == 1
    name = signal.Signals(signals[-1] if code != 128 + signal.SIGCONT else signal.SIGCONT).name
    assert f"received {name}; cancelling task task-1" in done.stderr
    assert scripted.script.count("cleanup") == 1  # after the cancel
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no temp file


@pytest.mark.parametrize("how", ["option", "env"])
def test_no_cancel_on_sigcont_runs_on(scripted, tmp_path, monkeypatch, how):
    args = ["--no-cancel-on-sigcont"] if how == "option" else []
    if how == "env":
        monkeypatch.setenv("QRMI_NO_CANCEL_ON_SIGCONT", "1")
    scripted.script.status = [RUNNING, signal_self(signal.SIGCONT, RUNNING), RUNNING, COMPLETED]
    done, out = _run(scripted, tmp_path, *args)
    assert done.code == 0, done.stderr
    assert out.read_bytes() == RESULT
    assert scripted.script.count("cancel") == 0 and "SIGCONT" not in done.stderr


def test_signal_after_completion_keeps_the_result_on_the_provider(scripted, tmp_path):
    scripted.script.status = [COMPLETED]
    scripted.script.result = [signal_self(signal.SIGTERM, RESULT)]
    (tmp_path / "out.json").write_text("old\n")
    done, out = _run(scripted, tmp_path)
    assert done.code == 143, done.stderr
    assert "task task-1 already completed, result not written (kept on the provider)" in (
        done.stderr
    )
    assert scripted.script.count("cancel") == 0
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_cancel_answered_transient_once_is_retried_and_lands(scripted, tmp_path):
    scripted.script.status = [RUNNING, signal_self(signal.SIGTERM, RUNNING)]
    scripted.script.cancel = [TransientError("503 Service Unavailable"), None]
    done, _ = _run(scripted, tmp_path)
    assert done.code == 143, done.stderr
    assert scripted.script.count("cancel") == 2
    assert "cancel attempt 1 failed (503 Service Unavailable); retrying" in done.stderr
    assert "task task-1: cancel requested" in done.stderr


def test_cancel_that_never_lands_is_given_up_within_the_budget(scripted, tmp_path):
    scripted.script.status = [RUNNING, signal_self(signal.SIGTERM, RUNNING)]
    scripted.script.cancel = [TransientError("503 Service Unavailable")]
    done, _ = _run(scripted, tmp_path)
    assert done.code == 143, done.stderr
    assert scripted.script.count("cancel") > 1
    assert "cancel did not land after" in done.stderr
    assert "the task may still run on the provider" in done.stderr
    assert scripted.script.count("cleanup") == 1


def test_cancel_refused_is_logged_not_retried(scripted, tmp_path):
    scripted.script.status = [RUNNING, signal_self(signal.SIGTERM, RUNNING)]
    scripted.script.cancel = [ProviderError("403 Forbidden")]
    done, _ = _run(scripted, tmp_path)
    assert done.code == 143, done.stderr
    assert scripted.script.count("cancel") == 1
    assert "task task-1: cancel failed: 403 Forbidden" in done.stderr


def test_signal_while_submit_hangs_cancels_what_it_created(scripted, tmp_path):
    released = threading.Event()
    # the signal comes while submit is blocked (its answer never comes in time)
    scripted.script.submit = [signal_self(signal.SIGTERM, hang(released, "task-late"))]
    scripted.script.cancel_submission = [["task-9"]]
    try:
        done, out = _run(scripted, tmp_path)
    finally:
        released.set()
    assert done.code == 143, done.stderr
    assert "while the submission was in flight; cancelling whatever it created" in done.stderr
    assert scripted.script.count("cancel_submission") == 1
    assert ("cleanup", "task-9") in scripted.script.calls
    assert "the submission was still unanswered at exit" in done.stderr
    assert not out.exists()


def test_requeue_leaves_a_reattachable_task_running(scripted, tmp_path, monkeypatch):
    """scontrol requeue sends the same signals as scancel: Slurm's restart count decides."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"
    scontrol.write_text("#!/bin/sh\necho 'JobId=77 JobName=x Restarts=1 BatchFlag=1'\n")
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setattr(sp.ScriptedProvider, "can_reattach", True)
    scripted.script.status = [RUNNING, signal_self(signal.SIGTERM, RUNNING)]
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    done, _ = _run(scripted, out_dir)
    assert done.code == 143, done.stderr
    assert "Slurm is requeueing job 77; task task-1 is left running" in done.stderr
    assert scripted.script.count("cancel") == 0 and scripted.script.count("cleanup") == 0


# -- outages after submission --------------------------------------------------------------
def test_outage_is_ridden_out_with_one_submission(scripted, tmp_path):
    down = TransientError("connection refused")
    scripted.script.status = [RUNNING, down, down, RUNNING, COMPLETED]
    done, out = _run(scripted, tmp_path)
    assert done.code == 0, done.stderr
    assert out.read_bytes() == RESULT
    assert scripted.script.count("submit") == 1
    assert "cannot get the task status (connection refused); retrying in" in done.stderr
    assert "the provider answers again" in done.stderr


def test_outage_longer_than_the_grace_period_is_exit_3_naming_the_task(
    scripted, tmp_path, monkeypatch
):
    monkeypatch.setenv("QRMI_OUTAGE_GRACE_SECONDS", "0.5")
    scripted.script.status = [RUNNING, TransientError("connection refused")]
    done, out = _run(scripted, tmp_path)
    assert done.code == 3, done.stderr
    (line,) = done.errors()
    assert "connection refused" in line and "the outage grace period" in line, line
    assert "cannot get the task status (connection refused); retrying in" in done.stderr
    assert "task task-1 may still be running there" in done.stderr
    assert scripted.script.count("cancel") == 0
    assert not out.exists()


def test_sigterm_during_an_outage_cancels_at_once(scripted, tmp_path):
    down = TransientError("connection refused")
    scripted.script.status = [RUNNING, down, signal_self(signal.SIGTERM, down)]
    done, _ = _run(scripted, tmp_path)
    assert done.code == 143, done.stderr
    assert scripted.script.count("cancel") == 1
    assert done.stderr.count("cancelling task task-1") == 1


# -- failures: each has its exit code, none is a traceback ---------------------------------
@pytest.mark.parametrize(
    ("report", "fragment"),
    [
        (StatusReport(TaskStatus.FAILED, "qubit 3 too hot"), "task task-1 failed: qubit 3 too hot"),
        (StatusReport(TaskStatus.CANCELLED), "task task-1 cancelled"),
    ],
    ids=["failed", "cancelled-by-provider"],
)
def test_task_that_does_not_complete_is_exit_1(scripted, tmp_path, monkeypatch, report, fragment):
    monkeypatch.setattr(sp.ScriptedProvider, "has_logs", True)
    scripted.script.status = [RUNNING, report]
    logs = tmp_path / "task.log"
    done, out = _run(scripted, tmp_path, "--logs", str(logs))
    assert done.code == 1, done.stderr
    (line,) = done.errors()
    assert fragment in line
    assert logs.read_bytes() == b"log line\n"  # the logs explain the failure
    assert scripted.script.count("cleanup") == 1
    assert not out.exists()


def test_provider_error_while_polling_is_exit_3_naming_the_task(scripted, tmp_path):
    scripted.script.status = [RUNNING, ProviderError("protocol error: HTML, not JSON")]
    done, _ = _run(scripted, tmp_path)
    assert done.code == 3, done.stderr
    (line,) = done.errors()
    assert "protocol error: HTML, not JSON" in line
    assert "lost contact with the provider; task task-1 may still be running there" in (done.stderr)
    assert "Traceback" not in done.stderr


def test_unexpected_exception_is_exit_70_naming_the_task(scripted, tmp_path):
    scripted.script.status = [RUNNING, KeyError("state")]
    done, _ = _run(scripted, tmp_path)
    assert done.code == 70, done.stderr
    (line,) = done.errors()
    assert line.startswith("error: internal error: KeyError") and "please report it" in line
    assert "task task-1 may still be running on the provider" in done.stderr
    assert "Traceback" not in done.stderr


def test_unwritable_result_is_exit_4_and_keeps_the_task(scripted, tmp_path):
    target = tmp_path / "results"
    target.mkdir()
    out = target / "out.json"

    def vanish():
        shutil.rmtree(target)  # the directory is gone when the result is published
        return COMPLETED

    scripted.script.status = [RUNNING, vanish]
    done = scripted.run(sp.RESOURCE, str(BELL), "-o", str(out))
    assert done.code == 4, done.stderr
    (line,) = done.errors()
    assert "result" in line
    assert "task task-1 completed but its result was not written; it was kept" in done.stderr
    assert scripted.script.count("cancel") == 0


def test_logs_that_cannot_be_written_are_a_warning_exit_0(scripted, tmp_path, monkeypatch):
    monkeypatch.setattr(sp.ScriptedProvider, "has_logs", True)
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()

    def vanish():
        shutil.rmtree(logs_dir)
        return COMPLETED

    scripted.script.status = [RUNNING, vanish]
    done, out = _run(scripted, tmp_path, "--logs", str(logs_dir / "x.log"))
    assert done.code == 0, done.stderr
    assert "could not save logs" in done.stderr
    assert out.read_bytes() == RESULT
    assert scripted.script.count("cleanup") == 1


def test_failed_cleanup_is_a_warning(scripted, tmp_path):
    scripted.script.cleanup = [ProviderError("500 Internal Server Error")]
    done, out = _run(scripted, tmp_path)
    assert done.code == 0, done.stderr
    assert "task task-1: cleanup failed: 500 Internal Server Error" in done.stderr
    assert out.read_bytes() == RESULT
