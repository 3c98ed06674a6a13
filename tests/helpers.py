"""Helpers shared by the test modules: run the real CLI as a process (forked from
tests/runner_server.py, or fresh) with a controlled environment, wait on it, run it in
process, and check its one-line errors.

Test modules import from here (``from helpers import ...``), never from each other or
from conftest.py, which only holds fixtures.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from forked import ForkedProcess, child_fd, runner_server, scrubbed_environ, worker_launcher

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BELL = EXAMPLES / "qiskit" / "bell_sampler.json"
# IBM's primitive schemas are not ours to copy into the repository: they are read from the
# workspace's shared folder, or from QRMI_IBM_SCHEMAS.
SCHEMAS = Path(os.environ.get("QRMI_IBM_SCHEMAS") or ROOT.parent / "shared" / "schemas")


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without Slurm/QRMI variables, plus ``extra``.

    The runner's check of circuits against the backend's target is off unless ``extra``
    turns it on (tests/test_target_check.py does): it costs every runner on a fake IBM
    backend a qiskit-ibm-runtime import, and most tests send the logical Bell circuit,
    which no real backend (nor the fakes' Torino documents) accepts as ISA.
    """
    env = scrubbed_environ()
    env["QRMI_CHECK_TARGET"] = "off"
    # a journal of submissions of its own (qrmi_tasks/journal.py): the developer's home is
    # not written, and two tests with the same Slurm variables never take over each
    # other's tasks; a test that reruns a request reuses its environment
    env["QRMI_STATE_DIR"] = tempfile.mkdtemp(prefix="journal-", dir=_state_base())
    # and a token cache of its own (qrmi_tasks/token_cache.py): tests count IAM requests
    env["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="runtime-", dir=_state_base())
    env.update(extra)
    return env


_STATE_BASE: list[str] = []


def _state_base() -> str:
    """This test process's directory of journals, removed when it exits."""
    if not _STATE_BASE:
        _STATE_BASE.append(tempfile.mkdtemp(prefix="qrmi-test-state-"))
        atexit.register(shutil.rmtree, _STATE_BASE[0], True)
    return _STATE_BASE[0]


def ibm_schema(name: str) -> dict:
    """IBM's schema ``name`` (e.g. ``sampler_v2``); skips the test, saying why, if absent."""
    path = SCHEMAS / f"{name}_schema.json"
    if not path.exists():
        pytest.skip(f"IBM's schema {path.name} is not in {SCHEMAS} (set QRMI_IBM_SCHEMAS)")
    return json.loads(path.read_text())


def runner_cmd(*args: str) -> list[str]:
    """Command line of the installed runner (same interpreter as the tests)."""
    return [sys.executable, "-m", "qrmi_tasks", *args]


# ``QRMI_TEST_FRESH_RUNNERS=1``: every runner of the tests is a fresh interpreter.
_ALWAYS_FRESH = os.environ.get("QRMI_TEST_FRESH_RUNNERS") == "1"


def start_runner(
    *args: str,
    env: dict[str, str],
    capture: bool = True,
    fresh: bool = False,
    cwd: Path | None = None,
) -> subprocess.Popen[str] | ForkedRunner:
    """Start ``qrmi-task-runner ARGS`` in the background (for signal and reattach tests).

    With ``capture`` its stdout/stderr are pipes (read them with ``communicate``),
    otherwise they are discarded. The runner is a child of tests/runner_server.py (its
    imports done) unless ``fresh``: then ``python -m qrmi_tasks``, whose start-up is
    part of what the test checks.
    """
    stream = subprocess.PIPE if capture else subprocess.DEVNULL
    if fresh or _ALWAYS_FRESH:
        return subprocess.Popen(
            runner_cmd(*args), env=env, stdout=stream, stderr=stream, text=True, cwd=cwd
        )
    return ForkedRunner(_texts(args), env, cwd, capture)


def run_runner(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    cwd: Path | None = None,
    fresh: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``qrmi-task-runner ARGS`` to completion and capture stdout/stderr (``fresh``:
    as :func:`start_runner`)."""
    proc = start_runner(*args, env=clean_env() if env is None else env, fresh=fresh, cwd=cwd)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


class ForkedRunner(ForkedProcess):
    """A runner forked by tests/runner_server.py, with ``subprocess.Popen``'s interface
    (:class:`forked.ForkedProcess`, plus ``communicate`` and text pipes when captured)."""

    def __init__(
        self, args: list[str], env: dict[str, str], cwd: Path | None, capture: bool
    ) -> None:
        self.stdout = self.stderr = None
        self._read: dict[int, list[bytes]] = {}  # what communicate() has read, per pipe
        child_fds, ours = [child_fd(subprocess.DEVNULL, 0)], []
        for n in (1, 2):
            if capture:
                read, write = os.pipe()
                ours.append(read)
                child_fds.append(write)
            else:
                child_fds.append(child_fd(subprocess.DEVNULL, n))
        if capture:
            # the test's ends of the pipes, closed by communicate() as Popen's are
            self.stdout, self.stderr = (open(fd, encoding="utf-8", errors="replace") for fd in ours)  # noqa: SIM115
        request = {"argv": args, "env": env, "cwd": str(cwd or os.getcwd())}
        super().__init__(runner_server().path, request, child_fds, runner_cmd(*args))

    def communicate(self, timeout: float | None = None) -> tuple[str | None, str | None]:
        """Read stdout and stderr to their end, then wait; as ``Popen.communicate``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        streams = [s for s in (self.stdout, self.stderr) if s is not None and not s.closed]
        for stream in streams:
            self._read.setdefault(stream.fileno(), [])
        open_fds = [s.fileno() for s in streams]
        while open_fds:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            readable, _, _ = select.select(open_fds, [], [], left)
            if not readable:
                raise subprocess.TimeoutExpired(self.args, timeout)
            for fd in readable:
                data = os.read(fd, 65536)
                if data:
                    self._read[fd].append(data)
                else:
                    open_fds.remove(fd)
        texts = []
        for stream in (self.stdout, self.stderr):
            if stream is None or stream.closed:
                texts.append(None)
                continue
            texts.append(b"".join(self._read.pop(stream.fileno(), [])).decode("utf-8", "replace"))
            stream.close()
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        self.wait(left)
        return texts[0], texts[1]


@contextlib.contextmanager
def use_forked_local_workers() -> Iterator[None]:
    """While active, the ``local`` resource's simulator workers started in this process
    are forked by the runner server (:func:`forked.worker_launcher`), unless every
    process of the tests is to be fresh (``QRMI_TEST_FRESH_RUNNERS=1``)."""
    from qrmi_tasks.providers.local.provider import LocalProvider

    if _ALWAYS_FRESH:
        yield
        return
    before = LocalProvider.worker_launcher
    LocalProvider.worker_launcher = worker_launcher()
    try:
        yield
    finally:
        LocalProvider.worker_launcher = before


def wait_for(
    predicate: Callable[[], bool], what: str, proc: subprocess.Popen[str], timeout: float = 60
) -> None:
    """Poll ``predicate`` until true while runner ``proc`` runs; fail with its stderr if it
    exits first or ``timeout`` passes (then it is killed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            _, stderr = proc.communicate()
            raise AssertionError(f"runner exited {proc.returncode} before {what}: {stderr}")
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"timed out waiting for {what}: {proc.communicate()[1]}")


def assert_clean_error(proc, *fragments: str, code: int = 2) -> str:
    """Exactly one stderr line, ``error: ...``, the expected exit code, no traceback."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert proc.stdout == ""
    return lines[0]


class ConnectionCounter:
    """A TCP listener on 127.0.0.1 that counts connection attempts (proves 'no network')."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.count = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.count += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@dataclass
class Outcome:
    """What an in-process run of a command produced."""

    code: int
    stdout: str
    stderr: str

    @property
    def returncode(self) -> int:
        """The exit code, under :class:`subprocess.CompletedProcess`'s name (so that
        :func:`assert_clean_error` checks an in-process run and a process alike)."""
        return self.code

    def errors(self) -> list[str]:
        """The ``error:`` lines (the CLI prints exactly one for a failure)."""
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]


@dataclass
class InProcessCli:
    """The ``in_process`` fixture (and ``scripted``, which adds ``script``): our commands
    called in this process, in an environment the test sets with :meth:`use_env`."""

    capsys: Any
    monkeypatch: Any
    script: Any = None

    def use_env(self, env: dict[str, str]) -> None:
        """Make ``env`` the whole environment (``os.environ``) until the test ends."""
        for name in [name for name in os.environ if name not in env]:
            self.monkeypatch.delenv(name)
        for name, value in env.items():
            self.monkeypatch.setenv(name, value)

    def run(self, *args: str) -> Outcome:
        """``qrmi-task-runner ARGS`` in this process, as ``cli.main`` runs it (minus exit).

        Runs the same click command and the same error report as ``main``; only the
        process exit is left out (an abandoned call's ``os._exit`` would end pytest).
        """
        from qrmi_tasks.cli import command
        from qrmi_tasks.front import run_command

        return self._outcome(lambda: run_command(command, "qrmi-task-runner", _texts(args)))

    def result(self, *args: Any) -> Outcome:
        """``qrmi-result ARGS`` in this process: ``results_cli.main`` minus its exit."""
        from qrmi_tasks.front import run_command
        from qrmi_tasks.results_cli import PROGRAM, VERBOSE_HINT, cli

        return self._outcome(lambda: run_command(cli, PROGRAM, _texts(args), VERBOSE_HINT))

    def gen(self, *args: Any) -> Outcome:
        """``qrmi-gen ARGS`` in this process: ``generators.cli.main`` minus its exit."""
        from generators.cli import run

        return self._outcome(lambda: run(_texts(args)))

    def _outcome(self, command: Callable[[], int]) -> Outcome:
        """Run ``command`` (returns an exit code) and capture what it alone wrote."""
        self.capsys.readouterr()
        code = command()
        captured = self.capsys.readouterr()
        return Outcome(code, captured.out, captured.err)


def _texts(args: tuple[Any, ...]) -> list[str]:
    """Command-line arguments as text (tests pass paths and numbers as they are)."""
    return [str(a) for a in args]


@contextlib.contextmanager
def process_state_restored() -> Iterator[None]:
    """Put back, on leaving, what an in-process run of a command changes in its process.

    Signal handlers (the runner's), the logging set-up (root handlers and level, the
    levels setup_logging gives loggers, captured warnings) and the secrets it learnt to
    mask (a later run in a fresh process would not mask them).
    """
    from qrmi_tasks import logsetup
    from qrmi_tasks.signals import WATCHABLE

    handlers = {s: signal.getsignal(s) for s in WATCHABLE}
    root = logging.getLogger()
    root_state = (list(root.handlers), root.level)
    ours = logging.getLogger(logsetup.LOGGER_NAME)
    ours_state = (list(ours.handlers), ours.level, ours.propagate)
    named = [logging.getLogger(n) for n in (*logsetup._CHATTY, "py.warnings")]
    levels = [logger.level for logger in named]
    secrets = set(logsetup.SECRETS._secrets)
    try:
        yield
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        root.handlers[:] = root_state[0]
        root.setLevel(root_state[1])
        ours.handlers[:] = ours_state[0]
        ours.setLevel(ours_state[1])
        ours.propagate = ours_state[2]
        for logger, level in zip(named, levels, strict=True):
            logger.setLevel(level)
        logging.captureWarnings(False)
        logsetup.SECRETS._secrets.clear()
        logsetup.SECRETS._secrets.update(secrets)


@dataclass
class Captured:
    """What :meth:`StreamCapture.readouterr` returns (``capsys``'s names)."""

    out: str
    err: str


class StreamCapture:
    """``capsys`` where that fixture cannot go (a module-scoped fixture): ``sys.stdout``
    and ``sys.stderr`` are in-memory text streams, with the binary ``buffer`` the runner
    copies a result to, until ``monkeypatch`` is undone."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._streams = [io.TextIOWrapper(io.BytesIO(), "utf-8", write_through=True) for _ in "12"]
        monkeypatch.setattr(sys, "stdout", self._streams[0])
        monkeypatch.setattr(sys, "stderr", self._streams[1])

    def readouterr(self) -> Captured:
        """The text written since the last call (as ``capsys.readouterr``)."""
        texts = []
        for stream in self._streams:
            stream.flush()
            raw = stream.buffer
            texts.append(raw.getvalue().decode("utf-8", "replace"))
            raw.seek(0)
            raw.truncate()
        return Captured(*texts)
