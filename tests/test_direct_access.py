"""Direct Access provider, end to end through the real CLI against the fake DA + moto S3."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from fakes.direct_access import API_KEY, AWS_SECRET, FakeDirectAccess, runner_env
from helpers import (
    EXAMPLES,
    ConnectionCounter,
    assert_clean_error,
    clean_env,
    run_runner,
    start_runner,
)

pytestmark = pytest.mark.timeout(300)

BACKEND = "fake_heron"
BELL = EXAMPLES / "qiskit" / "bell_sampler.json"
BELL_EST = EXAMPLES / "qiskit" / "bell_estimator.json"


@pytest.fixture
def fake():
    server = FakeDirectAccess((BACKEND,), job_seconds=0.5).start()
    yield server
    server.stop()


@pytest.fixture
def env(fake, s3_url):
    return clean_env(**runner_env(BACKEND, fake.url, s3_url))


def _decode(text: str):
    from qiskit_ibm_runtime import RuntimeDecoder

    return json.loads(text, cls=RuntimeDecoder)


def _created(fake: FakeDirectAccess) -> int:
    return len(fake.calls("POST", "/v1/jobs")) and len(
        [r for r in fake.calls("POST", "/v1/jobs") if r["status"] == 204]
    )


def test_sampler_end_to_end(fake, env, tmp_path):
    out = tmp_path / "out.json"
    # fresh: the whole start-up of a runner on this resource type, imports included
    proc = run_runner(BACKEND, str(BELL), "-o", str(out), env=env, fresh=True)
    assert proc.returncode == 0, proc.stderr
    counts = _decode(out.read_text())[0].data.meas.get_counts()
    assert set(counts) == {"00", "11"} and sum(counts.values()) == 1000
    assert len(fake.calls("POST", "/v1/jobs")) == 1
    assert len(fake.calls("DELETE", r"/v1/jobs/[^/]+")) == 1
    assert fake.jobs == {} and len(fake.deleted) == 1
    assert "quantum time" in proc.stderr


def test_estimator_end_to_end_to_stdout(fake, env):
    proc = run_runner(BACKEND, str(BELL_EST), env=env)
    assert proc.returncode == 0, proc.stderr
    evs = _decode(proc.stdout)[0].data.evs
    assert np.allclose(evs, [1.0, 1.0, 0.0], atol=0.06)
    assert len(fake.calls("POST", "/v1/jobs")) == 1
    assert len(fake.calls("DELETE", r"/v1/jobs/[^/]+")) == 1


def test_newer_type_name_and_prefix(fake, s3_url):
    env = clean_env(
        **runner_env(
            BACKEND, fake.url, s3_url, prefix="QRMI_IBM_QS_", resource_type="ibm-quantum-system"
        )
    )
    proc = run_runner(BACKEND, str(BELL), env=env)
    assert proc.returncode == 0, proc.stderr
    assert len(fake.deleted) == 1


def test_fault_mix_completes_with_one_submission(fake, env, tmp_path):
    fake.configure(
        job_seconds=2.0,
        faults=[
            {"method": "POST", "path": "/v1/jobs", "status": 429, "retry_after": 1},
            {"method": "POST", "path": "/v1/jobs", "status": 423, "retry_after": 0.5},
            {"method": "POST", "path": "/v1/jobs", "drop": True},
            {"method": "GET", "path": "/v1/jobs/", "status": 500},
            {"method": "GET", "path": "/v1/jobs/", "status": 502},
            {"method": "GET", "path": "/v1/jobs/", "drop": True},
            {"method": "GET", "path": "/v1/jobs/", "delay": 1.0},
        ],
    )
    out = tmp_path / "out.json"
    proc = start_runner(BACKEND, str(BELL), "-o", str(out), env=env)
    deadline = time.monotonic() + 30
    while not fake.jobs and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.jobs, "job never created"
    fake.configure(revoke_tokens=True)  # the token expires while the job runs
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    counts = _decode(out.read_text())[0].data.meas.get_counts()
    assert set(counts) == {"00", "11"} and sum(counts.values()) == 1000
    assert (
        len(
            [
                r
                for r in fake.requests
                if r["path"] == "/v1/jobs" and r["method"] == "POST" and r["status"] == 204
            ]
        )
        == 1
    )
    assert len(fake.deleted) == 1
    assert any(r["status"] == 401 for r in fake.requests)  # the expired token was refused
    assert "retrying in" in stderr and "429" in stderr and "423" in stderr


def test_sigterm_cancels_then_deletes(fake, env, tmp_path):
    fake.configure(job_seconds=60)
    out = tmp_path / "out.json"
    proc = start_runner(BACKEND, str(BELL), "-o", str(out), env=env)
    deadline = time.monotonic() + 30
    while not fake.calls("GET", r"/v1/jobs(/[^/]+)?") or not fake.jobs:
        assert time.monotonic() < deadline, "job never polled"
        time.sleep(0.02)
    time.sleep(0.3)
    sent = time.time()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    cancel = fake.calls("POST", r"/v1/jobs/[^/]+/cancel")
    delete = fake.calls("DELETE", r"/v1/jobs/[^/]+")
    assert len(cancel) == 1 and len(delete) == 1
    assert cancel[0]["time"] <= delete[0]["time"]
    assert delete[0]["time"] - sent < 0.5, f"DELETE {delete[0]['time'] - sent:.3f}s after SIGTERM"
    assert not out.exists()
    assert fake.deleted and not fake.jobs


def test_failed_job_exit_1_with_reason(fake, env, tmp_path):
    fake.configure(fail_jobs=True)
    out = tmp_path / "out.json"
    proc = run_runner(BACKEND, str(BELL), "-o", str(out), env=env)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: task ") and "failed" in last
    for part in ("1517", "Error in transpilation process", "ISA circuits"):
        assert part in last
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert len(fake.deleted) == 1  # a finished job is cleaned up either way


def test_sigkill_then_rerun_reattaches(fake, env, tmp_path):
    fake.configure(job_seconds=3)
    env = dict(env, SLURM_JOB_ID="4242", SLURM_STEP_ID="0")
    out = tmp_path / "out.json"
    proc = start_runner(BACKEND, str(BELL), "-o", str(out), env=env, capture=False)
    deadline = time.monotonic() + 30
    while not fake.jobs:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    job_id = next(iter(fake.jobs))
    again = run_runner(BACKEND, str(BELL), "-o", str(out), env=env)
    assert again.returncode == 0, again.stderr
    assert "attached to existing job" in again.stderr and job_id in again.stderr
    posts = fake.calls("POST", "/v1/jobs")
    assert len(posts) == 1, posts
    assert fake.deleted == [job_id]
    assert sum(_decode(out.read_text())[0].data.meas.get_counts().values()) == 1000


def test_rerun_after_completion_fetches_without_resubmitting(fake, env, tmp_path):
    env = dict(env, SLURM_JOB_ID="77", SLURM_STEP_ID="3")
    fake.configure(job_seconds=0.2)
    # first run killed right after submission; the job completes meanwhile
    proc = start_runner(BACKEND, str(BELL), env=env, capture=False)
    while not fake.jobs:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    while next(iter(fake.jobs.values()))["status"] != "Completed":
        time.sleep(0.05)
    again = run_runner(BACKEND, str(BELL), env=env)
    assert again.returncode == 0, again.stderr
    assert len(fake.calls("POST", "/v1/jobs")) == 1
    assert sum(_decode(again.stdout)[0].data.meas.get_counts().values()) == 1000


def test_get_job_route_missing_falls_back_to_list(fake, env):
    fake.configure(disable_get_job=True)
    proc = run_runner(BACKEND, str(BELL), env=env)
    assert proc.returncode == 0, proc.stderr
    assert len(fake.calls("GET", "/v1/jobs")) >= 1
    assert len(fake.deleted) == 1


def test_wrong_api_key_is_one_line_exit_3_without_storm(fake, env):
    env = dict(env, **{f"{BACKEND}_QRMI_IBM_DA_IAM_APIKEY": "wrong-key-123456"})
    proc = run_runner(BACKEND, str(BELL), env=env)
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "authentication failed" in lines[-1]
    assert "Traceback" not in proc.stderr
    assert len(fake.calls("POST", "/identity/token")) == 1
    assert not fake.calls("POST", "/v1/jobs")


def test_debug_logs_hold_no_secret(fake, env, tmp_path):
    # the job body carries the presigned URLs; botocore prints their signatures at -vv
    bodies = []
    create_job = fake.create_job

    def recording_create_job(body):
        bodies.append(json.loads(json.dumps(body)))
        return create_job(body)

    fake.create_job = recording_create_job
    proc = run_runner(
        "-vv",
        BACKEND,
        str(BELL),
        "-o",
        str(tmp_path / "o.json"),
        "--logs",
        str(tmp_path / "logs.json"),
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert " DEBUG " in proc.stderr and "X-Amz-Signature=***" in proc.stderr  # URLs logged
    tokens = [t for t in fake.valid_tokens]
    assert tokens
    for secret in (API_KEY, AWS_SECRET, *tokens):
        assert secret not in proc.stderr
    assert not re.search(r"X-Amz-Signature=[0-9a-f]{8}", proc.stderr)
    assert not re.search(r"Bearer [A-Za-z0-9_.-]{12}", proc.stderr)
    signatures = [
        re.search(r"X-Amz-Signature=([0-9a-f]+)", part["presigned_url"]).group(1)
        for body in bodies
        for part in body["storage"].values()
    ]
    assert len(signatures) == 3  # input, results, logs
    for signature in signatures:
        assert signature not in proc.stderr
    assert "Signature:\n***" in proc.stderr  # botocore's signing lines, masked
    assert not re.search(r"Signature[:=]\s*[0-9a-f]{16}", proc.stderr)
    assert json.loads((tmp_path / "logs.json").read_text())["logs"]


def test_unreachable_endpoint_is_exit_3(s3_url):
    counter = ConnectionCounter()
    counter.close()  # nothing listens there any more: connection refused
    env = clean_env(**runner_env(BACKEND, counter.url, s3_url))
    start = time.monotonic()
    proc = run_runner(BACKEND, str(BELL), env=env, timeout=200)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert time.monotonic() - start < 120


def test_missing_variables_listed_and_no_network(tmp_path):
    counter = ConnectionCounter()
    try:
        env = clean_env(
            SLURM_JOB_QPU_RESOURCES="ibm_x",
            SLURM_JOB_QPU_TYPES="direct-access",
            ibm_x_QRMI_IBM_DA_ENDPOINT=counter.url,
        )
        line = assert_clean_error(run_runner("ibm_x", str(BELL), env=env))
        for var in (
            "IAM_ENDPOINT",
            "IAM_APIKEY",
            "SERVICE_CRN",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "S3_ENDPOINT",
            "S3_BUCKET",
            "S3_REGION",
        ):
            assert f"ibm_x_QRMI_IBM_DA_{var}" in line
        assert "ibm_x_QRMI_JOB_TIMEOUT_SECONDS" in line
        assert "ibm_x_QRMI_IBM_DA_ENDPOINT," not in line
        # a complete configuration with bad payloads: rejected locally, nothing sent
        full = clean_env(**runner_env("ibm_x", counter.url, counter.url))
        pulser = tmp_path / "pulser.json"
        from payloads import write_pulser_payload

        write_pulser_payload(pulser, runs=10)
        assert_clean_error(run_runner("ibm_x", str(pulser), env=full), "pulser payload")
        bad = tmp_path / "bad.json"
        bad.write_text('{"program_id": "sampler", "parameters": {"pubs": []}}')
        assert_clean_error(run_runner("ibm_x", str(bad), env=full), "non-empty")
        assert counter.count == 0
    finally:
        counter.close()


def test_provider_import_is_light():
    code = (
        "import sys, qrmi_tasks.providers.ibm.direct_access\n"
        "print([m for m in ('qiskit', 'pulser', 'pasqal_cloud', 'qiskit_ibm_runtime')"
        " if m in sys.modules])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), timeout=60
    )
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr
