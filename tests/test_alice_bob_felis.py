"""Alice & Bob Felis (``alice-bob-felis``) against the fake Felis, in process.

Programs are QIR written by qiskit-alice-bob-provider (``qrmi-gen alice-bob``'s route);
the fake samples them on Qiskit Aer, so counts are computed. Signals are in
test_cancel_matrix.py; qrmi's own task_runner on the same payload in
test_alice_bob_interop.py.
"""

from __future__ import annotations

import json
import time

import pytest
from fakes.alice_bob_felis import API_KEY, FakeFelis, bell_qir, conformance, runner_env
from helpers import clean_env

from qrmi_tasks.retry import Backoff

pytestmark = pytest.mark.timeout(120)
NAME = "ab_emu_6q_physical_cats"  # qrmi's device name of target EMU:6Q:PHYSICAL_CATS
ONE_QUBIT = "ab_emu_1q_lescanne_2020"
WRONG_KEY = "d3Jvbmc6d3JvbmctcGFzc3dvcmQtOTg3NjU0MzIx"  # base64 of wrong:wrong-password-...


@pytest.fixture
def fake():
    server = FakeFelis(job_seconds=0.2).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def payload(tmp_path_factory):
    path = tmp_path_factory.mktemp("felis") / "bell.json"
    path.write_text(json.dumps({"human_qir": bell_qir(), "input_params": {"nbShots": 200}}))
    return path


def _run(in_process, fake, payload, *args, name=NAME, **env):
    in_process.use_env(clean_env(**{**runner_env(name, fake), **env}))
    return in_process.run(name, str(payload), *args)


def _histogram(text: str) -> dict[str, int]:
    return {bits: int(n) for bits, n in (line.split(",") for line in text.splitlines())}


def test_bell_pair_runs_and_the_output_is_felis_csv_as_sent(in_process, fake, payload, tmp_path):
    out = tmp_path / "out.csv"
    result = _run(in_process, fake, payload, "-o", str(out))
    assert result.code == 0, result.stderr
    [job_id] = fake.jobs
    assert out.read_bytes() == fake.outputs[job_id].encode()  # byte for byte, as qrmi returns it
    counts = _histogram(out.read_text())
    assert set(counts) <= {"00", "11"} and sum(counts.values()) == 200
    summary = in_process.result("summary", out)  # qrmi-result reads the text as it is
    assert summary.code == 0, summary.stderr
    head, circuit, register, *rows = summary.stdout.splitlines()
    assert (head, circuit) == ("counts result (felis form), 1 circuit", "circuit 0:")
    assert register.startswith("  register bits: 200 shots")
    assert {row.split()[0]: int(row.split()[1]) for row in rows} == counts
    assert min(counts.values()) > 50  # both outcomes: the H and the CNOT were run
    # what reached Felis: qrmi's create body, the QIR text itself as the upload
    assert fake.created == [
        {
            "inputDataFormat": "HUMAN_QIR",
            "outputDataFormat": "HISTOGRAM",
            "target": "EMU:6Q:PHYSICAL_CATS",
            "inputParams": {"nbShots": 200},
        }
    ]
    assert fake.inputs[job_id].decode() == json.loads(payload.read_text())["human_qir"]
    events = [e["type"] for e in fake.jobs[job_id]["events"]]
    assert events == conformance("events")["sequences"]["succeeded"]


def test_failed_job_is_exit_1_with_the_services_errors(in_process, fake, payload):
    fake.configure(fail_jobs=True)
    result = _run(in_process, fake, payload)
    assert result.code == 1, result.stderr
    [job_id] = fake.jobs
    assert result.errors() == [
        f"error: task {job_id} failed: EXECUTION_FAILED: 500: An unexpected error happened"
    ]


def test_program_too_big_for_the_target(in_process, fake, payload):
    # checked against the published target: refused before any job exists (exit 2)
    result = _run(in_process, fake, payload, name=ONE_QUBIT)
    assert result.code == 2, result.stderr
    [line] = result.errors()
    assert (
        "cannot run on Felis target EMU:1Q:LESCANNE_2020: it uses 2 qubits, the target has 1"
        in line
    )
    assert fake.jobs == {}
    # unchecked, Felis itself refuses it while transpiling: the task failed (exit 1)
    env = {f"{ONE_QUBIT}_QRMI_CHECK_TARGET": "off"}
    result = _run(in_process, fake, payload, name=ONE_QUBIT, **env)
    assert result.code == 1, result.stderr
    assert (
        "TRANSPILATION_FAILED: OperationNotSupported: Input program requires 2 qubits"
        in (result.errors()[0])
    )


def test_unknown_target_is_a_configuration_error(in_process, fake, payload):
    result = _run(in_process, fake, payload, name="ab_qpu_9q_nowhere")
    assert result.code == 2, result.stderr
    assert "is Felis target QPU:9Q:NOWHERE, which" in result.errors()[0]
    assert "EMU:6Q:PHYSICAL_CATS (ab_emu_6q_physical_cats)" in result.errors()[0]


def test_refused_key_is_exit_3_naming_the_variable_never_the_key(in_process, fake, payload):
    in_process.use_env(clean_env(**runner_env(NAME, fake, api_key=WRONG_KEY)))
    result = in_process.run(NAME, str(payload), "-vv")
    assert result.code == 3, result.stderr
    [line] = result.errors()
    assert "Felis at http://127.0.0.1" in line and "HTTP 401: Not authenticated" in line
    assert f"check {NAME}_QRMI_AB_FELIS_API_KEY (or QRMI_AB_FELIS_API_KEY)" in line
    assert WRONG_KEY not in result.stderr and API_KEY not in result.stderr


def test_a_key_that_is_not_base64_user_password_is_refused_offline(in_process, fake, payload):
    in_process.use_env(clean_env(**runner_env(NAME, fake, api_key="not-a-felis-key")))
    result = in_process.run(NAME, str(payload))
    assert result.code == 2
    assert result.errors() == [
        f"error: {NAME}_QRMI_AB_FELIS_API_KEY is not a base64-encoded 'user:password' API key "
        "(as Felis issues them) (got (hidden))"
    ]
    assert fake.requests == []


def test_unprefixed_variables_are_qrmis_fallbacks(in_process, fake, payload):
    env = runner_env(NAME, fake)
    shared = {
        "QRMI_AB_FELIS_API_KEY": env.pop(f"{NAME}_QRMI_AB_FELIS_API_KEY"),
        "QRMI_AB_FELIS_BASE_ENDPOINT": env.pop(f"{NAME}_QRMI_AB_FELIS_BASE_ENDPOINT"),
    }
    in_process.use_env(clean_env(**env, **shared))
    result = in_process.run(NAME, str(payload))
    assert result.code == 0, result.stderr
    assert sum(_histogram(result.stdout).values()) == 200


def test_refused_input_params_are_a_payload_error(in_process, fake, tmp_path):
    bad = tmp_path / "bad.json"
    document = {"human_qir": bell_qir(), "input_params": {"nbShots": 0}}
    bad.write_text(json.dumps(document))
    # refused locally by the target check, then by Felis itself (400) when unchecked
    checked = _run(in_process, fake, bad)
    assert checked.code == 2 and "input param nbShots=0 is outside [1, 10000000]" in checked.stderr
    assert fake.created == []
    unchecked = _run(in_process, fake, bad, **{f"{NAME}_QRMI_CHECK_TARGET": "off"})
    assert unchecked.code == 2, unchecked.stderr
    assert unchecked.errors() == [
        'error: Felis refused the job (HTTP 400): Input param "nbShots" must be in the range '
        "[1, 10000000].; fix the payload's input_params or human_qir and submit again"
    ]
    assert fake.jobs == {}


def test_transient_5xx_are_retried(in_process, fake, payload):
    fake.configure(
        faults=[
            {"method": "POST", "match": "/v1/jobs/", "status": 503},
            {"method": "GET", "match": "/v1/jobs/[^/]+", "status": 502, "times": 2},
            {"method": "GET", "match": "/v1/jobs/[^/]+/output", "status": 500},
        ]
    )
    result = _run(in_process, fake, payload)
    assert result.code == 0, result.stderr
    assert sum(_histogram(result.stdout).values()) == 200
    assert [r["status"] for r in fake.calls("POST", "/v1/jobs/")] == [503, 200]
    assert len(fake.jobs) == 1
    assert "cannot create the job (HTTP 503); retrying" in result.stderr


def test_rerun_submits_again_and_request_ids_reach_felis(in_process, fake, payload):
    """A rerun of a Slurm task whose result was written submits anew (the runner's journal
    forgets a task once its outcome is dealt with). The request id rides in the
    User-Agent: the same for a rerun of one task, distinct for another rank."""
    slurm = {"SLURM_JOB_ID": "77", "SLURM_STEP_ID": "0", "SLURM_CLUSTER_NAME": "c"}
    for rank in ("0", "1", "0"):
        result = _run(in_process, fake, payload, SLURM_PROCID=rank, **slurm)
        assert result.code == 0, result.stderr
    agents = [r["headers"]["User-Agent"] for r in fake.calls("POST", "/v1/jobs/")]
    assert len(fake.jobs) == 3 and len(agents) == 3
    assert agents[0] == agents[2] != agents[1]
    assert all(a.startswith("qrmi-tasks/") and " request/" in a for a in agents)


def test_outage_after_submission_is_ridden_out(in_process, fake, payload, monkeypatch):
    from qrmi_tasks.providers.alice_bob import felis

    # the provider's own retries give up in a fraction of a second: the runner's grace acts
    monkeypatch.setattr(felis, "BACKOFF", Backoff(initial=0.02, factor=1.0, cap=0.02))
    fake.configure(
        faults=[
            {
                "method": "GET",
                "match": "/v1/jobs/[^/]+",
                "drop": True,
                "times": 10**6,
                "until": time.time() + 2.5,
            }
        ]
    )
    result = _run(in_process, fake, payload, QRMI_OUTAGE_GRACE_SECONDS="60")
    assert result.code == 0, result.stderr
    assert sum(_histogram(result.stdout).values()) == 200
    assert "retrying in" in result.stderr and len(fake.jobs) == 1
    assert any(r["status"] == 0 for r in fake.calls("GET", "/v1/jobs/[^/]+"))


def test_the_local_resource_refuses_qir(in_process, payload, listener):
    result = in_process.run("local", str(payload))
    assert result.code == 2
    assert result.errors() == [
        f"error: {payload} is a qir payload but resource 'local' (local) runs iqm, pulser or "
        "qiskit payloads"
    ]
