"""Run a payload the way the ``local`` resource does, for the fakes' job execution.

A child process (``python -m qrmi_tasks.providers.local_worker``), never a thread of the
test process: qiskit's primitives crashed it when run in server threads (segfaults in
``QuantumCircuit`` construction), and a child can be killed when a job is cancelled.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


class WorkerRun:
    """One payload running in the local resource's worker process."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.workdir = tempfile.TemporaryDirectory(prefix="fake-job-")
        (Path(self.workdir.name) / "payload.json").write_text(json.dumps(document))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "qrmi_tasks.providers.local_worker", self.workdir.name],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait(self) -> tuple[str | None, str | None]:
        """(result JSON text, None) or (None, one-line error)."""
        _, stderr = self.proc.communicate(timeout=600)
        workdir = Path(self.workdir.name)
        if self.proc.returncode != 0:
            error = workdir / "error.txt"
            text = error.read_text() if error.exists() else stderr[-300:]
            return None, " ".join(text.split())[:300]
        return (workdir / "result.json").read_text(), None

    def close(self) -> None:
        """Kill the worker if it still runs; remove its files."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
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
