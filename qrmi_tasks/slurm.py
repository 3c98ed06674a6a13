"""What the runner asks Slurm itself: is the job being requeued right now?

``scontrol requeue`` stops a job exactly like ``scancel`` (SIGCONT, SIGTERM, SIGKILL),
but it wants the work to go on: the requeued job will run the same step again. By the
time the step gets SIGTERM, Slurm has already counted the restart (``Restarts=`` in
``scontrol show job``), while this process still sees the count it started with
(``SLURM_RESTART_COUNT``, absent on the first run).
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Mapping

log = logging.getLogger("qrmi_tasks.slurm")


def requeue_in_progress(environ: Mapping[str, str], timeout: float = 3.0) -> bool:
    """True if this Slurm job is being requeued (so its remote task should be kept)."""
    job_id = environ.get("SLURM_JOB_ID")
    scontrol = shutil.which("scontrol")
    if not job_id or not scontrol:
        return False
    try:
        proc = subprocess.run(
            [scontrol, "-o", "show", "job", job_id], capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("cannot ask Slurm about job %s: %s", job_id, exc)
        return False
    match = re.search(r"\bRestarts=(\d+)", proc.stdout)
    if proc.returncode != 0 or not match:
        return False
    try:
        started_with = int(environ.get("SLURM_RESTART_COUNT") or 0)
    except ValueError:
        started_with = 0
    return int(match.group(1)) > started_with
