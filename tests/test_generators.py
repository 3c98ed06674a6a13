"""qrmi-gen and the notebook API: generated payloads run on the real ``local`` resource.

qrmi-gen runs in this process (the ``in_process`` fixture: ``generators.cli.main`` minus
its exit), and so does the runner that runs the payloads (its ``local`` resource still
simulates in a worker process). What only a process shows stays one: the installed
entry point, what ``--help`` and ``import generators`` import, and one generated payload
run by a ``qrmi-task-runner`` process end to end.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from helpers import EXAMPLES, assert_clean_error, clean_env, ibm_schema, run_runner

pytestmark = pytest.mark.timeout(300)

BELL = EXAMPLES / "qiskit" / "bell.qasm"  # measured, OpenQASM 3
BELL_STATE = EXAMPLES / "qiskit" / "bell_state.qasm"  # no measurements, OpenQASM 2
HEAVY = ("qiskit", "pulser", "qiskit_ibm_runtime", "numpy")


def run_local(in_process, payload: Path) -> dict:
    """Run ``payload`` with ``qrmi-task-runner local`` (in this process, in a clean
    environment) and return the decoded result."""
    in_process.use_env(clean_env())
    done = in_process.run("local", str(payload))
    assert done.code == 0, done.stderr
    return json.loads(done.stdout)


def counts(result: dict, pub: int = 0, register: str = "meas") -> Counter[int]:
    """Counts of a plain-JSON (support_qiskit false) sampler result, by integer outcome."""
    samples = result["results"][pub]["data"][register]["samples"]
    return Counter(int(s, 16) for s in samples)


def generated(done, path: Path) -> dict:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(path.read_text())


# -- the installed command, in a process --------------------------------------------------------
def test_installed_entry_point_exit_codes_and_output():
    """The console script pyproject.toml installs, and the exit codes main() gives the
    process (the in-process tests below see run()'s return value, not the exit)."""
    script = Path(sys.executable).with_name("qrmi-gen")
    if not script.exists():
        pytest.skip(f"qrmi-gen is not installed next to {sys.executable}")
    proc = subprocess.run(
        [str(script), "validate", str(EXAMPLES / "qiskit" / "bell_sampler.json")],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok: ") and "sampler" in proc.stdout
    proc = subprocess.run(
        [str(script), "frobnicate"], env=clean_env(), capture_output=True, text=True, timeout=60
    )
    assert_clean_error(proc, "No such command")


# -- import cost ------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [("--help",), ("sampler", "--help"), ("pulser", "--help")])
def test_help_imports_no_heavy_library(args):
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "generators", *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert heavy == [], heavy


def test_package_import_is_lazy():
    code = f"import sys, generators; print(sorted(m for m in sys.modules if m in {HEAVY!r}))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr


# -- sampler ------------------------------------------------------------------------------------
def test_bell_sampler_for_fake_torino_round_trip(in_process, tmp_path):
    out = tmp_path / "bell.json"
    document = generated(
        in_process.gen("sampler", BELL, "--shots", 4000, "--target", "fake_torino", "-o", out), out
    )
    params = document["parameters"]
    assert document["program_id"] == "sampler"
    assert params["version"] == 2 and params["support_qiskit"] is False
    assert params["shots"] == 4000
    circuit = params["pubs"][0][0]
    assert circuit.startswith("OPENQASM 3.0;")
    # ISA: physical qubits and Heron's basis (cz, sx, rz), no h/cx left
    assert "$0" in circuit and "cz " in circuit
    assert "h " not in circuit and "cx " not in circuit

    # the one generated payload run by a runner process, end to end (the others run the
    # runner in this process; tests/test_local_runs.py covers the local runner itself)
    proc = run_runner("local", str(out))
    assert proc.returncode == 0, proc.stderr
    seen = counts(json.loads(proc.stdout))
    assert sum(seen.values()) == 4000
    assert set(seen) == {0b00, 0b11}  # noiseless: only correlated outcomes
    assert 0.45 < seen[0b00] / 4000 < 0.55


def test_sampler_without_target_warns_and_runs(in_process, tmp_path):
    out = tmp_path / "bell.json"
    proc = in_process.gen("sampler", BELL, "--shots", 100, "-o", out)
    document = generated(proc, out)
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "ISA" in warnings[0]
    assert "qubit[2] q;" in document["parameters"]["pubs"][0][0]  # as written
    assert sum(counts(run_local(in_process, out)).values()) == 100


def test_default_file_name_params_only_and_stdout(in_process, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    proc = in_process.gen("sampler", BELL, "--target", "fake_torino")
    assert proc.returncode == 0, proc.stderr
    full = json.loads((tmp_path / "sampler_input_fake_torino.json").read_text())
    proc = in_process.gen("sampler", BELL, "--target", "fake_torino", "--params-only")
    assert proc.returncode == 0, proc.stderr
    params = json.loads((tmp_path / "sampler_input_fake_torino_params_only.json").read_text())
    assert params == full["parameters"]
    proc = in_process.gen("sampler", BELL, "--shots", 7, "-o", "-")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["parameters"]["shots"] == 7


def test_parametrized_circuit_with_param_values(in_process, tmp_path):
    qasm = tmp_path / "ry.qasm"
    qasm.write_text(
        'OPENQASM 3.0;\ninclude "stdgates.inc";\ninput float[64] theta;\nbit[1] c;\n'
        "qubit[1] q;\nry(theta) q[0];\nc[0] = measure q[0];\n"
    )
    out = tmp_path / "ry.json"
    values = tmp_path / "values.json"
    values.write_text(json.dumps([[0.0], [np.pi]]))
    generated(
        in_process.gen("sampler", qasm, "--param-values", values, "--shots", 50, "-o", out), out
    )
    samples = run_local(in_process, out)["results"][0]["data"]["c"]["samples"]
    assert [Counter(row) for row in samples] == [Counter({"0x0": 50}), Counter({"0x1": 50})]


def test_qpy_circuits(in_process, tmp_path):
    from qiskit import QuantumCircuit, qpy

    circuits = []
    for flips in (1, 2):
        circuit = QuantumCircuit(2)
        for qubit in range(flips):
            circuit.x(qubit)
        circuit.measure_all()
        circuits.append(circuit)
    path = tmp_path / "circuits.qpy"
    with path.open("wb") as handle:
        qpy.dump(circuits, handle)
    out = tmp_path / "qpy.json"
    document = generated(in_process.gen("sampler", path, "--shots", 20, "-o", out), out)
    assert len(document["parameters"]["pubs"]) == 2
    result = run_local(in_process, out)
    assert counts(result, 0) == Counter({0b01: 20})
    assert counts(result, 1) == Counter({0b11: 20})


# -- estimator ----------------------------------------------------------------------------------
def test_estimator_bell_zz_is_one(in_process, tmp_path):
    out = tmp_path / "est.json"
    obs = tmp_path / "obs.json"
    obs.write_text(json.dumps({"XX": 0.5, "YY": 0.5}))
    document = generated(
        in_process.gen(
            "estimator",
            BELL_STATE,
            "--observable",
            "ZZ",
            "--observable",
            "0.5*ZZ-0.5*XI",
            "--observable",
            obs,
            "--precision",
            0.001,
            "--resilience-level",
            1,
            "--default-shots",
            1000,
            "-o",
            out,
        ),
        out,
    )
    params = document["parameters"]
    assert params["precision"] == 0.001 and params["resilience_level"] == 1
    assert params["options"]["default_shots"] == 1000
    evs = run_local(in_process, out)["results"][0]["data"]["evs"]
    # Bell state: <ZZ> = 1, <XI> = 0, <XX> = 1, <YY> = -1 (shot noise of ~0.001 on local)
    assert evs == pytest.approx([1.0, 0.5, 0.0], abs=0.01)


def test_estimator_for_fake_torino_round_trip(in_process, tmp_path):
    out = tmp_path / "est.json"
    document = generated(
        in_process.gen(
            "estimator", BELL_STATE, "--observable", "ZZ", "--target", "fake_torino", "-o", out
        ),
        out,
    )
    (observable,) = document["parameters"]["pubs"][0][1]
    (pauli,) = observable
    assert len(pauli) == 133 and pauli.count("Z") == 2  # layout applied, backend-wide
    data = run_local(in_process, out)["results"][0]["data"]
    # exact value plus the estimator's sampling noise (precision 1/64 by default, which the
    # result reports as its std): 5 standard deviations, not a tolerance that fails 1 run in 700
    (std,) = data["stds"]
    assert 0 < std < 0.05
    assert data["evs"] == pytest.approx([1.0], abs=5 * std)


# -- IBM's primitive schemas -----------------------------------------------------------------
def _ibm_validator(name: str, values_slot: int):
    from jsonschema import Draft202012Validator

    schema = ibm_schema(f"{name}_v2")
    # IBM's schemas say draft-04 but use 2020-12's prefixItems, hence Draft202012Validator.
    # The one relaxation: the parameter-values slot is typed "object" ({name: values}),
    # while IBM's own generator tools (and Qiskit's encoder) emit an array in the order of
    # circuit.parameters, as we do. Only that slot also accepts an array; nothing else changes.
    schema = copy.deepcopy(schema)
    slot = schema["properties"]["pubs"]["items"]["prefixItems"][values_slot]
    slot["type"] = ["object", "array"]
    return Draft202012Validator(schema)


def test_generated_parameters_match_ibm_schemas(in_process, tmp_path):
    from qiskit import QuantumCircuit
    from qiskit.circuit import Parameter
    from qiskit.quantum_info import SparsePauliOp

    from generators import estimator_payload, sampler_payload

    theta = Parameter("theta")
    circuit = QuantumCircuit(2)
    circuit.ry(theta, 0)
    circuit.cx(0, 1)
    measured = circuit.copy()
    measured.measure_all()
    values = np.linspace(0, np.pi, 3)

    with pytest.warns(UserWarning):
        payloads = {
            "sampler": [
                sampler_payload([(measured, values, 100), measured.assign_parameters([1.0])]),
                sampler_payload((measured, values), shots=10, target="fake_torino"),
            ],
            "estimator": [
                estimator_payload(
                    [(circuit, SparsePauliOp(["ZZ", "XX"]), values, 0.01)],
                    default_shots=100,
                    resilience_level=2,
                ),
                estimator_payload((circuit, ["ZZ"], values), target="fake_torino", precision=0.02),
            ],
        }
    validators = {
        "sampler": _ibm_validator("sampler", 1),
        "estimator": _ibm_validator("estimator", 2),
    }
    for kind, generated_payloads in payloads.items():
        for payload in generated_payloads:
            errors = list(validators[kind].iter_errors(payload.to_dict(params_only=True)))
            assert errors == [], [e.message for e in errors]
    # and the file the CLI writes
    out = tmp_path / "est.json"
    generated(
        in_process.gen("estimator", BELL_STATE, "--observable", "ZZ", "--params-only", "-o", out),
        out,
    )
    assert list(validators["estimator"].iter_errors(json.loads(out.read_text()))) == []


# -- notebook API -----------------------------------------------------------------------------
def test_api_payload_object(in_process, tmp_path):
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import SparsePauliOp

    from generators import Payload, estimator_payload, sampler_payload

    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    measured = bell.measure_all(inplace=False)
    payload = sampler_payload([measured, measured], shots=321, target="fake_torino")
    assert isinstance(payload, Payload)
    assert repr(payload) == "<Payload sampler, 2 pub(s), shots=321, target=fake_torino>"
    assert payload.to_dict() == json.loads(payload.to_json())
    path = payload.save(tmp_path / "p.json")
    assert json.loads(path.read_text()) == payload.to_dict()
    assert payload.default_filename() == "sampler_input_fake_torino.json"
    assert sum(counts(run_local(in_process, path), 1).values()) == 321

    with pytest.warns(UserWarning, match="ISA"):
        est = estimator_payload(bell, SparsePauliOp("ZZ"), default_shots=500)
    assert repr(est) == "<Payload estimator, 1 pub(s), shots=500>"
    assert est.parameters["pubs"][0][1] == [{"ZZ": 1.0}]


def test_api_errors_are_generator_errors():
    from qiskit import QuantumCircuit

    from generators import GeneratorError, estimator_payload, sampler_payload

    unmeasured = QuantumCircuit(1)
    with pytest.raises(GeneratorError, match="no classical bits"):
        sampler_payload(unmeasured, target="fake_torino")
    with pytest.raises(GeneratorError, match="needs observables"):
        estimator_payload(unmeasured, target="fake_torino")
    with pytest.raises(GeneratorError, match="shots"):
        sampler_payload(unmeasured.measure_all(inplace=False), shots=0)


# -- --resource: the live target of a Direct Access resource -----------------------------------
def test_resource_target_from_direct_access(in_process, tmp_path):
    from fakes.direct_access import FakeDirectAccess, runner_env

    fake = FakeDirectAccess(("fake_heron",)).start()
    try:
        # generation needs only the API variables; S3 ones point nowhere on purpose
        in_process.use_env(clean_env(**runner_env("fake_heron", fake.url, "http://127.0.0.1:9")))
        out = tmp_path / "bell.json"
        document = generated(
            in_process.gen("sampler", BELL, "--resource", "fake_heron", "--shots", 500, "-o", out),
            out,
        )
        assert len(fake.calls("GET", r"/v1/backends/fake_heron/configuration")) == 1
        assert len(fake.calls("GET", r"/v1/backends/fake_heron/properties")) == 1
        # the next generation for the same calibration reads the user's backend cache
        again = tmp_path / "again.json"
        generated(in_process.gen("sampler", BELL, "--resource", "fake_heron", "-o", again), again)
        assert len(fake.calls("GET", r"/v1/backends/fake_heron/configuration")) == 1
        assert len(fake.calls("GET", r"/v1/backends/fake_heron/properties")) == 1
    finally:
        fake.stop()
    assert "cz " in document["parameters"]["pubs"][0][0]
    assert (tmp_path / "bell.json").exists()
    seen = counts(run_local(in_process, out))
    assert set(seen) <= {0b00, 0b11} and sum(seen.values()) == 500


def test_resource_target_from_qiskit_runtime(in_process, tmp_path):
    """Through the runner's Qiskit Runtime provider, against the fake Runtime API."""
    from fakes.qiskit_runtime import FakeQiskitRuntime, runner_env

    fake = FakeQiskitRuntime(("ibm_fake",)).start()
    env = clean_env(**runner_env("ibm_fake", fake))
    in_process.use_env(env)
    prefix = "ibm_fake_QRMI_IBM_QRS_"
    try:
        out = tmp_path / "est.json"
        proc = in_process.gen(
            "estimator",
            BELL_STATE,
            "--observable",
            "ZZ",
            "--resource",
            "ibm_fake",
            "-o",
            out,
        )
        document = generated(proc, out)
        assert len(fake.calls("GET", r"/api/v1/backends/ibm_fake/configuration")) == 1
        assert len(fake.calls("GET", r"/api/v1/backends/ibm_fake/properties")) == 1
        assert not fake.calls("POST", r"/api/v1/jobs")
        # a refused API key (no cached documents to read): one line, exit 3, no retry storm
        env[f"{prefix}IAM_APIKEY"] = "wrong-key"
        env["QRMI_STATE_DIR"] = str(tmp_path / "another-state")
        in_process.use_env(env)
        proc = in_process.gen("sampler", BELL, "--resource", "ibm_fake", "-o", out)
        line = assert_clean_error(proc, "authentication failed", code=3)
        assert "wrong-key" not in line
    finally:
        fake.stop()
    (observable,) = document["parameters"]["pubs"][0][1]
    assert len(next(iter(observable))) == 133  # laid out over the whole backend
    assert document["program_id"] == "estimator"


def test_resource_errors(in_process, tmp_path):
    assert_clean_error(
        in_process.gen("sampler", BELL, "--resource", "local"), "local simulator", "--resource"
    )
    in_process.use_env(
        clean_env(SLURM_JOB_QPU_RESOURCES="FRESNEL", SLURM_JOB_QPU_TYPES="pasqal-cloud")
    )
    assert_clean_error(
        in_process.gen("sampler", BELL, "--resource", "FRESNEL"), "does not run Qiskit"
    )
    in_process.use_env(
        clean_env(SLURM_JOB_QPU_RESOURCES="ibm_x", SLURM_JOB_QPU_TYPES="direct-access")
    )
    assert_clean_error(
        in_process.gen("sampler", BELL, "--resource", "ibm_x"), "ibm_x_QRMI_IBM_DA_ENDPOINT"
    )


# -- error rules: one line, exit 2, no traceback ----------------------------------------------
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("sampler", "missing.qasm"), "does not exist"),
        (("sampler", EXAMPLES / "qiskit" / "README.md"), "neither OpenQASM"),
        (("sampler", BELL_STATE, "--target", "fake_torino"), "no classical bits"),
        (("sampler", BELL, "--target", "fake_nowhere"), "unknown fake backend"),
        (("sampler", BELL, "--target", "fake_torino", "--resource", "x"), "not both"),
        (("sampler", BELL, "--shots", "0"), "--shots"),
        (("sampler", BELL, "--param-values", "[1]"), "no circuit has parameters"),
        (("estimator", BELL_STATE), "--observable"),
        (("estimator", BELL_STATE, "--observable", "ZZ+"), "cannot read observable"),
        (("estimator", BELL_STATE, "--observable", "ZZZ"), "number of qubits"),
        (("estimator", BELL_STATE, "--observable", "ZZ", "--resilience-level", "3"), "0<=x<=2"),
        (("pulser", "missing.json", "--runs", "5"), "does not exist"),
        (("pulser", BELL, "--runs", "5"), "not JSON"),
        (("qpp", EXAMPLES / "pulser" / "sequence.py", "--runs", "5"), "'circuit' or 'qc'"),
        (
            ("validate", EXAMPLES / "qiskit" / "bell_sampler.json", "--type", "pasqal-cloud"),
            "runs pulser",
        ),
        (
            ("validate", EXAMPLES / "qiskit" / "bell_sampler.json", "--type", "nope"),
            "unknown resource type",
        ),
        (("validate", BELL), "not valid JSON"),
        (("frobnicate",), "No such command"),
    ],
)
def test_errors_are_one_line(in_process, args, fragment):
    assert_clean_error(in_process.gen(*args), fragment)


def test_failing_script_is_one_line(in_process, tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("raise RuntimeError('boom\\nsecond line')\n")
    assert_clean_error(in_process.gen("pulser", script, "--runs", 3), "broken.py failed", "boom")


# -- validate -------------------------------------------------------------------------------------
def test_validate_accepts_and_reports(in_process, tmp_path):
    proc = in_process.gen(
        "validate", EXAMPLES / "qiskit" / "bell_sampler.json", "--type", "direct-access"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok: ") and "sampler" in proc.stdout
    proc = in_process.gen(
        "validate", EXAMPLES / "qiskit" / "bell_estimator.json", "--resource", "local"
    )
    assert proc.returncode == 0, proc.stderr
    broken = tmp_path / "broken.json"
    sequence = {"version": "1", "name": "x", "register": []}
    broken.write_text(json.dumps({"sequence": sequence, "job_runs": 3}))
    assert_clean_error(in_process.gen("validate", broken), "not a valid Pulser sequence")


# -- Pulser -----------------------------------------------------------------------------------
def _sequence():
    from pulser import Pulse, Register, Sequence
    from pulser.devices import AnalogDevice

    sequence = Sequence(Register.square(2, spacing=6, prefix="q"), AnalogDevice)
    sequence.declare_channel("rydberg", "rydberg_global")
    sequence.add(Pulse.ConstantPulse(400, 2.0, 0.0, 0.0), "rydberg")
    sequence.measure("ground-rydberg")
    return sequence


def test_pulser_object_and_string_forms_rebuild_the_same_sequence(in_process, tmp_path):
    from pulser import Sequence

    from generators import pulser_payload

    sequence = _sequence()
    text = sequence.to_abstract_repr()
    forms = [pulser_payload(sequence, 50), pulser_payload(text, 50)]
    forms.append(pulser_payload(json.loads(text), 50))
    documents = [p.to_dict() for p in forms]
    assert all(isinstance(d["sequence"], dict) and d["job_runs"] == 50 for d in documents)
    assert documents[0] == documents[1] == documents[2]
    rebuilt = Sequence.from_abstract_repr(json.dumps(documents[0]["sequence"]))
    assert json.loads(rebuilt.to_abstract_repr()) == json.loads(text)
    assert repr(forms[0]) == "<Payload pulser sequence, runs=50>"

    # the CLI: from a JSON abstract repr, and from a payload whose sequence is a string
    (tmp_path / "seq.json").write_text(text)
    (tmp_path / "old.json").write_text(json.dumps({"sequence": text, "job_runs": 9}))
    for source in ("seq.json", "old.json"):
        out = tmp_path / f"from_{source}"
        document = generated(
            in_process.gen("pulser", tmp_path / source, "--runs", 40, "-o", out), out
        )
        assert document == {"sequence": documents[0]["sequence"], "job_runs": 40}
    result = run_local(in_process, out)["counter"]
    assert sum(result.values()) == 40 and all(len(bits) == 4 for bits in result)


def test_pulser_unbuilt_variables_refused():
    from pulser import Pulse, Register, Sequence
    from pulser.devices import AnalogDevice

    from generators import GeneratorError, pulser_payload

    sequence = Sequence(Register.square(2, spacing=6, prefix="q"), AnalogDevice)
    sequence.declare_channel("rydberg", "rydberg_global")
    amplitude = sequence.declare_variable("amplitude")
    sequence.add(Pulse.ConstantPulse(400, amplitude, 0.0, 0.0), "rydberg")
    with pytest.raises(GeneratorError, match="unbuilt variables"):
        pulser_payload(sequence, 10)
    assert pulser_payload(sequence.build(amplitude=1.0), 10).shots == 10


def test_qpp_circuit_to_sequence_runs_locally(in_process, tmp_path):
    from pulser import Sequence

    from generators import qpp_sequence

    out = tmp_path / "qpp.json"
    script = EXAMPLES / "qpp" / "analog.py"
    document = generated(
        in_process.gen("qpp", script, "--runs", 60, "--device", "DigitalAnalogDevice", "-o", out),
        out,
    )
    assert document["job_runs"] == 60
    rebuilt = Sequence.from_abstract_repr(json.dumps(document["sequence"]))
    assert rebuilt.device.name == "DigitalAnalogDevice"
    assert rebuilt.is_measured()
    assert len(rebuilt.register.qubits) == 6
    result = run_local(in_process, out)["counter"]
    assert sum(result.values()) == 60 and all(len(bits) == 6 for bits in result)

    # the API gives the same sequence for the same circuit
    import runpy

    circuit = runpy.run_path(str(script), run_name="not_main")["circuit"]
    sequence = qpp_sequence(circuit, "DigitalAnalogDevice")
    assert json.loads(sequence.to_abstract_repr()) == document["sequence"]
