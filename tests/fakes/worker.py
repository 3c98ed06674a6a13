"""Run a payload the way the ``local`` resource does, for the fakes' job execution.

A child process running ``qrmi_tasks.providers.local.worker``, never a thread of the
test process: qiskit's primitives crashed it when run in server threads (segfaults in
``QuantumCircuit`` construction), and a child can be killed when a job is cancelled.
The children are forked by the test run's runner server (tests/runner_server.py), which
has imported the simulators once: a job starts in milliseconds instead of seconds. They
are not measured by coverage: they are the fakes' machinery, and the simulator code they
run is measured where the product runs it, in the ``local`` resource's tests.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

try:  # tests/ is on sys.path under pytest; a fake served on its own runs as tests.fakes
    from forked import fork_worker
except ImportError:
    from tests.forked import fork_worker


class WorkerRun:
    """One payload running in a worker process (forked, see the module docstring)."""

    def __init__(self, document: dict[str, Any], args: tuple[str, ...] = ()) -> None:
        self.workdir = tempfile.TemporaryDirectory(prefix="fake-job-")
        workdir = Path(self.workdir.name)
        (workdir / "payload.json").write_text(json.dumps(document))
        # stderr to a file read when the job fails
        with (workdir / "stderr.txt").open("wb") as stderr:
            self._process = fork_worker(
                [str(workdir), *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                measured=False,
            )

    def wait(self) -> tuple[str | None, str | None]:
        """(result JSON text, None) or (None, one-line error)."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(600)
        workdir = Path(self.workdir.name)
        if self._process.returncode != 0:
            error = workdir / "error.txt"
            stderr = workdir / "stderr.txt"
            text = error.read_text() if error.exists() else stderr.read_text()[-300:]
            return None, " ".join(text.split())[:300]
        return (workdir / "result.json").read_text(), None

    def close(self) -> None:
        """Kill the worker if it still runs; remove its files."""
        if self._process.poll() is None:
            self._process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(30)
        self.workdir.cleanup()


def run_worker(document: dict[str, Any], args: tuple[str, ...] = ()) -> str:
    """Run ``document`` to completion (``args``: the worker's options, ``--seed N``...);
    its result JSON text, or RuntimeError."""
    run = WorkerRun(document, args)
    try:
        text, error = run.wait()
    finally:
        run.close()
    if error is not None:
        raise RuntimeError(error)
    return text
