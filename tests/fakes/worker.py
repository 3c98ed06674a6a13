"""Run a payload the way the ``local`` resource does, for the fakes' job execution.

A child process running ``qrmi_tasks.providers.local_worker``, never a thread of the
test process: qiskit's primitives crashed it when run in server threads (segfaults in
``QuantumCircuit`` construction), and a child can be killed when a job is cancelled.
The children are forked by one server per test process (worker_server.py), which has
imported the simulators once: a job starts in milliseconds instead of seconds.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any


class _ForkServer:
    """The test process's worker_server.py, started on first use."""

    def __init__(self) -> None:
        # Not measured by coverage (``make test`` would start it in every Python process):
        # it is the fakes' machinery, and the simulator code it runs is measured where the
        # product runs it, in the ``local`` resource's tests. Tracing its imports and jobs
        # cost the suite CPU time it did not have.
        environ = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("worker_server.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=environ,
            text=True,
            bufsize=1,
        )
        self._started: queue.Queue[int] = queue.Queue()
        self._exits: dict[int, int] = {}
        self._ended: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self._request = threading.Lock()
        threading.Thread(target=self._read, name="fork server", daemon=True).start()

    def _event(self, pid: int) -> threading.Event:
        with self._lock:
            return self._ended.setdefault(pid, threading.Event())

    def _read(self) -> None:
        for line in self.proc.stdout:
            kind, pid, *rest = line.split()
            if kind == "started":
                self._started.put(int(pid))
            elif kind == "exited":
                self._exits[int(pid)] = int(rest[0])
                self._event(int(pid)).set()

    def fork(self, workdir: str) -> int:
        """Start a child on ``workdir``; its pid."""
        with self._request:
            self.proc.stdin.write(workdir + "\n")
            self.proc.stdin.flush()
            return self._started.get(timeout=120)

    def wait(self, pid: int, timeout: float) -> int | None:
        """The child's exit code (-N: killed by signal N), None if it still runs."""
        if not self._event(pid).wait(timeout):
            return None
        with self._lock:
            self._ended.pop(pid, None)
        return self._exits.pop(pid)

    def stop(self) -> None:
        end_server(self.proc)


def end_server(proc: subprocess.Popen[str], timeout: float = 10) -> None:
    """End a fork server that serves until its stdin closes; killed if it is still there
    after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.stdin.close()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


_server: _ForkServer | None = None
_server_lock = threading.Lock()


def _fork_server() -> _ForkServer:
    global _server
    with _server_lock:
        if _server is None or _server.proc.poll() is not None:
            _server = _ForkServer()
            atexit.register(_server.stop)
        return _server


class WorkerRun:
    """One payload running in a worker process (forked, see the module docstring)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.workdir = tempfile.TemporaryDirectory(prefix="fake-job-")
        (Path(self.workdir.name) / "payload.json").write_text(json.dumps(document))
        self._server = _fork_server()
        self.pid = self._server.fork(self.workdir.name)
        self.returncode: int | None = None

    def wait(self) -> tuple[str | None, str | None]:
        """(result JSON text, None) or (None, one-line error)."""
        if self.returncode is None:
            self.returncode = self._server.wait(self.pid, 600)
        workdir = Path(self.workdir.name)
        if self.returncode != 0:
            error = workdir / "error.txt"
            stderr = workdir / "stderr.txt"
            text = error.read_text() if error.exists() else stderr.read_text()[-300:]
            return None, " ".join(text.split())[:300]
        return (workdir / "result.json").read_text(), None

    def close(self) -> None:
        """Kill the worker if it still runs; remove its files."""
        if self.returncode is None:
            # not once it has been reaped: its pid may belong to another process by then
            self.returncode = self._server.wait(self.pid, 0)
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.returncode = self._server.wait(self.pid, 30)
        self.workdir.cleanup()


def run_worker(document: dict[str, Any]) -> str:
    """Run ``document`` to completion; its result JSON text, or RuntimeError."""
    run = WorkerRun(document)
    try:
        text, error = run.wait()
    finally:
        run.close()
    if error is not None:
        raise RuntimeError(error)
    return text
