"""Long waits show life: a task with no news is reported at the default log level."""

from __future__ import annotations

import itertools
import re

from fakes.direct_access import FakeDirectAccess, runner_env
from helpers import EXAMPLES, clean_env, run_runner

BACKEND = "fake_heron"


def test_a_long_wait_logs_a_heartbeat_at_the_default_level(s3_url, tmp_path):
    fake = FakeDirectAccess((BACKEND,), job_seconds=3.5).start()
    try:
        env = clean_env(
            **runner_env(BACKEND, fake.url, s3_url),
            QRMI_HEARTBEAT_SECONDS="1",
            SRUN_DEBUG="3",
        )
        out = tmp_path / "out.json"
        proc = run_runner(
            BACKEND, str(EXAMPLES / "qiskit" / "bell_sampler.json"), "-o", str(out), env=env
        )
    finally:
        fake.stop()
    assert proc.returncode == 0, proc.stderr
    beats = re.findall(r"task \S+: still running \((\d+) s since submission\)", proc.stderr)
    # a line about every second while the job runs (it runs >= 3.5 s), never more often
    assert len(beats) >= 2, proc.stderr
    seconds = [int(b) for b in beats]
    assert seconds[0] >= 1
    assert all(b > a for a, b in itertools.pairwise(seconds)), proc.stderr
