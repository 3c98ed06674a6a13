"""The ``iqm-server`` resource type against the fake IQM Server (tests/fakes/iqm_server.py):
our REST client end to end, its failures as one-line errors, the architecture check,
request ids as tags, an outage ridden out, qrmi's own task_runner on the same payload,
``qrmi-gen iqm`` and the ``local`` resource's IQM circuit jobs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakes.iqm_server import QC_ALIAS, RESOURCE, TOKEN, FakeIQMServer, conformance, runner_env
from helpers import assert_clean_error, clean_env

import qrmi_tasks
from qrmi_tasks.circuit_counts import from_iqm

pytestmark = pytest.mark.timeout(120)

SHOTS = 64
ROOT = Path(__file__).resolve().parent.parent
SUBMIT = ("POST", rf"/api/v1/jobs/{QC_ALIAS}/circuit")
STATUS = ("GET", "/api/v1/jobs/[^/]+")


@pytest.fixture
def fake():
    server = FakeIQMServer(job_seconds=0.2).start()
    yield server
    server.stop()


@pytest.fixture
def env(fake):
    # clean_env turns the target check off (it costs IBM runs a qiskit import); this one is
    # a single JSON request, and part of what is tested here
    return clean_env(**runner_env(fake.endpoint), QRMI_CHECK_TARGET="on")


def _bell():
    from qiskit import QuantumCircuit

    circuit = QuantumCircuit(2, 2, name="bell")
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    return circuit


@pytest.fixture(scope="module")
def payloads(tmp_path_factory) -> dict[str, Path]:
    """Bell circuits as IQM JSON: for the fake's architecture (ISA), and one whose cz is
    on two qubits the architecture does not couple."""
    from generators import iqm_payload

    tmp = tmp_path_factory.mktemp("iqm")
    architecture = conformance("dynamic_quantum_architecture")["example"]
    isa = iqm_payload(_bell(), shots=SHOTS, architecture=architecture)
    isa.save(tmp / "bell.json")
    document = json.loads((tmp / "bell.json").read_text())
    for op in document["iqmjson"]["circuits"][0]["instructions"]:
        if op["name"] == "cz":
            op["locus"] = ["QB1", "QB2"]  # not a cz locus of the star around QB3
    (tmp / "uncoupled.json").write_text(json.dumps(document))
    document["iqmjson"] = {"shots": SHOTS}  # no circuits: IQM Server refuses the job
    (tmp / "no_circuits.json").write_text(json.dumps(document))
    return {p.stem: p for p in tmp.iterdir()}


def _counts(result: dict) -> dict[str, int]:
    (circuit,) = result["measurement_counts"]
    return circuit["counts"]


def test_bell_job_end_to_end_is_qrmis_document(in_process, fake, env, payloads, tmp_path):
    in_process.use_env(env)
    out = tmp_path / "out.json"
    run = in_process.run(RESOURCE, payloads["bell"], "-o", out)
    assert run.code == 0, run.stderr
    text = out.read_text()
    result = json.loads(text)
    assert text == json.dumps(result, indent=2, sort_keys=True)  # qrmi's pretty form
    counts = _counts(result)
    assert sum(counts.values()) == SHOTS
    assert set(counts) <= {"00", "11"}  # entangled: the two qubits always agree
    (measured,) = result["measurements"]
    assert sum(len(shots) == SHOTS for shots in measured.values()) == 2  # one key per clbit
    (submit,) = fake.calls(*SUBMIT)
    assert submit["query"]["use_timeslot"] == ["false"]
    assert submit["query"]["tag"][0].startswith("qrmi-")
    assert fake.calls("GET", rf"/api/v1/calibration-sets/{QC_ALIAS}/.*")  # checked first
    # qrmi-result reads the document: its counts, and the same made from the shots
    summary = in_process.result("summary", out, "--json")
    assert summary.code == 0, summary.stderr
    (circuit,) = json.loads(summary.stdout)["pubs"]
    (register,) = circuit["registers"]
    keys = result["measurement_counts"][0]["measurement_keys"]
    assert register["name"] == "+".join(keys) and register["shots"] == SHOTS
    assert {t["bitstring"]: t["count"] for t in register["top"]} == counts
    (shots_only,) = from_iqm({"measurements": result["measurements"]}, "out.json")
    assert dict(shots_only) == counts and shots_only.register == register["name"]


def test_failed_job_is_exit_1_with_the_services_reason(in_process, fake, env, payloads):
    fake.configure(fail_jobs=True)
    in_process.use_env(env)
    run = in_process.run(RESOURCE, payloads["bell"])
    assert run.code == 1, run.stderr
    assert "station_control_failure: Readout calibration failed." in run.errors()[0]
    assert run.stdout == ""


def test_refused_token_is_exit_3_naming_the_variable_never_the_token(in_process, fake, payloads):
    wrong = "iqm-wrong-token-zyxwvu9876543210"
    in_process.use_env(clean_env(**runner_env(fake.endpoint, token=wrong), QRMI_CHECK_TARGET="on"))
    run = in_process.run(RESOURCE, payloads["bell"], "-q")
    line = assert_clean_error(run, "authentication failed", code=3)
    assert f"{RESOURCE}_QRMI_IQM_ISA_TOKEN" in line
    assert wrong not in run.stderr and TOKEN not in run.stderr
    assert fake.calls(*SUBMIT) == []  # refused at the architecture read, before submitting


def test_job_the_service_refuses_is_exit_2_with_its_error_code(in_process, fake, env, payloads):
    in_process.use_env(env)
    run = in_process.run(RESOURCE, payloads["no_circuits"], "-q")
    assert_clean_error(run, "IQM Server refused the job (HTTP 400", "invalid_job_payload")
    assert len(fake.calls(*SUBMIT)) == 1  # a refusal is not retried


def test_circuit_off_the_architecture_is_refused_before_submitting(in_process, fake, env, payloads):
    in_process.use_env(env)
    run = in_process.run(RESOURCE, payloads["uncoupled"], "-q")
    assert_clean_error(run, "'cz' is not calibrated on (QB1, QB2)", "qrmi-gen iqm")
    assert fake.calls(*SUBMIT) == []
    in_process.use_env({**env, "QRMI_CHECK_TARGET": "off"})  # then the service judges
    assert in_process.run(RESOURCE, payloads["uncoupled"]).code == 0


def test_transient_503s_are_retried_and_one_job_is_made(in_process, fake, env, payloads):
    fake.configure(
        faults=[{"method": SUBMIT[0], "match": SUBMIT[1], "status": 503, "retry_after": 0}]
    )
    fake.configure(faults=[{"method": "GET", "match": STATUS[1], "status": 503, "times": 2}])
    in_process.use_env(env)
    run = in_process.run(RESOURCE, payloads["bell"])
    assert run.code == 0, run.stderr
    assert [c["status"] for c in fake.calls(*SUBMIT)] == [503, 200]
    assert len(fake.jobs) == 1


def test_lost_submit_answer_is_not_repeated(in_process, fake, env, payloads):
    # a 502 after the job was made: without a job listing a second submit would run twice
    fake.configure(faults=[{"method": "POST", "match": SUBMIT[1], "status": 502, "after": True}])
    in_process.use_env(env)
    run = in_process.run(RESOURCE, payloads["bell"], "-q")
    assert_clean_error(run, "cannot submit the job: HTTP 502", code=3)
    assert len(fake.calls(*SUBMIT)) == 1


def test_slurm_tasks_tag_their_jobs_with_their_own_request_ids(in_process, fake, env, payloads):
    step = {"SLURM_JOB_ID": "42", "SLURM_STEP_ID": "0", "SLURM_CLUSTER_NAME": "c"}
    for rank in ("0", "1", "0"):
        in_process.use_env({**env, **step, "SLURM_PROCID": rank})
        assert in_process.run(RESOURCE, payloads["bell"]).code == 0
    tags = [c["query"]["tag"][0] for c in fake.calls(*SUBMIT)]
    assert tags[0] != tags[1] and tags[0] == tags[2]  # per task, stable across a rerun
    assert all(len(t) <= 50 for t in tags)
    # each run's result was written, so its journal entry went: a rerun submits again
    assert len(fake.jobs) == 3


def test_the_payloads_own_tag_is_sent_as_it_is(in_process, fake, env, payloads, tmp_path):
    document = json.loads(payloads["bell"].read_text())
    document["tag"] = "my-experiment-7"
    path = tmp_path / "tagged.json"
    path.write_text(json.dumps(document))
    in_process.use_env(env)
    assert in_process.run(RESOURCE, path).code == 0
    assert fake.calls(*SUBMIT)[0]["query"]["tag"] == ["my-experiment-7"]


def test_a_rerun_after_lost_contact_takes_over_the_job(in_process, fake, env, payloads):
    """No job listing: the runner's journal keeps the job id, and the rerun of the same
    Slurm task (here after an outage longer than the grace period) takes the job over."""
    step = {"SLURM_JOB_ID": "43", "SLURM_STEP_ID": "0", "SLURM_PROCID": "0"}
    # every status read dropped: the client's retries (about 3.5 s), then the grace, end it
    dropped = {"method": "GET", "match": STATUS[1], "drop": True, "times": 10**6}
    fake.configure(faults=[dropped])
    in_process.use_env({**env, **step, "QRMI_OUTAGE_GRACE_SECONDS": "0.2"})
    lost = in_process.run(RESOURCE, payloads["bell"])
    assert lost.code == 3, lost.stderr
    with fake.lock:
        dropped["times"] = 0  # the service answers again
    done = in_process.run(RESOURCE, payloads["bell"])
    assert done.code == 0, done.stderr
    assert "attached to the task an earlier run of this request submitted" in done.stderr
    assert len(fake.calls(*SUBMIT)) == 1 and len(fake.jobs) == 1


def test_status_outage_is_ridden_out(in_process, fake, env, payloads):
    fake.configure(job_seconds=0.5)
    fake.configure(
        faults=[
            {
                "method": "GET",
                "match": STATUS[1],
                "drop": True,
                "times": 10**6,
                "until": time.time() + 2.5,
            }
        ]
    )
    in_process.use_env({**env, "QRMI_OUTAGE_GRACE_SECONDS": "60"})
    run = in_process.run(RESOURCE, payloads["bell"])
    assert run.code == 0, run.stderr
    assert "retrying in" in run.stderr and "answers again" in run.stderr
    assert len(fake.jobs) == 1


def _qrmi_runner() -> Path:
    runner = Path(sys.executable).parent / "task_runner"
    if not runner.exists():
        pytest.skip("qrmi's task_runner is not installed")
    return runner


def test_qrmi_task_runner_and_ours_write_the_same_result(fake, env, payloads, tmp_path):
    """Same payload file, same variables, same (seeded) fake: the same result document."""
    runner = _qrmi_runner()
    theirs, ours = tmp_path / "theirs.json", tmp_path / "ours.json"
    done = subprocess.run(
        [str(runner), RESOURCE, str(payloads["bell"]), str(theirs)],
        env={**env, "QRMI_JOB_QPU_RESOURCES": RESOURCE, "QRMI_JOB_QPU_TYPES": "iqm-server"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    if "_core" in done.stderr and not theirs.exists():
        pytest.skip(f"qrmi's native module cannot run here: {done.stderr[-300:]}")
    assert theirs.exists(), done.stdout + done.stderr
    ours_cli = str(Path(sys.executable).parent / "qrmi-task-runner")
    mine = subprocess.run(
        [ours_cli, RESOURCE, str(payloads["bell"]), "-o", str(ours)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert mine.returncode == 0, mine.stderr
    assert json.loads(ours.read_text()) == json.loads(theirs.read_text())
    assert ours.read_text().strip() == theirs.read_text().strip()
    submitted = [json.loads(json.dumps(p)) for p in fake.payloads.values()]
    assert submitted[0] == submitted[1]  # the same job body reached the service


def test_qrmi_gen_iqm_for_a_resource_and_offline(in_process, fake, env, tmp_path):
    qasm = tmp_path / "ghz.qasm"
    qasm.write_text(
        'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[3];\ncreg c[3];\nh q[0];\n'
        "cx q[0],q[1];\ncx q[1],q[2];\nmeasure q -> c;\n"
    )
    in_process.use_env(env)
    out = tmp_path / "ghz_iqm.json"
    gen = in_process.gen("iqm", qasm, "--shots", 100, "--resource", RESOURCE, "-o", out)
    assert gen.code == 0, gen.stderr
    document = json.loads(out.read_text())
    assert set(document) == {"iqmjson", "job_type", "use_timeslot", "tag"}  # qrmi reads all 4
    job = document["iqmjson"]
    architecture = conformance("dynamic_quantum_architecture")["example"]
    assert job["calibration_set_id"] == architecture["calibration_set_id"]
    from qrmi_tasks.providers.iqm.circuits import architecture_problems

    assert architecture_problems(job, architecture) == []  # routed onto the star
    run = in_process.run(RESOURCE, out)
    assert run.code == 0, run.stderr
    offline = in_process.gen("iqm", qasm, "-o", tmp_path / "offline.json")
    assert offline.code == 0 and "no target given" in offline.stderr


def test_local_runs_iqm_circuit_jobs_and_refuses_pulse_level_ones(in_process, payloads, tmp_path):
    out = tmp_path / "local.json"
    run = in_process.run("local", payloads["bell"], "-o", out)
    assert run.code == 0, run.stderr
    counts = _counts(json.loads(out.read_text()))
    assert sum(counts.values()) == SHOTS and set(counts) <= {"00", "11"}
    # the Python API hands the same back as counts per circuit
    (circuit,) = qrmi_tasks.run(payloads["bell"], resource="local", log_level=None)
    assert circuit.shots == SHOTS and set(circuit) <= {"00", "11"}
    document = json.loads(payloads["bell"].read_text())
    document["job_type"] = "sweep"
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(document))
    assert_clean_error(in_process.run("local", path, "-q"), "runs IQM 'circuit' jobs only")


def test_resource_name_conversion_and_calibration_suffix(in_process, fake, payloads):
    from qrmi_tasks.providers.iqm.server import quantum_computer

    assert quantum_computer("sirius_mock") == "sirius:mock"
    assert quantum_computer("iqm_garnet_x") == "iqm_garnet:x"
    assert quantum_computer("garnet") == "garnet"
    env = runner_env(fake.endpoint, name="sirius_fake,26c5")
    in_process.use_env(clean_env(**env, QRMI_LIST_DELIMITER=";"))
    assert_clean_error(
        in_process.run("sirius_fake,26c5", payloads["bell"], "-q"), "CALIBRATION_SET_ID"
    )
