"""``qrmi-gen alice-bob`` payloads, run by our runner and by qrmi 0.26.4's task_runner.

Both runners get the same payload file and the same environment, against the same fake
Felis. qrmi's ``task_runner`` hands Rust ``json.dumps(task_input["human_qir"])``: a QIR
string reaches Felis as a JSON string literal (quoted, newlines escaped), which is not
QIR; our runner uploads the text itself, as qiskit-alice-bob-provider and qrmi's own
Python example do. The test pins both wire forms down (docs/alice-bob-felis.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fakes.alice_bob_felis import FakeFelis, runner_env
from helpers import clean_env

pytestmark = pytest.mark.timeout(120)
NAME = "ab_emu_6q_physical_cats"
BELL_QASM = (
    'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\n'
    "h q[0];\ncx q[0],q[1];\nmeasure q -> c;\n"
)
TASK_RUNNER = Path(sys.executable).parent / "task_runner"


@pytest.fixture
def fake():
    server = FakeFelis(job_seconds=0.2).start()
    yield server
    server.stop()


def _qrmi_runs() -> str | None:
    """Why qrmi's task_runner cannot run here, or None."""
    if not TASK_RUNNER.exists():
        return f"{TASK_RUNNER} is not installed (qrmi==0.26.4, a dev dependency)"
    probe = subprocess.run(
        [sys.executable, "-c", "import qrmi; qrmi.ResourceType.AliceBobFelis"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return None if probe.returncode == 0 else f"qrmi's _core does not load: {probe.stderr[-300:]}"


def test_generated_payload_under_both_runners(in_process, fake, tmp_path):
    circuit = tmp_path / "bell.qasm"
    circuit.write_text(BELL_QASM)
    payload = tmp_path / "bell.json"
    gen = in_process.gen("alice-bob", circuit, "--shots", "100", "-o", payload)
    assert gen.code == 0, gen.stderr
    document = json.loads(payload.read_text())
    assert document["input_params"] == {"nbShots": 100}
    assert document["human_qir"].startswith("; ModuleID")
    env = clean_env(**runner_env(NAME, fake))

    in_process.use_env(env)
    ours = in_process.run(NAME, str(payload), "-o", tmp_path / "ours.csv")
    assert ours.code == 0, ours.stderr
    counts = dict(line.split(",") for line in (tmp_path / "ours.csv").read_text().splitlines())
    assert set(counts) <= {"00", "11"} and sum(map(int, counts.values())) == 100

    why_not = _qrmi_runs()
    if why_not:
        pytest.skip(why_not)
    qrmi_out = tmp_path / "qrmi.csv"
    proc = subprocess.run(
        [str(TASK_RUNNER), NAME, str(payload), str(qrmi_out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    ours_job, qrmi_job = list(fake.jobs)
    # the same job, asked for with the same credentials...
    assert fake.created[0] == fake.created[1]
    auth = [
        {k.lower(): v for k, v in r["headers"].items()}["authorization"]
        for r in fake.calls("POST", "/v1/jobs/")
    ]
    assert auth[0] == auth[1]
    # ...but qrmi's runner uploads the QIR string JSON-encoded, which Felis cannot read
    assert fake.inputs[ours_job].decode() == document["human_qir"]
    assert fake.inputs[qrmi_job].decode() == json.dumps(document["human_qir"])
    assert fake.jobs[qrmi_job]["events"][-1]["type"] == "COMPILATION_FAILED"
    assert "TaskStatus.Failed" in proc.stdout + proc.stderr
    assert not qrmi_out.exists()


def test_felis_payload_from_python_and_its_refusals(in_process, tmp_path):
    from qiskit import QuantumCircuit
    from qiskit.circuit import Parameter

    from generators import GeneratorError, felis_payload
    from qrmi_tasks.payload import check_document

    circuit = QuantumCircuit(1, 1, name="plus")
    circuit.h(0)
    circuit.measure(0, 0)
    payload = felis_payload(circuit, shots=10, input_params={"averageNbPhotons": 4.0})
    assert payload.kind == "qir" and payload.shots == 10
    assert check_document(payload.to_dict()).kind == "qir"
    assert "__quantum__qis__h__body" in payload.document["human_qir"]
    theta = QuantumCircuit(1, 1)
    theta.rx(Parameter("t"), 0)
    with pytest.raises(GeneratorError, match="has no QIR form: The parameters"):
        felis_payload(theta)
    two = tmp_path / "two.qasm"
    two.write_text(BELL_QASM)
    bad = in_process.gen("alice-bob", two, "--param", "nbShots")
    assert bad.code == 2 and "'nbShots' is not NAME=VALUE" in bad.stderr
