"""Signals cancel the task promptly, once, and leave no output behind.

Through a real process on the local simulator: each terminating signal's exit status,
the simulator's worker gone, a signal while the payload is still being read. The
signal mixes (scancel's SIGCONT+SIGTERM, repeats, SIGCONT alone, the SIGCONT opt-out)
are the runner's rules, checked in process in test_runner_lifecycle.py.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest
from helpers import clean_env, start_runner
from payloads import write_long_estimator

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def long_payload(tmp_path_factory):
    return write_long_estimator(tmp_path_factory.mktemp("long") / "long.json")


class Running:
    """A runner subprocess whose stderr is collected line by line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, fresh: bool = True) -> None:
        self.proc = start_runner(*args, env=env or clean_env(), fresh=fresh)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"never saw {text!r}; stderr so far: {''.join(self.lines)}")

    def worker_pid(self) -> int:
        for line in self.lines:
            if m := re.search(r"task local-(\d+): submitted", line):
                return int(m.group(1))
        raise AssertionError("no task id logged")

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code, "".join(self.lines)


def _gone(pid: int, timeout: float = 5) -> bool:
    """Whether process ``pid`` has ended within ``timeout`` (a zombie has: an orphan is
    reaped by whatever reaps here, maybe late)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.02)
    return False


def test_sigterm_cancels_within_a_second(tmp_path, long_payload):
    out = tmp_path / "out.json"
    run = Running("local", str(long_payload), "-o", str(out))
    run.wait_for(": running")
    worker = run.worker_pid()
    sent = time.monotonic()
    run.proc.send_signal(signal.SIGTERM)
    code = run.proc.wait(timeout=10)
    elapsed = time.monotonic() - sent
    code, stderr = run.finish()
    assert code == 143, stderr
    assert elapsed < 1.0, f"took {elapsed:.2f}s"
    assert "received SIGTERM; cancelling task" in stderr
    assert "Traceback" not in stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left either
    assert _gone(worker), "local simulator process outlived the cancel"


def test_existing_output_untouched_by_cancel(tmp_path, long_payload):
    out = tmp_path / "out.json"
    out.write_text("old result\n")
    before = out.stat().st_mtime_ns
    run = Running("local", str(long_payload), "-o", str(out))
    run.wait_for(": running")
    run.proc.send_signal(signal.SIGINT)
    code, stderr = run.finish()
    assert code == 130, stderr
    assert out.read_text() == "old result\n" and out.stat().st_mtime_ns == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_sighup_cancels_like_sigterm(long_payload):
    run = Running("local", str(long_payload))
    run.wait_for(": running")
    worker = run.worker_pid()
    run.proc.send_signal(signal.SIGHUP)
    code, stderr = run.finish()
    assert code == 128 + signal.SIGHUP, stderr
    assert "received SIGHUP; cancelling task" in stderr
    assert _gone(worker)


def test_simulator_killed_by_someone_else_is_a_failure_not_a_cancel(long_payload):
    """The OOM killer's SIGKILL is not our cancel: exit 1, said as such."""
    run = Running("local", str(long_payload))
    run.wait_for(": running")
    os.kill(run.worker_pid(), signal.SIGKILL)
    code, stderr = run.finish()
    assert code == 1, stderr
    assert "killed by SIGKILL, probably out of memory" in stderr
    assert "cancelled" not in stderr and "provider" not in stderr


@pytest.mark.parametrize("fresh", [True, False], ids=["fresh", "forked"])
def test_a_sigkilled_runner_takes_its_simulator_with_it(long_payload, fresh):
    """SIGKILL (Slurm's last word after KillWait) cannot be caught: the simulator must
    not run on for nobody. A fresh runner's worker has a parent-death signal; the tests'
    forked runners' workers must behave the same (tests/forked.py), or they would hide
    leaks from every other test."""
    run = Running("local", str(long_payload), fresh=fresh)
    run.wait_for(": running")
    worker = run.worker_pid()
    run.proc.kill()
    code, _ = run.finish()
    assert code == -signal.SIGKILL
    assert _gone(worker), "the simulator outlived its SIGKILLed runner"


def test_a_worker_whose_runner_is_already_gone_does_not_run(tmp_path):
    """The worker sets its parent-death signal itself, after exec (a preexec_fn could
    deadlock in a threaded runner such as a notebook's): a runner that died before that
    moment is noticed by the parent check, and the payload is never read."""
    import subprocess
    import sys

    # as if reparented: the worker's parent is this process, the runner it names is not
    gone_runner = str(os.getppid())
    started = time.monotonic()
    worker = subprocess.run(
        [
            sys.executable,
            "-m",
            "qrmi_tasks.providers.local.worker",
            str(tmp_path),
            "--parent",
            gone_runner,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 1 and worker.stderr == ""
    assert not (tmp_path / "error.txt").exists() and time.monotonic() - started < 30


def _read_or_empty(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:  # a thread that ended meanwhile
        return ""


def test_sigterm_while_reading_a_fifo_payload(tmp_path):
    """Opening a FIFO nobody writes blocks forever: the signal still ends the run."""
    fifo = tmp_path / "payload.json"
    os.mkfifo(fifo)
    run = Running("local", str(fifo))
    # a thread of it blocked opening the FIFO (the kernel's fifo_open waits in
    # wait_for_partner): by then its handlers are in place; a fixed sleep was not enough
    # for a loaded machine
    tasks = Path(f"/proc/{run.proc.pid}/task")
    deadline = time.monotonic() + 60
    while not any(_read_or_empty(task / "wchan") == "wait_for_partner" for task in tasks.iterdir()):
        assert time.monotonic() < deadline and run.proc.poll() is None, "never blocked"
        time.sleep(0.05)
    sent = time.monotonic()
    run.proc.send_signal(signal.SIGTERM)
    code, stderr = run.finish()
    assert code == 143, stderr
    assert time.monotonic() - sent < 2.0
    assert "before the task was submitted; nothing to cancel" in stderr
    assert "Traceback" not in stderr
