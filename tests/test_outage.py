"""A provider outage after submission does not lose the task (issue: trustworthy runs).

The fake Direct Access service stops answering status reads (connections dropped) for
60 s while the job runs and completes; the runner rides it out within the outage grace
period and delivers the result from its one submission. A SIGTERM during an outage
still cancels at once. The grace period's end (exit 3 naming the task) is the runner's
rule, checked in process in test_runner_lifecycle.py.
"""

from __future__ import annotations

import json
import signal
import time

import pytest
from fakes.direct_access import FakeDirectAccess, runner_env
from helpers import EXAMPLES, clean_env, run_runner, start_runner, wait_for

pytestmark = pytest.mark.timeout(240)

BACKEND = "fake_heron"
BELL = EXAMPLES / "qiskit" / "bell_sampler.json"


@pytest.fixture
def fake():
    server = FakeDirectAccess((BACKEND,), job_seconds=20).start()
    yield server
    server.stop()


def _outage(fake: FakeDirectAccess, seconds: float) -> None:
    fake.configure(
        faults=[
            {
                "method": "GET",
                "match": "/v1/jobs/[^/]+",
                "drop": True,
                "times": 10**9,
                "until": time.time() + seconds,
            }
        ]
    )


def _wait_for_job(fake: FakeDirectAccess, proc) -> None:
    wait_for(lambda: bool(fake.jobs), "the job's creation", proc)


@pytest.mark.long
def test_sixty_second_outage_mid_job_is_ridden_out(fake, s3_url, tmp_path):
    env = clean_env(**runner_env(BACKEND, fake.url, s3_url))
    out = tmp_path / "out.json"
    proc = start_runner(BACKEND, str(BELL), "-o", str(out), env=env)
    _wait_for_job(fake, proc)
    time.sleep(1.0)
    _outage(fake, 60)  # the job completes (20 s) while nobody can ask
    _, stderr = proc.communicate(timeout=200)
    assert proc.returncode == 0, stderr
    from qiskit_ibm_runtime import RuntimeDecoder

    counts = json.loads(out.read_text(), cls=RuntimeDecoder)[0].data.meas.get_counts()
    assert set(counts) == {"00", "11"} and sum(counts.values()) == 1000
    posts = [r for r in fake.calls("POST", "/v1/jobs") if r["status"] == 204]
    assert len(posts) == 1
    dropped = [r for r in fake.calls("GET", "/v1/jobs/[^/]+") if r["status"] == 0]
    assert dropped, "the outage never happened"
    assert "retrying in" in stderr and "the provider answers again" in stderr


def test_sigterm_during_an_outage_cancels_at_once(fake, s3_url):
    env = clean_env(**runner_env(BACKEND, fake.url, s3_url))
    proc = start_runner(BACKEND, str(BELL), env=env)
    _wait_for_job(fake, proc)
    _outage(fake, 120)
    wait_for(
        lambda: any(r["status"] == 0 for r in fake.calls("GET", "/v1/jobs/[^/]+")),
        "a dropped status read",
        proc,
    )
    time.sleep(3)  # in the provider's retries or the runner's outage wait by now
    sent_wall, sent = time.time(), time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    assert time.monotonic() - sent < 2.0
    cancels = fake.calls("POST", "/v1/jobs/[^/]+/cancel")
    assert len(cancels) == 1, cancels
    assert cancels[0]["time"] - sent_wall < 1.0
    assert stderr.count("cancelling task") == 1


def test_bad_outage_grace_setting_is_exit_2(tmp_path):
    env = clean_env(QRMI_OUTAGE_GRACE_SECONDS="soon")
    proc = run_runner("local", str(BELL), env=env)
    assert proc.returncode == 2
    assert "QRMI_OUTAGE_GRACE_SECONDS must be a positive number of seconds" in proc.stderr
