"""The three commands share one front door (qrmi_tasks.front): the same error line, exit
codes, Ctrl-C and closed-stdout handling, each checked on the real command in a process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import EXAMPLES, clean_env

pytestmark = pytest.mark.timeout(120)

# How each command is started; the runner's as conftest.runner_cmd does.
COMMANDS = {
    "qrmi-task-runner": "from qrmi_tasks.cli import main; main()",
    "qrmi-gen": "from generators.cli import main; main()",
    "qrmi-result": "from qrmi_tasks.results_cli import main; main()",
}


def command(program: str, *args: str, before: str = "") -> list[str]:
    """``program ARGS`` in this interpreter; ``before`` runs first (to plant a bug)."""
    return [sys.executable, "-c", before + COMMANDS[program], *args]


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


# A bug in our own code (not a client library): the function the command calls raises.
BUGS = {
    "qrmi-gen": (
        "import generators.validate as v\n"
        "def broken(*a, **k):\n    raise KeyError('planted')\n"
        "v.validate_file = broken\n",
        ("validate", str(EXAMPLES / "qiskit" / "bell_sampler.json")),
    ),
    "qrmi-result": (
        "import qrmi_tasks.results as r\n"
        "def broken(*a, **k):\n    raise KeyError('planted')\n"
        "r.summarize = broken\n",
        ("summary", "any.json"),
    ),
}


@pytest.mark.parametrize("program", sorted(BUGS))
def test_unforeseen_error_is_one_line_exit_70(program):
    before, args = BUGS[program]
    proc = subprocess.run(
        command(program, *args, before=before),
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert proc.returncode == 70, proc.stderr
    line = one_error_line(proc.stderr)
    assert line.startswith("error: internal error: KeyError: 'planted'"), line
    assert f"'{program} -v ...'" in line  # the hint names a -v this program accepts
    assert proc.stdout == ""


@pytest.mark.parametrize("program", sorted(BUGS))
def test_verbose_shows_the_traceback_of_an_unforeseen_error(program):
    before, args = BUGS[program]
    proc = subprocess.run(
        command(program, "-v", *args, before=before),
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert proc.returncode == 70, proc.stderr
    assert "Traceback" in proc.stderr and "KeyError: 'planted'" in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1].startswith("error: internal error: KeyError")


def _hold_fifo_reader(fifo: str, proc: subprocess.Popen[str], timeout: float = 60) -> int:
    """Wait until ``proc`` is opening ``fifo`` for reading; return our write end.

    A non-blocking open for writing succeeds only once a reader is there, so when it does,
    the command is inside our input reading (it then blocks in read: nothing is written).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: no reader yet
            if proc.poll() is not None:
                raise AssertionError(f"exited {proc.returncode}: {proc.communicate()}") from None
            time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"never opened the FIFO: {proc.communicate()}")


CTRL_C = {
    "qrmi-task-runner": ("local", "{fifo}"),
    "qrmi-gen": ("validate", "{fifo}"),
    "qrmi-result": ("summary", "{fifo}"),
}


@pytest.mark.parametrize("program", sorted(CTRL_C))
def test_ctrl_c_exits_130_without_a_traceback(program, tmp_path):
    fifo = tmp_path / "input.json"
    os.mkfifo(fifo)
    args = [a.format(fifo=fifo) for a in CTRL_C[program]]
    proc = subprocess.Popen(
        command(program, *args),
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    writer = _hold_fifo_reader(str(fifo), proc)
    try:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        os.close(writer)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    assert stdout == ""


def test_closed_stdout_is_exit_4_not_a_traceback(tmp_path):
    result = tmp_path / "result.json"
    result.write_text(json.dumps({"counter": {"00": 6, "11": 4}}))
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before a byte is written (`| head -0`)
    try:
        proc = subprocess.run(
            command("qrmi-result", "summary", str(result)),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 4, proc.stderr
    line = one_error_line(proc.stderr)
    assert line == "error: stdout was closed before all output was written"
    assert "Exception ignored" not in proc.stderr


def test_group_without_a_command_shows_its_help_exit_2():
    proc = subprocess.run(
        command("qrmi-result"), capture_output=True, text=True, env=clean_env(), timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("Usage: qrmi-result") and "summary" in proc.stderr
    assert "error:" not in proc.stderr
