"""Qiskit Runtime Service provider: the real CLI and the real qiskit-ibm-runtime library
against the fake service (tests/fakes/qiskit_runtime.py) over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from fakes.qiskit_runtime import API_KEY, SERVICE_CRN, FakeQiskitRuntime, runner_env
from helpers import EXAMPLES, assert_clean_error, clean_env, run_runner, start_runner

pytestmark = pytest.mark.timeout(120)
BACKEND = "ibm_fake"
SAMPLER = EXAMPLES / "qiskit" / "bell_sampler.json"
ESTIMATOR = EXAMPLES / "qiskit" / "bell_estimator.json"
JOB = r"/api/v1/jobs/[^/]+"


def _decode(text: str):
    from qiskit.primitives import PrimitiveResult
    from qiskit_ibm_runtime import RuntimeDecoder

    result = json.loads(text, cls=RuntimeDecoder)
    assert isinstance(result, PrimitiveResult)
    return result


@pytest.fixture
def fake():
    server = FakeQiskitRuntime(backends=(BACKEND, "ibm_other"), job_seconds=0.4).start()
    yield server
    server.stop()


@pytest.fixture
def env(fake):
    # IAM_URL is what qiskit-ibm-runtime itself would use; the configured endpoint must win
    return clean_env(
        **runner_env(BACKEND, fake, TIMEOUT_SECONDS="420"), IAM_URL="http://127.0.0.1:9"
    )


def _payload(tmp_path, source, **changes):
    document = json.loads(source.read_text())
    document["parameters"].update(changes)
    path = tmp_path / f"payload-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(document))
    return path, document


def _only_job(fake):
    assert len(fake.created) == 1, fake.created
    return next(iter(fake.jobs.values()))


def test_sampler_end_to_end_bell_counts(fake, env, tmp_path):
    options = {
        "default_shots": 1000,
        "dynamical_decoupling": {"enable": True, "sequence_type": "XpXm"},
        "twirling": {"enable_gates": False, "enable_measure": True, "num_randomizations": 8},
        "execution": {"init_qubits": True, "meas_type": "classified"},
        "environment": {"log_level": "WARNING", "job_tags": ["user-tag"]},
        "simulator": {"seed_simulator": 42},
    }
    payload, document = _payload(tmp_path, SAMPLER, options=options, support_qiskit=True)
    out = tmp_path / "out.json"
    # fresh: the whole start-up of a runner on this resource type, imports included
    proc = run_runner(BACKEND, str(payload), "-o", str(out), env=env, fresh=True)
    assert proc.returncode == 0, proc.stderr

    counts = _decode(out.read_text())[0].data.meas.get_counts()
    assert set(counts) <= {"00", "11"} and sum(counts.values()) == 1000
    assert min(counts.values()) > 350  # both outcomes, about half each

    job = _only_job(fake)
    body = fake.created[0]
    # the parameters reach the service exactly as written: nothing re-encoded or dropped
    assert body["params"] == document["parameters"]
    assert body["program_id"] == "sampler" and body["backend"] == BACKEND
    assert body["cost"] == 420
    # the result file is the service's body, byte for byte
    assert out.read_bytes() == fake.results[job["id"]].encode()
    # IAM went to the configured endpoint; no instance lookup, no backend listing
    paths = {(r["method"], r["path"]) for r in fake.requests}
    assert ("POST", "/iam/identity/token") in paths
    allowed = {"/iam/identity/token", "/api/v1/jobs", f"/api/v1/jobs/{job['id']}"}
    allowed.add(f"/api/v1/jobs/{job['id']}/results")
    assert {p for _, p in paths} <= allowed, paths
    assert all(r["status"] < 400 for r in fake.requests)
    assert all(
        r["headers"].get("IBM-API-Version") for r in fake.requests if r["path"].startswith("/api/")
    )


def test_estimator_end_to_end_zz_is_one(fake, env, tmp_path):
    options = {
        "default_shots": 2000,
        "resilience_level": 2,
        "resilience": {"measure_mitigation": True, "zne_mitigation": True},
        "seed_estimator": 11,
    }
    payload, document = _payload(tmp_path, ESTIMATOR, options=options)
    proc = run_runner(BACKEND, str(payload), env=env)
    assert proc.returncode == 0, proc.stderr
    evs = _decode(proc.stdout)[0].data.evs
    assert np.allclose(evs, [1.0, 1.0, 0.0], atol=0.06)
    assert abs(evs[0] - 1.0) < 0.06  # <ZZ> on a Bell state
    _only_job(fake)
    assert fake.created[0]["params"] == document["parameters"]
    assert fake.created[0]["params"]["precision"] == 0.01
    assert fake.created[0]["cost"] == 420


def test_compute_service_alias_and_plain_json_results(fake, tmp_path):
    env = clean_env(
        **runner_env(BACKEND, fake, prefix="QRMI_IBM_QCS_", rtype="ibm-quantum-compute-service")
    )
    payload, document = _payload(tmp_path, ESTIMATOR, support_qiskit=False)
    proc = run_runner(BACKEND, str(payload), env=env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert "__type__" not in proc.stdout
    assert abs(result["results"][0]["data"]["evs"][0] - 1.0) < 0.06
    body = fake.created[0]
    assert body["params"] == document["parameters"] and "cost" not in body


def test_large_result_is_streamed_byte_for_byte(fake, env, tmp_path):
    # 3 MiB over several chunks, with non-ASCII text and no trailing newline
    text = json.dumps({"pad": "é" * (3 << 20), "n": [1.5, 2, None]}, ensure_ascii=False)
    fake.configure(fixed_result=text, job_seconds=0.2)
    out = tmp_path / "out.json"
    proc = run_runner(BACKEND, str(SAMPLER), "-o", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == text.encode()


def test_sigterm_while_running_cancels_within_half_a_second(fake, env, tmp_path):
    fake.configure(job_seconds=60, queue_seconds=0.2)
    out = tmp_path / "out.json"
    proc = start_runner(BACKEND, str(SAMPLER), "-o", str(out), env=env)
    deadline = time.monotonic() + 60
    while not any(j["status"] == "Running" for j in fake.jobs.values()):
        assert time.monotonic() < deadline and proc.poll() is None, "job never ran"
        time.sleep(0.05)
    time.sleep(0.5)  # let the runner settle into its poll wait
    sent = time.time()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    cancels = fake.calls("POST", JOB + "/cancel")
    assert len(cancels) == 1 and cancels[0]["status"] == 204
    assert cancels[0]["time"] - sent < 0.5
    assert [j["status"] for j in fake.jobs.values()] == ["Cancelled"]
    assert not out.exists()
    assert "Traceback" not in stderr


def test_job_error_is_exit_1_with_the_error_message(fake, env):
    fake.configure(fail_jobs=True, reason="Error in transpilation process.", reason_code=1517)
    proc = run_runner(BACKEND, str(SAMPLER), env=env)
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: task ") and " failed" in last
    assert "Error in transpilation process." in last and "1517" in last
    assert proc.stdout == "" and "Traceback (most recent" not in proc.stderr


def test_5xx_burst_while_polling_still_completes(fake, env):
    fake.configure(
        faults=[
            {"method": "GET", "path": "/api/v1/jobs/", "status": 502, "times": 1},
            {"method": "GET", "path": "/api/v1/jobs/", "status": 503, "times": 1},
            {"method": "GET", "path": "/api/v1/jobs/", "status": 500, "times": 1},
            {"method": "GET", "path": "/api/v1/jobs/", "delay": 0.5, "times": 1},
        ]
    )
    proc = run_runner(BACKEND, str(SAMPLER), env=env)
    assert proc.returncode == 0, proc.stderr
    assert sum(_decode(proc.stdout)[0].data.meas.get_counts().values()) == 1000
    assert [r["status"] for r in fake.calls("GET", JOB)][:3] == [502, 503, 500]
    assert len(fake.created) == 1


def test_429_on_create_is_retried_without_a_second_job(fake, env):
    # no Retry-After: the library gives up on a POST at once; the provider waits and retries
    fake.configure(faults=[{"method": "POST", "path": "/api/v1/jobs", "status": 429, "times": 2}])
    proc = run_runner(BACKEND, str(SAMPLER), env=env)
    assert proc.returncode == 0, proc.stderr
    assert [r["status"] for r in fake.calls("POST", "/api/v1/jobs")] == [429, 429, 200]
    assert len(fake.created) == 1 and "retrying" in proc.stderr


def test_iam_outage_is_retried(fake, env):
    fake.configure(faults=[{"method": "POST", "path": "/iam/", "status": 503, "times": 2}])
    proc = run_runner(BACKEND, str(SAMPLER), env=env)
    assert proc.returncode == 0, proc.stderr
    assert [r["status"] for r in fake.calls("POST", "/iam/identity/token")] == [503, 503, 200]
    assert len(fake.created) == 1
    # a failed token call never falls back to sending the API key to the API
    assert all(r["status"] != 401 for r in fake.requests)


def test_expired_token_is_renewed_once(fake, env):
    fake.configure(job_seconds=1.5)
    proc = start_runner(BACKEND, str(SAMPLER), env=env)
    deadline = time.monotonic() + 60
    while not fake.jobs:
        assert time.monotonic() < deadline and proc.poll() is None, "no job created"
        time.sleep(0.02)
    fake.configure(revoke_tokens=True)  # the service now answers 401 to the first token
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert sum(_decode(stdout)[0].data.meas.get_counts().values()) == 1000
    assert len(fake.calls("POST", "/iam/identity/token")) == 2
    assert any(r["status"] == 401 for r in fake.calls("GET", JOB))


def test_wrong_api_key_is_a_clean_authentication_error(fake):
    env = clean_env(**runner_env(BACKEND, fake, api_key="not-the-right-key-4711"))
    line = assert_clean_error(
        run_runner("-q", BACKEND, str(SAMPLER), env=env), "authentication failed", code=3
    )
    assert "BXNIM0415E" in line and f"{BACKEND}_QRMI_IBM_QRS_IAM_APIKEY" in line
    assert "not-the-right-key-4711" not in line
    # the key never went to the API (no 'Authorization: apikey ...' fallback)
    assert [r["path"] for r in fake.requests] == ["/iam/identity/token"]


def test_wrong_service_crn_is_an_authentication_error(fake):
    env = clean_env(**runner_env(BACKEND, fake))
    env[f"{BACKEND}_QRMI_IBM_QRS_SERVICE_CRN"] = SERVICE_CRN.replace("fakeinst", "other")
    line = assert_clean_error(
        run_runner("-q", BACKEND, str(SAMPLER), env=env), "authentication failed", code=3
    )
    assert "SERVICE_CRN" in line and not fake.jobs


@pytest.mark.parametrize("verbosity", [["-vv"], ["SRUN_DEBUG=5"]])
def test_debug_run_leaks_neither_api_key_nor_token(fake, env, tmp_path, verbosity):
    args = [v for v in verbosity if v.startswith("-")]
    if "SRUN_DEBUG=5" in verbosity:
        env = dict(env, SRUN_DEBUG="5")
    out = tmp_path / "out.json"
    proc = run_runner(*args, BACKEND, str(SAMPLER), "-o", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    assert " DEBUG " in proc.stderr and "/api/v1/jobs" in proc.stderr  # library logs shown
    assert fake.issued
    for secret in [API_KEY, *fake.issued]:
        assert secret not in proc.stderr
    # the library's records go through the runner's (masking) handler, not its own
    assert not re.search(r"^\w+\.\w+:(DEBUG|INFO|WARNING):", proc.stderr, re.M)
    assert re.search(r"DEBUG GET /jobs/\S+ answered \{", proc.stderr)  # our client's answers


def test_unknown_backend_is_a_config_error(fake, tmp_path):
    env = clean_env(**runner_env("ibm_nowhere", fake))
    line = assert_clean_error(run_runner("-q", "ibm_nowhere", str(SAMPLER), env=env), code=2)
    assert "Backend ibm_nowhere not found" in line


@pytest.mark.parametrize(
    "setting,value,fragment",
    [
        ("SESSION_MODE", "exclusive", "batch or dedicated"),
        ("ENDPOINT", "quantum.cloud.ibm.com/api/v1", "http(s) URL"),
        ("TIMEOUT_SECONDS", "-5", "positive integer"),
    ],
)
def test_bad_settings_fail_before_any_request(fake, setting, value, fragment):
    env = clean_env(**runner_env(BACKEND, fake, **{setting: value}))
    assert_clean_error(run_runner(BACKEND, str(SAMPLER), env=env), fragment)
    assert fake.requests == []


def test_batch_session_is_opened_used_and_closed(fake, env):
    env = dict(env, **{f"{BACKEND}_QRMI_IBM_QRS_SESSION_MODE": "batch"})
    proc = run_runner(BACKEND, str(SAMPLER), env=env)
    assert proc.returncode == 0, proc.stderr
    (session,) = fake.sessions.values()
    assert session["mode"] == "batch" and session["backend_name"] == BACKEND
    assert fake.created[0]["session_id"] == session["id"]
    assert session["accepting_jobs"] is False  # closed once the job was done


def test_given_session_id_is_joined_and_left_open(fake, env):
    fake.sessions["s-existing"] = {"id": "s-existing", "mode": "dedicated", "accepting_jobs": True}
    env = dict(env, **{f"{BACKEND}_QRMI_IBM_QRS_SESSION_ID": "s-existing"})
    proc = run_runner(BACKEND, str(SAMPLER), env=env)
    assert proc.returncode == 0, proc.stderr
    assert fake.created[0]["session_id"] == "s-existing"
    assert fake.sessions["s-existing"]["accepting_jobs"] is True
    assert not fake.calls("POST", "/api/v1/sessions")


def test_rerun_in_same_slurm_step_attaches(fake, env):
    fake.configure(job_seconds=3)
    env = dict(env, SLURM_JOB_ID="4242", SLURM_STEP_ID="0")
    proc = start_runner(BACKEND, str(SAMPLER), env=env, capture=False)
    deadline = time.monotonic() + 60
    while not fake.jobs:
        assert time.monotonic() < deadline, "no job created"
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    again = run_runner(BACKEND, str(SAMPLER), env=env)
    assert again.returncode == 0, again.stderr
    assert "attached to existing job" in again.stderr
    assert len(fake.calls("POST", "/api/v1/jobs")) == 1
    assert sum(_decode(again.stdout)[0].data.meas.get_counts().values()) == 1000


def test_rerun_adopts_and_closes_the_earlier_runs_session(fake, env):
    fake.configure(job_seconds=3)
    env = dict(
        env,
        SLURM_JOB_ID="4243",
        SLURM_STEP_ID="0",
        **{f"{BACKEND}_QRMI_IBM_QRS_SESSION_MODE": "batch"},
    )
    proc = start_runner(BACKEND, str(SAMPLER), env=env, capture=False)
    deadline = time.monotonic() + 60
    while not fake.jobs:
        assert time.monotonic() < deadline, "no job created"
        time.sleep(0.02)
    proc.kill()  # killed before it could close its session
    proc.wait()
    (session,) = fake.sessions.values()
    assert session["accepting_jobs"] is True
    again = run_runner(BACKEND, str(SAMPLER), env=env)
    assert again.returncode == 0, again.stderr
    assert len(fake.sessions) == 1 and len(fake.calls("POST", "/api/v1/jobs")) == 1
    assert session["accepting_jobs"] is False  # the rerun closed it


def test_a_run_never_imports_qiskit_ibm_runtime(fake, tmp_path):
    """Our REST client speaks to the service: the library (1.5 s, ~100 MiB) stays out."""
    code = (
        "import sys\n"
        "from qrmi_tasks.cli import command\n"
        "from qrmi_tasks.front import run_command\n"
        "code = run_command(command, 'qrmi-task-runner', sys.argv[1:])\n"  # main() minus exit
        "print('EXIT=' + str(code), 'LOADED=' + str('qiskit_ibm_runtime' in sys.modules),"
        " file=sys.stderr)\n"
    )
    fake.configure(fixed_result='{"results": []}', job_seconds=0.1)  # the import is the point
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, "-c", code, BACKEND, str(SAMPLER), "-o", str(out)],
        capture_output=True,
        text=True,
        env=clean_env(**runner_env(BACKEND, fake)),
        timeout=60,
    )
    assert "EXIT=0 LOADED=False" in proc.stderr, proc.stderr
    assert out.stat().st_size > 0 and len(fake.created) == 1
