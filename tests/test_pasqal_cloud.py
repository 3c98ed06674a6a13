"""Pasqal Cloud provider through the real pasqal-cloud SDK against the fake Pasqal Cloud."""

from __future__ import annotations

import json
import signal
import time

import pytest
from fakes.pasqal_cloud import PROJECT_ID, FakePasqalCloud, conformance, runner_env
from helpers import assert_clean_error, clean_env, run_runner, start_runner
from payloads import write_pulser_payload

pytestmark = pytest.mark.timeout(300)
DEVICE = "EMU_FREE"


@pytest.fixture
def fake():
    server = FakePasqalCloud(job_seconds=0.4).start()
    yield server
    server.stop()


@pytest.fixture
def env(fake):
    return clean_env(**runner_env(DEVICE, fake.core_url))


@pytest.fixture(scope="module")
def payloads(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pulser")
    return {
        "object": write_pulser_payload(tmp / "obj.json", runs=120),
        "string": write_pulser_payload(tmp / "str.json", runs=120, as_string=True),
    }


def test_end_to_end_counts_sum_to_job_runs(fake, env, payloads, tmp_path):
    out = tmp_path / "out.json"
    # fresh: a new interpreter imports pasqal-cloud and Pulser, and their warnings must stay quiet
    proc = run_runner(DEVICE, str(payloads["object"]), "-o", str(out), env=env, fresh=True)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert sum(result["counter"].values()) == 120
    assert len(result["raw"]) == 120
    assert len(fake.calls("POST", "/core/api/v1/batches")) == 1
    assert fake.created[0]["jobs"] == [{"runs": 120}] and fake.created[0]["open"] is False
    assert "Deprecation" not in proc.stderr and "Warning" not in proc.stderr


def test_object_and_string_sequence_submit_the_same_string(fake, env, payloads):
    for kind in ("object", "string"):
        proc = run_runner(DEVICE, str(payloads[kind]), env=env)
        assert proc.returncode == 0, proc.stderr
    first, second = (body["sequence_builder"] for body in fake.created)
    assert first == second
    assert isinstance(json.loads(first), dict)  # one level of encoding, not two


def test_sigterm_while_running_cancels_promptly(fake, env, payloads, tmp_path):
    fake.configure(job_seconds=12, pending_seconds=0.5)  # RUNNING from 0.5 s to 12 s
    out = tmp_path / "out.json"
    proc = start_runner(DEVICE, str(payloads["object"]), "-o", str(out), env=env)
    deadline = time.monotonic() + 60
    while not any(b["status"] == "RUNNING" for b in fake.batches.values()):
        assert time.monotonic() < deadline, "batch never ran"
        time.sleep(0.05)
    time.sleep(0.5)
    sent = time.time()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    cancels = fake.calls("PATCH", r"/core/api/v2/batches/[^/]+/cancel")
    assert len(cancels) == 1 and cancels[0]["time"] - sent < 0.5
    assert [b["status"] for b in fake.batches.values()] == ["CANCELED"]
    assert not out.exists()


def test_done_batch_with_error_job_is_exit_1_with_the_jobs_errors(fake, env, payloads):
    # Pasqal's lifecycle (conformance/pasqal/statuses.json): the batch ends DONE once its
    # job is terminal, even when the job ended ERROR
    fake.configure(fail_jobs=True, job_errors=["Device calibration failed.", "QPU unreachable"])
    proc = run_runner(DEVICE, str(payloads["object"]), env=env)
    assert proc.returncode == 1, proc.stderr
    [batch] = fake.batches.values()
    assert batch["status"] == "DONE"
    assert [fake.jobs[j]["status"] for j in batch["job_ids"]] == ["ERROR"]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: task {batch['id']} failed: batch DONE, job ")
    assert "Device calibration failed.; QPU unreachable" in last
    assert "lost contact" not in proc.stderr


def test_paused_batch_keeps_waiting(fake, env, payloads):
    fake.configure(detours=[("PAUSED", 2.0)])
    proc = run_runner(DEVICE, str(payloads["object"]), env=env)
    assert proc.returncode == 0, proc.stderr
    [batch_id] = fake.batches
    assert f"batch {batch_id}: PAUSED by the service; waiting (counted as queued)" in proc.stderr
    assert sum(json.loads(proc.stdout)["counter"].values()) == 120


def test_unknown_status_is_a_warning_and_polled_again(fake, env, payloads):
    fake.configure(detours=[("QUARANTINED", 2.0)])
    proc = run_runner(DEVICE, str(payloads["object"]), env=env)
    assert proc.returncode == 0, proc.stderr
    [warning] = [line for line in proc.stderr.splitlines() if "QUARANTINED" in line]
    assert " WARNING " in warning and "unknown to this runner; polling again" in warning
    polls = [r["time"] for r in fake.calls("GET", r"/core/api/v2/batches/[^/]+")]
    assert len(polls) >= 3  # it kept polling through the unknown status
    assert sum(json.loads(proc.stdout)["counter"].values()) == 120


def test_canceling_then_canceled_is_cancelled(fake, env, payloads):
    # someone cancels the batch in the portal; the service shows CANCELING for a while
    fake.configure(job_seconds=12, pending_seconds=0.5, cancel_seconds=2.0)  # RUNNING at 0.5 s
    proc = start_runner(DEVICE, str(payloads["object"]), env=env)
    deadline = time.monotonic() + 60
    while not any(b["status"] == "RUNNING" for b in fake.batches.values()):
        assert time.monotonic() < deadline and proc.poll() is None, "batch never ran"
        time.sleep(0.05)
    [batch_id] = fake.batches
    fake.cancel(batch_id)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr
    assert f"batch {batch_id}: CANCELING on the service; waiting for CANCELED" in stderr
    assert stderr.strip().splitlines()[-1].startswith(f"error: task {batch_id} cancelled")
    assert fake.calls("PATCH", r"/core/api/v2/batches/[^/]+/cancel") == []


def _foreign_batch(fake: FakePasqalCloud) -> str:
    """Someone else's live batch in the same project (it stays PENDING for half a minute)."""
    fake.configure(job_seconds=60)
    status, view = fake.create_batch(
        {
            "sequence_builder": "{}",
            "jobs": [{"runs": 100}],
            "project_id": PROJECT_ID,
            "tags": ["someone-else"],
        }
    )
    assert status == 200
    fake.configure(job_seconds=0.4)
    return view["id"]


def test_listed_batch_without_our_tag_is_neither_attached_nor_cancelled(fake, env, payloads):
    # a server whose tag filter does not work lists every batch of the project
    fake.configure(ignore_tag_filter=True)
    foreign = _foreign_batch(fake)
    env = dict(env, SLURM_JOB_ID="992", SLURM_STEP_ID="0")  # reruns would attach
    proc = run_runner(DEVICE, str(payloads["object"]), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "attaching" not in proc.stderr and "duplicate" not in proc.stderr
    assert f"ignoring batch {foreign}: listed for tag qrmi:" in proc.stderr
    assert len(fake.calls("POST", "/core/api/v1/batches")) == 1
    assert fake.batches[foreign]["status"] == "PENDING"
    assert [r["path"] for r in fake.calls("PATCH", r".*/cancel")] == []


def test_signal_during_create_cancels_only_our_batch(fake, env, payloads):
    # cancel_submission: the create's answer never comes; the runner lists by tag
    fake.configure(ignore_tag_filter=True)
    foreign = _foreign_batch(fake)
    fake.configure(
        job_seconds=60,
        faults=[{"method": "POST", "path": "/core/api/v1/batches", "hang": True, "after": True}],
    )
    proc = start_runner(DEVICE, str(payloads["object"]), env=env)
    deadline = time.monotonic() + 60
    while len(fake.batches) < 2:
        assert time.monotonic() < deadline and proc.poll() is None, "create never arrived"
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    [ours] = [i for i in fake.batches if i != foreign]
    assert fake.batches[ours]["status"] == "CANCELED", stderr
    assert fake.batches[foreign]["status"] == "PENDING", stderr
    cancels = [r["path"] for r in fake.calls("PATCH", r".*/cancel")]
    assert cancels == [f"/core/api/v2/batches/{ours}/cancel"], stderr


def test_create_refused_422_is_exit_2_with_the_reason(fake, env, payloads):
    fake.configure(faults=[{"method": "POST", "path": "/core/api/v1/batches", "status": 422}])
    proc = run_runner(DEVICE, str(payloads["object"]), env=env)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    line = proc.stderr.strip().splitlines()[-1]
    reason = conformance("create_batch_422")["example"]["data"]["description"][0]["msg"]
    assert line.startswith("error: Pasqal Cloud refused the payload (HTTP 422)")
    assert f"jobs: {reason}" in line
    assert len(fake.calls("POST", "/core/api/v1/batches")) == 1  # not retried


def test_failed_duplicate_check_names_and_cancels_the_batch(fake, env, payloads):
    fake.configure(
        faults=[{"method": "GET", "match": "/core/api/v1/batches", "status": 400}],
    )
    proc = run_runner(DEVICE, str(payloads["object"]), env=env)
    assert proc.returncode == 3, proc.stderr
    [batch_id] = fake.batches
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: Pasqal Cloud: batch {batch_id} was created but the check")
    assert last.endswith("it was cancelled")
    assert fake.batches[batch_id]["status"] == "CANCELED"


def test_wrong_token_is_an_authentication_error(fake, payloads):
    env = clean_env(**runner_env(DEVICE, fake.core_url, token="not-the-token"))
    proc = run_runner(DEVICE, str(payloads["object"]), env=env)
    assert proc.returncode == 3
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error: authentication failed") and "Traceback" not in proc.stderr
    assert "not-the-token" not in proc.stderr


@pytest.mark.parametrize("case", ["unknown device", "bad sequence", "job_runs 0"])
def test_local_rejections_make_no_request(fake, payloads, tmp_path, case):
    device = "FRESNEL_XL" if case == "unknown device" else DEVICE
    env = clean_env(**runner_env(device, fake.core_url))
    payload = json.loads(payloads["object"].read_text())
    if case == "bad sequence":
        payload["sequence"]["register"] = "not a register"
    if case == "job_runs 0":
        payload["job_runs"] = 0
    path = tmp_path / "p.json"
    path.write_text(json.dumps(payload))
    line = assert_clean_error(run_runner(device, str(path), env=env))
    expected = {
        "unknown device": "EMU_MPS",
        "bad sequence": "Pulser sequence",
        "job_runs 0": "job_runs",
    }[case]
    assert expected in line
    assert fake.requests == []


def test_device_names_match_the_sdk():
    from pasqal_cloud.device import DeviceTypeName

    from qrmi_tasks.providers.pasqal.cloud import DEVICE_TYPES

    assert sorted(DEVICE_TYPES) == sorted(d.value for d in DeviceTypeName)


def test_qiskit_payload_for_pasqal_is_rejected(fake, env):
    from helpers import EXAMPLES

    line = assert_clean_error(
        run_runner(DEVICE, str(EXAMPLES / "qiskit" / "bell_sampler.json"), env=env)
    )
    assert "pulser payloads" in line and fake.requests == []


def test_create_retried_after_lost_answer_leaves_one_batch(fake, env, payloads, tmp_path):
    # the first POST creates a batch but its answer is lost: the SDK posts again; the
    # first batch still runs when the runner checks for duplicates (job_seconds)
    fake.configure(
        job_seconds=3,
        faults=[{"method": "POST", "path": "/core/api/v1/batches", "status": 502, "after": True}],
    )
    out = tmp_path / "out.json"
    proc = run_runner(DEVICE, str(payloads["object"]), "-o", str(out), env=env, timeout=200)
    assert proc.returncode == 0, proc.stderr
    statuses = sorted(b["status"] for b in fake.batches.values())
    assert statuses == ["CANCELED", "DONE"], statuses
    assert "duplicate batch" in proc.stderr
    assert sum(json.loads(out.read_text())["counter"].values()) == 120


def test_rerun_in_same_slurm_step_attaches(fake, env, payloads, tmp_path):
    fake.configure(job_seconds=4)
    env = dict(env, SLURM_JOB_ID="991", SLURM_STEP_ID="0")
    proc = start_runner(DEVICE, str(payloads["object"]), env=env, capture=False)
    while not fake.batches:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    again = run_runner(DEVICE, str(payloads["object"]), env=env)
    assert again.returncode == 0, again.stderr
    assert "attached to existing job" in again.stderr
    assert len(fake.calls("POST", "/core/api/v1/batches")) == 1
    assert sum(json.loads(again.stdout)["counter"].values()) == 120


def test_create_whose_answer_is_lost_uses_the_batch_it_made(fake, env, payloads):
    # the create takes effect but answers 503 (the SDK does not retry 503 on a POST):
    # the batch is found by its tag and used, not left running unattended
    fake.configure(
        faults=[{"method": "POST", "path": "/core/api/v1/batches", "status": 503, "after": True}]
    )
    proc = run_runner(DEVICE, str(payloads["object"]), env=env)
    assert proc.returncode == 0, proc.stderr
    [batch_id] = fake.batches
    assert f"but batch {batch_id} carries our tag" in proc.stderr
    assert fake.batches[batch_id]["status"] == "DONE"
    assert sum(json.loads(proc.stdout)["counter"].values()) == 120
