"""pasqal-local: the runner against the fake warden (real MUNGE credentials, real HTTP).

Most cases run the CLI in this process (``in_process``); signals need a process.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from fakes.munge_daemon import ensure_munged
from fakes.pasqal_local import FakeWarden, runner_env
from helpers import clean_env, start_runner, wait_for
from payloads import write_pulser_payload

pytestmark = pytest.mark.timeout(120)
QPU = "PASQAL_LOCAL"


@pytest.fixture(scope="module", autouse=True)
def munged():
    reason = ensure_munged()
    if reason is not None:
        pytest.skip(f"the warden authenticates with MUNGE: {reason}")


@pytest.fixture
def fake():
    server = FakeWarden(job_seconds=0.3).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def payload(tmp_path_factory):
    return write_pulser_payload(tmp_path_factory.mktemp("pulser") / "seq.json", runs=80)


def _open_session(fake: FakeWarden) -> str:
    """A session as the Slurm plugin's acquire() would open it (POST /sessions)."""
    session = str(len(fake.sessions) + 1) + "-plugin-session"
    fake.sessions[session] = {"user_id": str(os.getuid()), "slurm_job_id": "4242"}
    return session


def test_happy_path_in_the_plugins_session(in_process, fake, payload, tmp_path):
    session = _open_session(fake)
    in_process.use_env(clean_env(**runner_env(QPU, fake.url, session)))
    out = tmp_path / "out.json"
    outcome = in_process.run(QPU, payload, "-o", out)
    assert outcome.code == 0, outcome.stderr
    assert sum(json.loads(out.read_text())["counter"].values()) == 80
    (created,) = fake.created
    assert created["session"] == session and created["shots"] == 80
    assert isinstance(json.loads(created["sequence"]), dict)  # one level of encoding
    assert fake.uids and set(fake.uids) == {os.geteuid()}  # credentials of this process
    assert session in fake.sessions and fake.revoked == []  # the plugin's: left open
    assert session not in outcome.stderr  # the token is masked in logs


def test_without_a_token_the_run_opens_and_revokes_its_own_session(in_process, fake, payload):
    env = clean_env(**runner_env(QPU, fake.url), QRMI_JOB_UID="1234", QRMI_JOB_ID="77")
    in_process.use_env(env)
    outcome = in_process.run(QPU, payload)
    assert outcome.code == 0, outcome.stderr
    assert json.loads(outcome.stdout)["counter"]
    (session,) = fake.revoked
    assert fake.created[0]["session"] == session and fake.sessions == {}
    assert "opened warden session" in outcome.stderr


def test_legacy_url_variable_works_with_a_warning(in_process, fake, payload):
    env = clean_env(SLURM_JOB_QPU_RESOURCES=QPU, SLURM_JOB_QPU_TYPES="pasqal-local")
    env[f"{QPU}_QRMI_URL"] = fake.url
    in_process.use_env(env)
    outcome = in_process.run(QPU, payload)
    assert outcome.code == 0, outcome.stderr
    assert f"{QPU}_QRMI_URL is deprecated (as in qrmi); use {QPU}_QRMI_WARDEN_URL" in outcome.stderr


def test_failed_job_is_exit_1_and_its_logs_are_saved(in_process, fake, payload, tmp_path):
    fake.configure(fail_jobs=True)
    in_process.use_env(clean_env(**runner_env(QPU, fake.url, _open_session(fake))))
    logs = tmp_path / "job.log"
    outcome = in_process.run(QPU, payload, "--logs", logs)
    assert outcome.code == 1, outcome.stderr
    (line,) = outcome.errors()
    assert "ERROR" in line and "task 1 failed" in line
    assert "calibration drifted" in logs.read_text()


def test_refused_payload_is_exit_2_with_the_wardens_reason(in_process, fake, payload):
    fake.configure(faults=[{"method": "POST", "match": "/jobs", "status": 422}])
    in_process.use_env(clean_env(**runner_env(QPU, fake.url, _open_session(fake))))
    outcome = in_process.run(QPU, payload)
    assert outcome.code == 2, outcome.stderr
    (line,) = outcome.errors()
    assert "the warden refused the payload (HTTP 422)" in line and "invalid job" in line


def test_a_session_the_warden_does_not_know_is_an_authentication_error(in_process, fake, payload):
    in_process.use_env(clean_env(**runner_env(QPU, fake.url, "closed-session")))
    outcome = in_process.run(QPU, payload)
    assert outcome.code == 3, outcome.stderr
    (line,) = outcome.errors()
    assert "authentication failed" in line and f"{QPU}_QRMI_JOB_ACQUISITION_TOKEN" in line
    assert "closed-session" not in outcome.stderr  # a token, masked


def test_a_refused_credential_is_an_authentication_error(in_process, fake, payload):
    # a credential the warden cannot decode (another MUNGE key), as the fake answers it
    fake.configure(faults=[{"method": "POST", "match": "/jobs", "status": 401}])
    in_process.use_env(clean_env(**runner_env(QPU, fake.url, _open_session(fake))))
    outcome = in_process.run(QPU, payload)
    assert outcome.code == 3
    (line,) = outcome.errors()
    assert (
        "authentication failed" in line and "munged" in line and "Traceback" not in outcome.stderr
    )


def test_transient_failures_are_retried(in_process, fake, payload):
    fake.configure(
        faults=[
            {"method": "POST", "match": "/jobs", "status": 503},
            {"method": "GET", "match": r"/jobs/\d+", "status": 502, "times": 2},
            {"method": "GET", "match": r"/jobs/\d+", "drop": True},
        ]
    )
    in_process.use_env(clean_env(**runner_env(QPU, fake.url, _open_session(fake))))
    outcome = in_process.run(QPU, payload)
    assert outcome.code == 0, outcome.stderr
    assert len(fake.jobs) == 1  # the 503'd create was repeated once, not twice
    statuses = [r["status"] for r in fake.calls("GET", r"/jobs/\d+")]
    assert statuses[:3] == [502, 502, 0] and statuses[-1] == 200


def test_a_create_whose_answer_is_lost_is_not_repeated(in_process, fake, payload):
    fake.configure(faults=[{"method": "POST", "match": "/jobs", "status": 502, "after": True}])
    in_process.use_env(clean_env(**runner_env(QPU, fake.url, _open_session(fake))))
    outcome = in_process.run(QPU, payload)
    assert outcome.code == 3, outcome.stderr
    assert len(fake.jobs) == 1  # no duplicate nobody could find
    (line,) = outcome.errors()
    assert "cannot create the job: HTTP 502" in line


def test_without_munged_nothing_is_sent(in_process, fake, payload, monkeypatch):
    from qrmi_tasks.providers.pasqal import munge

    def no_daemon() -> str:
        raise munge.MungeError("munge_encode failed: Socket communication error")

    # the host's munged is what is missing here, not our client: the library call fails
    monkeypatch.setattr(munge, "credential", no_daemon)
    in_process.use_env(clean_env(**runner_env(QPU, fake.url, "s")))
    outcome = in_process.run(QPU, payload)
    assert outcome.code == 2
    (line,) = outcome.errors()
    assert "MUNGE" in line and "Socket communication error" in line
    assert fake.requests == []


def test_rerun_of_a_requeued_step_submits_again(in_process, fake, payload):
    """No reattach: the warden's jobs carry nothing of this run to find them by."""
    env = clean_env(
        **runner_env(QPU, fake.url, _open_session(fake)),
        SLURM_JOB_ID="4242",
        SLURM_STEP_ID="0",
        SLURM_PROCID="0",
    )
    in_process.use_env(env)
    for _ in range(2):
        outcome = in_process.run(QPU, payload)
        assert outcome.code == 0, outcome.stderr
        assert "attached" not in outcome.stderr
    assert len(fake.created) == 2


def test_sigterm_while_running_cancels_the_job(fake, payload, tmp_path):
    fake.configure(job_seconds=30, pending_seconds=0.3)
    env = clean_env(**runner_env(QPU, fake.url, _open_session(fake)))
    proc = start_runner(QPU, str(payload), env=env)
    wait_for(lambda: any(j["status"] == "RUNNING" for j in fake.jobs.values()), "RUNNING", proc)
    sent = time.time()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    (cancel,) = fake.calls("POST", r"/jobs/\d+/cancel")
    assert cancel["time"] - sent < 1.0
    assert [j["status"] for j in fake.jobs.values()] == ["CANCELED"]


def test_sigterm_while_a_late_create_answer_is_pending_cancels_the_job(fake, payload):
    fake.configure(job_seconds=30, create_delay=0.8)  # the job exists; its id comes late
    env = clean_env(**runner_env(QPU, fake.url, _open_session(fake)))
    proc = start_runner(QPU, str(payload), env=env)
    wait_for(lambda: fake.jobs, "the job's creation", proc)
    sent = time.time()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    (cancel,) = fake.calls("POST", r"/jobs/\d+/cancel")
    assert cancel["time"] - sent < 1.0, stderr
    assert [j["status"] for j in fake.jobs.values()] == ["CANCELED"]


def test_sigterm_while_a_create_answer_is_lost_says_the_job_cannot_be_found(fake, payload):
    fake.configure(
        job_seconds=30, faults=[{"method": "POST", "match": "/jobs", "hang": True, "after": True}]
    )
    env = clean_env(**runner_env(QPU, fake.url, _open_session(fake)))
    proc = start_runner(QPU, str(payload), env=env)
    wait_for(lambda: fake.jobs, "the job's creation", proc)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143 and time.monotonic() - sent < 5.0, stderr
    assert "cannot be found to be cancelled; look for it in GET /jobs" in stderr
    assert fake.calls("POST", r"/jobs/\d+/cancel") == []  # nothing of ours to cancel by
    assert "Traceback" not in stderr
