"""The runner refuses circuits the backend cannot run (not ISA, too many qubits) before it
submits them, against the fakes' backend documents (qiskit-ibm-runtime's fake Torino);
when the target cannot be had it says so and lets the backend judge.

Other tests run with the check off (tests/helpers.clean_env); here it is on, as by default.
"""

from __future__ import annotations

import signal
import time

import pytest
from fakes.direct_access import FakeDirectAccess
from fakes.direct_access import runner_env as da_env
from fakes.qiskit_runtime import FakeQiskitRuntime
from fakes.qiskit_runtime import runner_env as qrs_env
from helpers import EXAMPLES, assert_clean_error, clean_env, run_runner, start_runner, wait_for

from generators.cli import cli
from qrmi_tasks import results
from qrmi_tasks.front import run_command

pytestmark = pytest.mark.timeout(180)

BACKEND = "fake_heron"
LOGICAL_BELL = EXAMPLES / "qiskit" / "bell_sampler.json"  # h, cx: not ISA anywhere
CONFIGURATION = f"/v1/backends/{BACKEND}/configuration"


@pytest.fixture
def da(s3_url):
    server = FakeDirectAccess((BACKEND,), job_seconds=0.2).start()
    env = clean_env(**da_env(BACKEND, server.url, s3_url), QRMI_CHECK_TARGET="on")
    yield server, env
    server.stop()


def _submissions(fake: FakeDirectAccess) -> list:
    return fake.calls("POST", "/v1/jobs")


def _generate(tmp_path, qasm: str, *options: str) -> str:
    source = tmp_path / "circuit.qasm"
    source.write_text(qasm)
    payload = tmp_path / "payload.json"
    code = run_command(cli, "qrmi-gen", ["sampler", str(source), *options, "-o", str(payload)])
    assert code == 0
    return str(payload)


BELL_QASM = (EXAMPLES / "qiskit" / "bell.qasm").read_text()


def test_a_logical_circuit_is_refused_before_submission(da):
    fake, env = da
    proc = run_runner(BACKEND, str(LOGICAL_BELL), env=env)
    assert_clean_error(
        proc,
        f"bell_sampler.json cannot run on {BACKEND}: pub 0 is not an ISA circuit",
        f"--resource {BACKEND}",
    )
    assert fake.calls("GET", CONFIGURATION), "the check must read the backend's documents"
    assert not _submissions(fake)


def test_too_many_qubits_are_refused_before_submission(da, tmp_path):
    fake, env = da
    wide = "OPENQASM 3.0;\nqubit[400] q;\nbit[1] c;\nc[0] = measure q[399];\n"
    proc = run_runner(BACKEND, _generate(tmp_path, wide), env=env)
    assert_clean_error(proc, "pub 0 uses 400 qubits", f"{BACKEND} has 133")
    assert not _submissions(fake)


def test_an_isa_payload_passes_and_runs(da, tmp_path):
    fake, env = da
    out = tmp_path / "out.json"
    payload = _generate(tmp_path, BELL_QASM, "--target", "fake_torino")  # the fake's documents
    proc = run_runner(BACKEND, payload, "-o", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    assert len(_submissions(fake)) == 1
    counts = results.load(out)[0].data.meas.get_counts()  # IBM's plain JSON: support_qiskit off
    assert set(counts) == {"00", "11"}, counts


def test_a_target_that_cannot_be_had_is_a_warning_and_the_backend_judges(da, tmp_path):
    fake, env = da
    fake.configure(faults=[{"method": "GET", "path": CONFIGURATION, "status": 404, "times": 9}])
    proc = run_runner(BACKEND, str(LOGICAL_BELL), "-o", str(tmp_path / "out.json"), env=env)
    assert proc.returncode == 0, proc.stderr  # the fake runs logical circuits
    assert f"could not check the circuits against {BACKEND}'s target" in proc.stderr
    assert "submitting them unchecked" in proc.stderr and "Traceback" not in proc.stderr
    assert len(_submissions(fake)) == 1


def test_off_for_one_resource_skips_the_check(da, tmp_path):
    fake, env = da
    env[f"{BACKEND}_QRMI_CHECK_TARGET"] = "off"  # the resource's own setting wins
    proc = run_runner(BACKEND, str(LOGICAL_BELL), "-o", str(tmp_path / "out.json"), env=env)
    assert proc.returncode == 0, proc.stderr
    assert not fake.calls("GET", CONFIGURATION)


def test_a_bad_setting_is_refused_without_network(da):
    fake, env = da
    env["QRMI_CHECK_TARGET"] = "maybe"
    proc = run_runner(BACKEND, str(LOGICAL_BELL), env=env)
    assert_clean_error(proc, "QRMI_CHECK_TARGET", "must be on or off")
    assert not fake.requests


def test_sigterm_during_the_check_exits_at_once_and_submits_nothing(da):
    fake, env = da
    # the request is logged as it arrives, and never answered
    fake.configure(faults=[{"method": "GET", "path": CONFIGURATION, "hang": True}])
    proc = start_runner(BACKEND, str(LOGICAL_BELL), env=env)
    wait_for(lambda: bool(fake.calls("GET", CONFIGURATION)), "the check's request", proc)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert time.monotonic() - sent < 5, stderr
    assert not _submissions(fake)
    assert "Traceback" not in stderr


def test_qiskit_runtime_service_refuses_a_logical_circuit_before_submission():
    fake = FakeQiskitRuntime(backends=("ibm_fake",), job_seconds=0.2).start()
    try:
        env = clean_env(**qrs_env("ibm_fake", fake), QRMI_CHECK_TARGET="on")
        env["IAM_URL"] = "http://127.0.0.1:9"
        proc = run_runner("ibm_fake", str(LOGICAL_BELL), env=env)
        assert_clean_error(proc, "cannot run on ibm_fake: pub 0 is not an ISA circuit")
        assert not fake.created
    finally:
        fake.stop()
