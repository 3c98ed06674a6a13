"""The IBM fakes and providers against bodies taken from IBM's public sources.

``tests/conformance/ibm/`` records facts (field names, status values, shapes) from sources
nobody here wrote (qrmi's generated and hand-written IBM clients, IBM's Direct Access
simulator, IBM's API docs, qiskit-ibm-runtime; see its SOURCES.md). Here:

* every fake answer is checked against the recorded shape of that answer, so the fakes
  cannot drift into our own reading of the APIs;
* the providers read the recorded bodies as the sources say they mean;
* each scenario of the conformance issue runs through the real CLI against a fake that
  serves the recorded bodies.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import pytest
import requests
from fakes import conformance
from fakes.direct_access import API_KEY as DA_KEY
from fakes.direct_access import SERVICE_CRN as DA_CRN
from fakes.direct_access import FakeDirectAccess
from fakes.direct_access import runner_env as da_env
from fakes.qiskit_runtime import API_KEY as QRS_KEY
from fakes.qiskit_runtime import SERVICE_CRN as QRS_CRN
from fakes.qiskit_runtime import FakeQiskitRuntime
from fakes.qiskit_runtime import runner_env as qrs_env
from helpers import EXAMPLES, assert_clean_error, clean_env, run_runner, start_runner

from qrmi_tasks.providers.base import TaskStatus
from qrmi_tasks.providers.ibm import direct_access as da_provider
from qrmi_tasks.providers.ibm import qiskit_runtime as qrs_provider
from qrmi_tasks.retry import error_text

pytestmark = pytest.mark.timeout(180)

SAMPLER = EXAMPLES / "qiskit" / "bell_sampler.json"
DA_BACKEND = "fake_heron"
QRS_BACKEND = "ibm_fake"
GRANT = "urn:ibm:params:oauth:grant-type:apikey"


def _assert_conforms(answer: Any, name: str, status: int | None = None) -> None:
    """``answer`` has the shape conformance file ``name`` records (and its status)."""
    spec = conformance.fixture(name)
    if status is not None:
        assert status == spec["status"], (
            f"{name}: status {status}, the source says {spec['status']}"
        )
    found = conformance.problems(answer, spec)
    assert not found, f"{name} ({spec['_source']}): {found}; answer: {answer}"


# -- the recorded bodies themselves ---------------------------------------------------------


@pytest.mark.parametrize("name", conformance.names())
def test_each_conformance_file_names_its_source_and_fits_its_own_rules(name):
    spec = conformance.fixture(name)
    sources = spec["_source"] if isinstance(spec["_source"], list) else [spec["_source"]]
    assert sources and all(isinstance(s, str) and len(s) > 10 for s in sources)
    assert spec["required"], name  # a file without rules would check nothing
    assert conformance.problems(spec["body"], spec) == []


@pytest.mark.parametrize(
    "name", [n for n in conformance.names() if "expect_text" in conformance.fixture(n)]
)
def test_error_bodies_are_rendered_as_the_services_text(name):
    spec = conformance.fixture(name)
    text = error_text(spec["body"])
    assert spec["expect_text"] in text
    assert "{" not in text, text  # never a raw JSON object in an error line


@pytest.mark.parametrize(
    "name,status",
    [
        ("direct_access/job_completed", TaskStatus.COMPLETED),
        ("direct_access/job_failed", TaskStatus.FAILED),
    ],
)
def test_direct_access_job_states_map_as_the_source_says(name, status):
    job = conformance.body(name)
    assert da_provider._STATUS[job["status"].lower()] is status
    if status is TaskStatus.FAILED:
        message = da_provider._failure_message(job)
        assert str(job["reason_code"]) in message and job["reason_message"] in message


@pytest.mark.parametrize("name", ["qiskit_runtime/job_failed", "qiskit_runtime/job_ran_too_long"])
def test_qiskit_runtime_failures_carry_the_state_reason(name):
    spec = conformance.fixture(name)
    job = spec["body"]
    assert qrs_provider._STATUS[qrs_provider._api_status(job)] in (
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
    )
    assert spec["expect_reason"] in qrs_provider._reason(qrs_provider._state(job))


def test_session_messages_are_read_from_the_recorded_answer():
    answer = conformance.body("qiskit_runtime/session_create_response")
    assert qrs_provider._session_messages(answer) == answer["messages"]
    objects = {"messages": [{"data": "runs in job mode", "level": "warning"}]}
    assert qrs_provider._session_messages(objects) == ["runs in job mode"]


# -- the fakes answer in the recorded shapes -----------------------------------------------


@pytest.fixture
def da_fake():
    server = FakeDirectAccess((DA_BACKEND,), job_seconds=0.1).start()
    yield server
    server.stop()


def _token(url: str, key: str) -> requests.Response:
    return requests.post(
        url + "/identity/token", data={"grant_type": GRANT, "apikey": key}, timeout=10
    )


def test_direct_access_fake_answers_in_the_recorded_shapes(da_fake):
    url = da_fake.url
    token = _token(url, DA_KEY)
    _assert_conforms(token.json(), "iam/token", token.status_code)
    refused = _token(url, "not-a-key")
    _assert_conforms(refused.json(), "iam/error_apikey_not_found", refused.status_code)
    grant = requests.post(url + "/identity/token", data={"apikey": DA_KEY}, timeout=10)
    _assert_conforms(grant.json(), "iam/error_grant_type", grant.status_code)

    headers = {"Authorization": "Bearer " + token.json()["access_token"], "Service-CRN": DA_CRN}
    api = url + "/v1"
    backend = requests.get(f"{api}/backends/{DA_BACKEND}", headers=headers, timeout=10)
    _assert_conforms(backend.json(), "direct_access/backend", backend.status_code)
    missing = requests.get(f"{api}/backends/ibm_nowhere", headers=headers, timeout=10)
    _assert_conforms(missing.json(), "direct_access/error_backend_not_found", missing.status_code)

    # the recorded request body is accepted as it is (the job fails at once: its presigned
    # URLs point nowhere, and a failing job is what the next check needs)
    da_fake.configure(fail_jobs=True)
    request = conformance.body("direct_access/job_create_request")
    request["backend"] = DA_BACKEND
    created = requests.post(f"{api}/jobs", json=request, headers=headers, timeout=10)
    assert created.status_code == conformance.fixture("direct_access/job_create_request")["status"]
    assert created.content == b""
    again = requests.post(f"{api}/jobs", json=request, headers=headers, timeout=10)
    _assert_conforms(again.json(), "direct_access/error_duplicate_job", again.status_code)
    deadline = time.monotonic() + 10
    while da_fake.jobs[request["id"]]["status"] == "Running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    job = requests.get(f"{api}/jobs/{request['id']}", headers=headers, timeout=10)
    _assert_conforms(job.json(), "direct_access/job_failed", job.status_code)
    listed = requests.get(f"{api}/jobs", headers=headers, timeout=10)
    _assert_conforms(listed.json(), "direct_access/jobs_list", listed.status_code)
    unknown = requests.get(f"{api}/jobs/{uuid.uuid4()}", headers=headers, timeout=10)
    _assert_conforms(unknown.json(), "direct_access/error_job_not_found", unknown.status_code)
    stale = requests.get(
        f"{api}/jobs", headers={**headers, "Authorization": "Bearer expired"}, timeout=10
    )
    _assert_conforms(stale.json(), "direct_access/error_invalid_credentials", stale.status_code)

    da_fake.configure(
        faults=[
            {"method": "POST", "path": "/v1/jobs", "status": 423},
            {"method": "POST", "path": "/v1/jobs", "status": 429},
        ]
    )
    for name in ("error_backend_reserved", "error_lanes_limit"):
        answer = requests.post(f"{api}/jobs", json=request, headers=headers, timeout=10)
        _assert_conforms(answer.json(), f"direct_access/{name}", answer.status_code)

    # IBM's published simulator routes only DELETE at /v1/jobs/{id}: FastAPI answers 405
    da_fake.configure(disable_get_job=True)
    gone = requests.get(f"{api}/jobs/{request['id']}", headers=headers, timeout=10)
    assert gone.status_code == 405 and gone.json() == {"detail": "Method Not Allowed"}


def test_direct_access_fake_completed_job_has_the_recorded_shape(da_fake, s3_url, tmp_path):
    env = clean_env(**da_env(DA_BACKEND, da_fake.url, s3_url), SLURM_JOB_ID="91", SLURM_STEP_ID="0")
    jobs: list[dict[str, Any]] = []
    delete_job = da_fake.delete_job

    def recording_delete(job_id: str) -> tuple[int, Any]:
        jobs.append(da_fake.public_job(da_fake.jobs[job_id]))  # the job as GET served it
        return delete_job(job_id)

    da_fake.delete_job = recording_delete
    proc = run_runner(DA_BACKEND, str(SAMPLER), "-o", str(tmp_path / "out.json"), env=env)
    assert proc.returncode == 0, proc.stderr
    (job,) = jobs
    _assert_conforms(job, "direct_access/job_completed")
    _assert_conforms(
        {
            k: job[k]
            for k in ("id", "backend", "program_id", "timeout_secs", "storage", "log_level")
        },
        "direct_access/job_create_request",
    )


@pytest.fixture
def qrs_fake():
    server = FakeQiskitRuntime(backends=(QRS_BACKEND,), job_seconds=0.2).start()
    yield server
    server.stop()


def test_qiskit_runtime_fake_answers_in_the_recorded_shapes(qrs_fake):
    token = _token(qrs_fake.iam_url, QRS_KEY)
    _assert_conforms(token.json(), "iam/token", token.status_code)
    refused = _token(qrs_fake.iam_url, "not-a-key")
    _assert_conforms(refused.json(), "iam/error_apikey_not_found", refused.status_code)

    api = qrs_fake.api_url
    headers = {"Authorization": "Bearer " + token.json()["access_token"], "Service-CRN": QRS_CRN}
    qrs_fake.configure(fail_jobs=True)
    request = conformance.body("qiskit_runtime/job_create_request")
    _assert_conforms(request, "qiskit_runtime/job_create_request")
    request["backend"] = QRS_BACKEND
    created = requests.post(f"{api}/jobs", json=request, headers=headers, timeout=10)
    _assert_conforms(created.json(), "qiskit_runtime/job_create_response", created.status_code)
    job_id = created.json()["id"]
    listed = requests.get(f"{api}/jobs", params={"tags": request["tags"]}, headers=headers)
    _assert_conforms(listed.json(), "qiskit_runtime/jobs_list", listed.status_code)
    deadline = time.monotonic() + 10
    while qrs_fake.jobs[job_id]["status"] != "Failed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    job = requests.get(f"{api}/jobs/{job_id}", params={"exclude_params": "true"}, headers=headers)
    _assert_conforms(job.json(), "qiskit_runtime/job_failed", job.status_code)
    assert job.json()["tags"] == request["tags"]
    unknown = requests.get(f"{api}/jobs/nope", headers=headers, timeout=10)
    _assert_conforms(unknown.json(), "qiskit_runtime/error_job_not_found", unknown.status_code)

    qrs_fake.configure(
        session_messages=conformance.body("qiskit_runtime/session_create_response")["messages"]
    )
    session = requests.post(
        f"{api}/sessions", json={"backend": QRS_BACKEND, "mode": "dedicated"}, headers=headers
    )
    _assert_conforms(session.json(), "qiskit_runtime/session_create_response", session.status_code)


# -- the scenarios, through the CLI ---------------------------------------------------


def test_da_422_on_job_creation_is_exit_2_with_the_reason(da_fake, s3_url):
    da_fake.configure(reject_jobs="error_validation_422")
    env = clean_env(**da_env(DA_BACKEND, da_fake.url, s3_url))
    line = assert_clean_error(run_runner("-q", DA_BACKEND, str(SAMPLER), env=env), code=2)
    assert "422" in line and "timeout_secs: Input should be greater than or equal to 1" in line
    assert len(da_fake.calls("POST", "/v1/jobs")) == 1  # not retried


def test_da_detail_body_is_rendered_as_text(da_fake, s3_url):
    da_fake.configure(reject_jobs="error_detail_text")
    env = clean_env(**da_env(DA_BACKEND, da_fake.url, s3_url))
    line = assert_clean_error(run_runner("-q", DA_BACKEND, str(SAMPLER), env=env), code=2)
    assert "backend: ibm_nowhere is not available." in line
    assert "detail" not in line and "{" not in line


def test_da_refused_key_shows_iams_reason(da_fake, s3_url):
    env = clean_env(**da_env(DA_BACKEND, da_fake.url, s3_url))
    env[f"{DA_BACKEND}_QRMI_IBM_DA_IAM_APIKEY"] = "wrong-key-0000"
    line = assert_clean_error(run_runner("-q", DA_BACKEND, str(SAMPLER), env=env), code=3)
    assert "BXNIM0415E: Provided API key could not be found." in line
    assert "wrong-key-0000" not in line


def test_da_reattach_logs_attached_to_existing_job(da_fake, s3_url, tmp_path):
    da_fake.configure(job_seconds=3)
    env = clean_env(
        **da_env(DA_BACKEND, da_fake.url, s3_url), SLURM_JOB_ID="4711", SLURM_STEP_ID="0"
    )
    first = start_runner(DA_BACKEND, str(SAMPLER), env=env, capture=False)
    deadline = time.monotonic() + 30
    while not da_fake.jobs:
        assert time.monotonic() < deadline, "no job created"
        time.sleep(0.02)
    first.kill()
    first.wait()
    (job_id,) = da_fake.jobs
    again = run_runner(DA_BACKEND, str(SAMPLER), "-o", str(tmp_path / "out.json"), env=env)
    assert again.returncode == 0, again.stderr
    assert f"job {job_id} already exists on {DA_BACKEND}" in again.stderr, again.stderr
    assert f"task {job_id}: submitted" not in again.stderr  # the runner says attached too
    assert f"task {job_id}: attached to existing job" in again.stderr
    assert len(da_fake.calls("POST", "/v1/jobs")) == 1


def test_qrs_job_without_our_tag_is_not_attached_to(qrs_fake):
    # someone else's live job on the backend, and a server whose tag filter returns it
    foreign = {
        "id": "dforeign0000000000000",
        "backend": QRS_BACKEND,
        "status": "Running",
        "program": {"id": "sampler"},
        "created": "2026-01-05T10:00:00.000000Z",
        "cost": 600,
        "session_id": None,
        "tags": ["qrmi-someone-else"],
        "params": {},
    }
    qrs_fake.jobs[foreign["id"]] = foreign
    qrs_fake.configure(ignore_tag_filter=True)
    env = clean_env(**qrs_env(QRS_BACKEND, qrs_fake), SLURM_JOB_ID="5150", SLURM_STEP_ID="0")
    proc = run_runner(QRS_BACKEND, str(SAMPLER), env=env)
    assert proc.returncode == 0, proc.stderr
    assert len(qrs_fake.created) == 1  # our own job was submitted
    assert qrs_fake.created[0]["tags"] != foreign["tags"]
    assert foreign["id"] not in proc.stderr and "attached" not in proc.stderr
    assert foreign["status"] == "Running"  # and never touched
    assert json.loads(proc.stdout)  # the result is our job's


def test_qrs_sigterm_in_flight_never_cancels_a_job_without_our_tag(qrs_fake):
    qrs_fake.jobs["dforeign0000000000001"] = {
        "id": "dforeign0000000000001",
        "backend": QRS_BACKEND,
        "status": "Queued",
        "program": {"id": "sampler"},
        "created": "2026-01-05T10:00:00.000000Z",
        "cost": 600,
        "session_id": None,
        "tags": ["qrmi-someone-else"],
        "params": {},
    }
    qrs_fake.configure(
        ignore_tag_filter=True,
        faults=[{"method": "POST", "path": "/api/v1/jobs", "hang": True}],
    )
    env = clean_env(**qrs_env(QRS_BACKEND, qrs_fake), SLURM_JOB_ID="5151", SLURM_STEP_ID="0")
    proc = start_runner(QRS_BACKEND, str(SAMPLER), env=env)
    deadline = time.monotonic() + 30
    while not qrs_fake.calls("POST", "/api/v1/jobs"):
        assert time.monotonic() < deadline and proc.poll() is None, "the job was never posted"
        time.sleep(0.02)
    proc.terminate()
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    assert qrs_fake.jobs["dforeign0000000000001"]["status"] == "Queued", stderr
    assert not qrs_fake.calls("POST", r"/api/v1/jobs/dforeign0000000000001/cancel")


@pytest.mark.parametrize(
    "reason,expected",
    [
        ("Error in transpilation process.", "reason_code 1517: Error in transpilation process."),
        ("", "the service gave no reason"),
    ],
)
def test_qrs_failed_job_with_results_404_is_exit_1_with_the_reason(qrs_fake, reason, expected):
    qrs_fake.configure(fail_jobs=True, reason=reason, reason_code=1517, failed_results_status=404)
    env = clean_env(**qrs_env(QRS_BACKEND, qrs_fake))
    proc = run_runner(QRS_BACKEND, str(SAMPLER), env=env)
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: task ") and " failed" in last and expected in last, last
    assert "Traceback" not in proc.stderr
    results = qrs_fake.calls("GET", r"/api/v1/jobs/[^/]+/results")
    # with a reason in the job's state the results are not even asked for
    assert bool(results) == (not reason) and all(r["status"] == 404 for r in results)


def test_qrs_session_messages_are_logged_as_warnings(qrs_fake):
    messages = conformance.body("qiskit_runtime/session_create_response")["messages"]
    qrs_fake.configure(session_messages=messages, session_mode="batch")
    env = clean_env(**qrs_env(QRS_BACKEND, qrs_fake, SESSION_MODE="dedicated"))
    proc = run_runner(QRS_BACKEND, str(SAMPLER), env=env)
    assert proc.returncode == 0, proc.stderr
    (session,) = qrs_fake.sessions.values()
    for message in messages:
        assert re.search(
            rf" WARNING session {session['id']}: {re.escape(message)}$", proc.stderr, re.M
        )
    assert re.search(r" WARNING session \S+ runs in batch mode, not dedicated$", proc.stderr, re.M)
