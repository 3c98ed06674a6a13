"""Clients of tests/runner_server.py: processes it forks, with ``subprocess.Popen``'s face.

Light on purpose (standard library only): the runner server's children import it too,
to ask the same server for their ``local`` simulator workers.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
from collections.abc import Callable
from typing import Any

_WORKER_MODULE = ["-m", "qrmi_tasks.providers.local_worker"]


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


def _child_fd(stream: Any, inherited: int) -> int:
    """A duplicate of what ``subprocess.Popen`` would give the child for ``stream`` (None:
    this process's fd ``inherited``)."""
    if stream is None:
        return os.dup(inherited)
    if stream == subprocess.DEVNULL:
        with open(os.devnull, "r+b") as devnull:
            return os.dup(devnull.fileno())
    return os.dup(stream if isinstance(stream, int) else stream.fileno())


def worker_launcher(server_path: Callable[[], str]) -> Callable[..., ForkedProcess]:
    """A stand-in for ``subprocess.Popen`` as ``LocalProvider.worker_launcher``: the
    ``local`` simulator's worker is forked by the runner server at ``server_path()``,
    which has imported Qiskit, Aer and Pulser once, instead of a fresh interpreter.

    The worker keeps what the provider asks of its process: its own pid (signals, the
    task id), its exit code or killing signal, a session of its own, the given stdio,
    this process's environment and directory; and it dies when this process does (the
    server kills it when our connection closes, as the real worker's parent-death signal).
    """

    def launch(
        command: list[str],
        *,
        stdin: Any = None,
        stdout: Any = None,
        stderr: Any = None,
        start_new_session: bool = False,
        preexec_fn: Callable[[], None] | None = None,  # the server does its job (below)
    ) -> ForkedProcess:
        if command[1:3] != _WORKER_MODULE:
            raise ValueError(f"not a local worker command: {command}")
        fds = [_child_fd(stream, n) for n, stream in enumerate((stdin, stdout, stderr))]
        request = {
            "worker": command[3:],
            "env": dict(os.environ),
            "cwd": os.getcwd(),
            "session": start_new_session,
        }
        return ForkedProcess(server_path(), request, fds, command)

    return launch
