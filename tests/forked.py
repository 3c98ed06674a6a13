"""Clients of tests/runner_server.py: processes it forks, with ``subprocess.Popen``'s face.

Used by the tests (runners, the ``local`` resource's workers), the fakes (their jobs) and
the runner server's own children (their workers); so it is light: standard library only.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

_WORKER_MODULE = ["-m", "qrmi_tasks.providers.local.worker"]
ROOT = Path(__file__).resolve().parent.parent


class _RunnerServer:
    """The test run's tests/runner_server.py: one for all pytest-xdist workers (its
    imports cost seconds of CPU each time), started by the first worker that needs it.

    Each test process holds a connection to it; the server ends when the last holder
    has gone, so it outlives the worker that started it as long as others use it.
    """

    def __init__(self) -> None:
        run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid{os.getpid()}"
        self.name = f"qrmi-test-runners-{run}"
        self.path = "\0" + self.name  # abstract namespace (runner_server.py)
        self._hold = self._held()
        if self._hold is None:
            self._start()  # it serves, or another process's server already does
            self._hold = self._held()
        if self._hold is None:
            raise RuntimeError(f"runner_server.py {self.name} does not answer")

    def _held(self) -> socket.socket | None:
        """A holder's connection to the running server, or None if none runs."""
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            conn.connect(self.path)
            conn.send(json.dumps({"hold": True}).encode())
        except OSError:
            conn.close()
            return None
        return conn

    def _start(self) -> None:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("runner_server.py")), self.name],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            env=scrubbed_environ(),
            cwd=ROOT,
            text=True,
        )
        said = proc.stdout.readline().strip()
        proc.stdout.close()
        if said not in ("ready", "taken"):
            proc.kill()
            raise RuntimeError(f"runner_server.py did not start (said {said!r})")

    def alive(self) -> bool:
        """Whether the server still runs (it never writes to a holder: readable is EOF)."""
        readable, _, _ = select.select([self._hold], [], [], 0)
        return not readable

    def release(self) -> None:
        """This test process is done with the server (the last one to go ends it)."""
        self._hold.close()


_server: _RunnerServer | None = None
_server_lock = threading.Lock()  # the fakes start jobs from their server threads


def runner_server() -> _RunnerServer:
    """The test run's runner server, held by this process (started if none runs)."""
    global _server
    with _server_lock:
        if _server is None or not _server.alive():
            _server = _RunnerServer()
            atexit.register(_server.release)
        return _server


_own_server: str | None = None


def serve_from(path: str) -> None:
    """In the runner server (and so in its children): fork workers from the server at
    ``path``, this one, instead of looking for the test run's."""
    global _own_server
    _own_server = path


# Variables that would leak the developer's (or Slurm's) configuration into a test.
_SCRUB_PREFIXES = ("SLURM_", "QRMI_", "SRUN_")


def scrubbed_environ() -> dict[str, str]:
    """This process's environment without Slurm/QRMI variables (the runner server's at
    its imports; ``helpers.clean_env`` starts from it too)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_SCRUB_PREFIXES) and "_QRMI_" not in k
    }


class ForkedProcess:
    """A process forked by tests/runner_server.py, with ``subprocess.Popen``'s interface
    (``pid``, ``returncode``, ``poll``, ``wait``, ``send_signal``, ``terminate``, ``kill``).

    ``child_fds`` become the child's stdin, stdout and stderr; they are closed here once
    sent. The server says ``exited CODE`` on this connection when the child ends.
    """

    def __init__(
        self, server_path: str, request: dict[str, Any], child_fds: list[int], args: list[str]
    ) -> None:
        self.args = args
        self.returncode: int | None = None
        self._conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._conn.connect(server_path)
            socket.send_fds(self._conn, [json.dumps(request).encode()], child_fds)
        finally:
            for fd in child_fds:
                os.close(fd)
        kind, pid = self._conn.recv(64).decode().split()
        assert kind == "started", kind
        self.pid = int(pid)

    def poll(self) -> int | None:
        """The exit code if the process has ended, else None."""
        if self.returncode is None:
            readable, _, _ = select.select([self._conn], [], [], 0)
            if readable:
                self._read_exit()
        return self.returncode

    def _read_exit(self) -> None:
        message = self._conn.recv(64).decode().split()
        if not message:  # the server is gone: it cannot say how its child ended
            raise RuntimeError(f"runner_server.py ended before its child {self.pid}")
        self.returncode = int(message[1])
        self._conn.close()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process's end; its exit code (``TimeoutExpired`` after ``timeout``)."""
        if self.returncode is None:
            readable, _, _ = select.select([self._conn], [], [], timeout)
            if not readable:
                raise subprocess.TimeoutExpired(self.args, timeout)
            self._read_exit()
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the process (nothing once it has ended)."""
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        """SIGTERM."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL."""
        self.send_signal(signal.SIGKILL)


def child_fd(stream: Any, inherited: int) -> int:
    """A duplicate of what ``subprocess.Popen`` would give the child for ``stream`` (None:
    this process's fd ``inherited``)."""
    if stream is None:
        return os.dup(inherited)
    if stream == subprocess.DEVNULL:
        with open(os.devnull, "r+b") as devnull:
            return os.dup(devnull.fileno())
    return os.dup(stream if isinstance(stream, int) else stream.fileno())


def fork_worker(
    args: list[str],
    *,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    session: bool = False,
    measured: bool = True,
) -> ForkedProcess:
    """``python -m qrmi_tasks.providers.local.worker ARGS``, forked by the runner server
    (which has imported Qiskit, Aer and Pulser once) with ``subprocess.Popen``'s stdio
    arguments, this process's environment and directory, and a session of its own if
    ``session``. It dies when this process does: the server kills it when our connection
    closes, as a real worker's parent-death signal does. ``measured=False``: coverage
    does not trace it (the fakes' jobs: machinery, not the product under test)."""
    fds = [child_fd(stream, n) for n, stream in enumerate((stdin, stdout, stderr))]
    request = {
        "worker": args,
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "session": session,
        "measured": measured,
    }
    path = _own_server or runner_server().path
    return ForkedProcess(path, request, fds, [*_WORKER_MODULE, *args])


def worker_launcher() -> Callable[..., ForkedProcess]:
    """A stand-in for ``subprocess.Popen`` as ``LocalProvider.worker_launcher``: the
    ``local`` simulator's worker is forked (:func:`fork_worker`) instead of a fresh
    interpreter, and keeps what the provider asks of its process: its own pid (signals,
    the task id), its exit code or killing signal, a session of its own, the given stdio,
    and its death with the runner (the server's doing: the worker's ``--parent`` check
    would find the server, not the runner, so the option is left out)."""

    def launch(
        command: list[str],
        *,
        stdin: Any = None,
        stdout: Any = None,
        stderr: Any = None,
        start_new_session: bool = False,
    ) -> ForkedProcess:
        if command[1:3] != _WORKER_MODULE:
            raise ValueError(f"not a local worker command: {command}")
        args = command[3:]
        if "--parent" in args:  # its parent is the server, which kills it with the runner
            at = args.index("--parent")
            del args[at : at + 2]
        return fork_worker(
            args, stdin=stdin, stdout=stdout, stderr=stderr, session=start_new_session
        )

    return launch
