"""End-to-end runs of the real CLI on the embedded ``local`` resource.

The runner's command runs in this process (the ``in_process`` fixture: ``cli.main`` minus
its exit, in the environment the test gives); the ``local`` provider still starts its
worker process, as it does in production. One run stays a runner process, saying why.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import EXAMPLES, clean_env, run_runner
from payloads import write_pulser_payload

pytestmark = pytest.mark.timeout(300)


def _decode(text: str):
    from qiskit_ibm_runtime import RuntimeDecoder

    return json.loads(text, cls=RuntimeDecoder)


def test_bell_sampler_to_stdout_is_only_the_result():
    # a fresh process: the entry point end to end; main() ends the runner with os._exit,
    # and the result must still reach the stdout pipe, alone and whole, exit 0
    proc = run_runner("local", str(EXAMPLES / "qiskit" / "bell_sampler.json"), fresh=True)
    assert proc.returncode == 0, proc.stderr
    result = _decode(proc.stdout)  # stdout holds the result and nothing else
    counts = result[0].data.meas.get_counts()
    assert set(counts) == {"00", "11"}
    assert sum(counts.values()) == 1000
    assert 350 < counts["00"] < 650
    assert "completed" in proc.stderr and "{" not in proc.stderr


def test_bell_estimator_zz_is_one(in_process, tmp_path):
    out = tmp_path / "est.json"
    proc = in_process.run("local", str(EXAMPLES / "qiskit" / "bell_estimator.json"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    result = _decode(out.read_text())
    evs, stds = result[0].data.evs, result[0].data.stds
    params = json.loads((EXAMPLES / "qiskit" / "bell_estimator.json").read_text())["parameters"]
    precision = params.get("precision", 0.015625)
    # observables ZZ, XX, ZI on a Bell state: 1, 1, 0 within the requested precision
    assert np.allclose(evs, [1.0, 1.0, 0.0], atol=5 * precision)
    assert np.all(stds <= precision + 1e-12)


def test_plain_json_result_when_support_qiskit_false(in_process, tmp_path):
    doc = json.loads((EXAMPLES / "qiskit" / "bell_sampler.json").read_text())
    doc["parameters"]["support_qiskit"] = False
    payload = tmp_path / "p.json"
    payload.write_text(json.dumps(doc))
    proc = in_process.run("local", str(payload))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    samples = result["results"][0]["data"]["meas"]["samples"]
    assert result["results"][0]["data"]["meas"]["num_bits"] == 2
    assert set(samples) <= {"0x0", "0x3"} and len(samples) == 1000


def test_seeded_local_runs_are_reproducible(in_process, tmp_path):
    in_process.use_env(clean_env(local_QRMI_LOCAL_SEED="7"))
    payload = str(EXAMPLES / "qiskit" / "bell_sampler.json")
    first = in_process.run("local", payload)
    second = in_process.run("local", payload)
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout


@pytest.mark.parametrize("as_string", [False, True])
def test_pulser_payload_counts_sum_to_job_runs(in_process, tmp_path, as_string):
    payload = write_pulser_payload(tmp_path / "seq.json", runs=150, as_string=as_string)
    proc = in_process.run("local", str(payload), "-o", str(tmp_path / "out.json"))
    assert proc.returncode == 0, proc.stderr
    counter = json.loads((tmp_path / "out.json").read_text())["counter"]
    assert sum(counter.values()) == 150
    assert all(len(bits) == 4 and set(bits) <= {"0", "1"} for bits in counter)


def test_task_failure_is_exit_1_and_keeps_existing_output(in_process, tmp_path):
    doc = json.loads((EXAMPLES / "qiskit" / "bell_estimator.json").read_text())
    doc["parameters"]["pubs"][0][1] = ["ZZZ"]  # 3-qubit observable on a 2-qubit circuit
    payload = tmp_path / "bad.json"
    payload.write_text(json.dumps(doc))
    out = tmp_path / "out.json"
    out.write_text("previous result")
    proc = in_process.run("local", str(payload), "-o", str(out))
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: task ") and "failed" in last
    assert "Traceback" not in proc.stderr
    assert out.read_text() == "previous result"
    assert {p.name for p in tmp_path.iterdir()} == {"bad.json", "out.json"}  # no partial file


def test_config_file_declares_local_resource(in_process, tmp_path):
    config = tmp_path / "qrmi.json"
    config.write_text(
        json.dumps(
            {
                "resources": [
                    {"name": "sim", "type": "local", "environment": {"QRMI_LOCAL_SEED": "3"}}
                ]
            }
        )
    )
    payload = str(EXAMPLES / "qiskit" / "bell_sampler.json")
    a = in_process.run("sim", payload, "--config", str(config))
    in_process.use_env(clean_env(QRMI_CONFIG=str(config)))
    b = in_process.run("sim", payload)
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    assert a.stdout == b.stdout  # same seed from the file's environment
    # the process environment overrides the file
    in_process.use_env(clean_env(QRMI_CONFIG=str(config), sim_QRMI_LOCAL_SEED="4"))
    c = in_process.run("sim", payload)
    assert c.returncode == 0 and c.stdout != a.stdout


def test_simulator_takes_explicit_option_values_not_defaults():
    # In-process: the simulator behind `local` and the fakes. An explicit option is used
    # as given ("or" once turned an explicit value into the 4096 default).
    from qrmi_tasks.providers.local.sim import run_primitive

    bell = json.loads((EXAMPLES / "qiskit" / "bell_sampler.json").read_text())
    circuit = bell["parameters"]["pubs"][0][0]
    result = run_primitive("sampler", {"pubs": [[circuit]], "options": {"default_shots": 7}})
    assert result[0].data.meas.num_shots == 7
    result = run_primitive("sampler", {"pubs": [[circuit, None, 5]], "shots": 9})
    assert result[0].data.meas.num_shots == 5


def test_simulator_refuses_includes_itself(tmp_path):
    # The fakes hand pubs to the simulator without the runner's payload check.
    from qrmi_tasks.providers.local.sim import ExecutionError, run_primitive

    included = tmp_path / "defs.inc"
    included.write_text("leaked_file_content;\n")
    circuit = f'OPENQASM 2.0;\ninclude "{included}";\nqreg q[1];\ncreg c[1];\nmeasure q -> c;'
    with pytest.raises(ExecutionError, match="may only include") as info:
        run_primitive("sampler", {"pubs": [[circuit]]})
    assert "leaked_file_content" not in str(info.value)


# -- engines, limits and honest error bars ---------------------------------------------------


def _qasm_payload(tmp_path, circuit, program="sampler", **parameters):
    from qiskit import qasm3

    if program == "sampler":
        pub = [qasm3.dumps(circuit)]
    else:
        pub = [qasm3.dumps(circuit), parameters.pop("observables")]
    path = tmp_path / f"{program}.json"
    path.write_text(
        json.dumps(
            {"program_id": program, "parameters": {"pubs": [pub], "version": 2, **parameters}}
        )
    )
    return str(path)


def test_reference_engine_still_runs_sampler_and_estimator(in_process, tmp_path):
    in_process.use_env(clean_env(local_QRMI_LOCAL_ENGINE="reference"))
    proc = in_process.run("local", str(EXAMPLES / "qiskit" / "bell_sampler.json"))
    assert proc.returncode == 0, proc.stderr
    counts = _decode(proc.stdout)[0].data.meas.get_counts()
    assert set(counts) == {"00", "11"} and sum(counts.values()) == 1000
    proc = in_process.run("local", str(EXAMPLES / "qiskit" / "bell_estimator.json"))
    assert proc.returncode == 0, proc.stderr
    data = _decode(proc.stdout)[0].data
    precision = json.loads((EXAMPLES / "qiskit" / "bell_estimator.json").read_text())[
        "parameters"
    ].get("precision", 0.015625)
    assert np.allclose(data.evs, [1.0, 1.0, 0.0], atol=5 * precision)
    assert np.allclose(data.stds, precision)  # the noise it added, not 0


@pytest.mark.timeout(60)  # at once: what run_runner's timeout held a process to
def test_a_40_qubit_statevector_is_refused_at_once_with_exit_2(in_process, tmp_path):
    from qiskit import QuantumCircuit

    circuit = QuantumCircuit(40)
    circuit.rx(0.3, range(40))  # not Clifford: "automatic" means statevector
    circuit.cx(range(39), range(1, 40))
    circuit.measure_all()
    proc = in_process.run("local", _qasm_payload(tmp_path, circuit, shots=10))
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: a 40-qubit statevector simulation needs 17.6 TiB")
    assert "local_QRMI_LOCAL_METHOD=matrix_product_state" in last
    assert "QPU resource" in last and "Traceback" not in proc.stderr


def test_40_qubits_run_where_the_method_allows(in_process, tmp_path):
    from qiskit import QuantumCircuit

    ghz = QuantumCircuit(40)
    ghz.h(0)
    ghz.cx(range(39), range(1, 40))
    ghz.measure_all()
    # Clifford: "automatic" simulates it as a stabilizer tableau
    proc = in_process.run("local", _qasm_payload(tmp_path, ghz, shots=50))
    assert proc.returncode == 0, proc.stderr
    assert set(_decode(proc.stdout)[0].data.meas.get_counts()) == {"0" * 40, "1" * 40}
    # a weakly entangled non-Clifford circuit, on the method the memory message suggests
    chain = QuantumCircuit(40)
    chain.rx(0.3, range(40))
    chain.cx(range(39), range(1, 40))
    chain.measure_all()
    in_process.use_env(clean_env(local_QRMI_LOCAL_METHOD="matrix_product_state"))
    proc = in_process.run("local", _qasm_payload(tmp_path, chain, shots=50))
    assert proc.returncode == 0, proc.stderr
    assert _decode(proc.stdout)[0].data.meas.num_shots == 50


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("METHOD", "density", "local_QRMI_LOCAL_METHOD must be one of automatic, statevector"),
        ("DEVICE", "TPU", "local_QRMI_LOCAL_DEVICE must be one of auto, cpu, gpu"),
        ("ENGINE", "qutip", "local_QRMI_LOCAL_ENGINE must be aer or reference"),
    ],
)
def test_bad_engine_settings_are_exit_2(in_process, variable, value, expected):
    in_process.use_env(clean_env(**{f"local_QRMI_LOCAL_{variable}": value}))
    proc = in_process.run("local", str(EXAMPLES / "qiskit" / "bell_sampler.json"))
    assert proc.returncode == 2
    assert expected in proc.stderr.strip().splitlines()[-1]
    assert "submitted" not in proc.stderr


def test_reference_engine_refuses_other_methods(in_process):
    in_process.use_env(
        clean_env(local_QRMI_LOCAL_ENGINE="reference", local_QRMI_LOCAL_METHOD="stabilizer")
    )
    proc = in_process.run("local", str(EXAMPLES / "qiskit" / "bell_sampler.json"))
    assert proc.returncode == 2
    assert "ENGINE=reference simulates statevectors only" in proc.stderr


@pytest.mark.parametrize("engine", ["aer", "reference"])
def test_estimator_std_matches_its_deviation_from_the_exact_value(engine):
    # In-process, many seeds: the reported std must be the spread of the values around the
    # exact expectation (noisy), or 0 with the exact value (precision 0).
    from qiskit import QuantumCircuit, qasm3

    from qrmi_tasks.providers.local.sim import Engine, run_primitive

    circuit = QuantumCircuit(2)
    circuit.ry(0.7, 0)
    circuit.cx(0, 1)
    observables = ["ZZ", "XX", "ZI", "IX"]
    exact = np.array([1.0, np.sin(0.7), np.cos(0.7), 0.0])
    pub = [qasm3.dumps(circuit), observables]
    choice = Engine(qiskit=engine)

    result = run_primitive("estimator", {"pubs": [pub], "precision": 0.0}, choice)
    assert np.allclose(result[0].data.evs, exact, atol=1e-9)
    assert np.all(result[0].data.stds == 0)

    precision = 0.05
    z_scores = []
    for seed in range(25):
        params = {"pubs": [pub], "precision": precision, "options": {"seed_estimator": seed}}
        data = run_primitive("estimator", params, choice)[0].data
        assert np.allclose(data.stds, precision)
        z_scores.extend((data.evs - exact) / data.stds)
    z = np.array(z_scores)  # 100 draws of N(0, 1) if the std is honest
    assert np.all(np.abs(z) < 5)
    assert 0.6 < np.mean(z**2) < 1.5
    assert abs(np.mean(z)) < 0.5


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@pytest.mark.parametrize("engine", ["emu-sv", "emu-mps"])
@pytest.mark.skipif(
    not (_has("emu_sv") and _has("emu_mps")),
    reason="Pasqal's emulators are not installed (pip install 'qrmi-tasks[emulators]')",
)
def test_pulser_payload_on_pasqal_emulators(in_process, tmp_path, engine):
    payload = write_pulser_payload(tmp_path / "seq.json", runs=60)
    in_process.use_env(clean_env(local_QRMI_LOCAL_PULSER_ENGINE=engine, local_QRMI_LOCAL_SEED="5"))
    proc = in_process.run("local", str(payload), "-o", str(tmp_path / "out.json"))
    assert proc.returncode == 0, proc.stderr
    counter = json.loads((tmp_path / "out.json").read_text())["counter"]
    assert sum(counter.values()) == 60
    assert all(len(bits) == 4 and set(bits) <= {"0", "1"} for bits in counter)


@pytest.mark.skipif(_has("emu_sv"), reason="emu-sv is installed: the missing-package path")
def test_missing_pasqal_emulator_is_one_line_exit_2(in_process, tmp_path):
    payload = write_pulser_payload(tmp_path / "seq.json", runs=10)
    in_process.use_env(clean_env(local_QRMI_LOCAL_PULSER_ENGINE="emu-sv"))
    proc = in_process.run("local", str(payload))
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: local_QRMI_LOCAL_PULSER_ENGINE names emu-sv, but its Python")
    assert "package emu-sv is not installed" in last and "qrmi-tasks[emulators]" in last
    assert "submitted" not in proc.stderr


def _aer_gpu() -> bool:
    from qiskit_aer import AerSimulator

    return "GPU" in AerSimulator().available_devices()


@pytest.mark.skipif(not _aer_gpu(), reason="no GPU build of Aer (qiskit-aer-gpu) or no GPU visible")
def test_bell_sampler_on_gpu(in_process):
    in_process.use_env(clean_env(local_QRMI_LOCAL_DEVICE="gpu"))
    proc = in_process.run("local", str(EXAMPLES / "qiskit" / "bell_sampler.json"))
    assert proc.returncode == 0, proc.stderr
    counts = _decode(proc.stdout)[0].data.meas.get_counts()
    assert set(counts) == {"00", "11"} and sum(counts.values()) == 1000


@pytest.mark.skipif(_aer_gpu(), reason="a GPU is usable here: the no-GPU path")
def test_gpu_forced_without_one_is_exit_2(in_process):
    in_process.use_env(clean_env(local_QRMI_LOCAL_DEVICE="gpu"))
    proc = in_process.run("local", str(EXAMPLES / "qiskit" / "bell_sampler.json"))
    assert proc.returncode == 2
    assert "local_QRMI_LOCAL_DEVICE=gpu but Aer sees no GPU" in proc.stderr.strip().splitlines()[-1]


def test_gates_aer_has_no_kernel_for_are_translated():
    # Aer's primitives do not transpile; the reference ones expand definitions. A
    # payload that ran on the reference engine must run on Aer too.
    from qiskit import QuantumCircuit

    from qrmi_tasks.providers.local.sim import Engine, run_primitive

    flip = QuantumCircuit(1, name="flip")
    flip.x(0)
    circuit = QuantumCircuit(3, 3)
    circuit.x(0)
    circuit.append(flip.to_gate(), [1])  # a custom gate
    circuit.cs(0, 1)  # a standard gate Aer has no kernel for
    circuit.ch(1, 2)
    circuit.measure(range(3), range(3))
    from qiskit_ibm_runtime import RuntimeEncoder

    params = json.loads(json.dumps({"pubs": [[circuit]], "shots": 200}, cls=RuntimeEncoder))
    for engine in (Engine(), Engine(qiskit="reference")):
        result = run_primitive("sampler", params, engine)
        counts = result[0].data.c.get_counts()
        assert set(counts) == {"011", "111"}, engine
        assert 50 < counts["011"] < 150


def test_pulser_engine_setting_names_a_missing_package(monkeypatch):
    # Runs everywhere (the runner test above only where emu-sv is absent): the engine
    # table points at a module that does not exist.
    from qrmi_tasks.errors import ConfigError
    from qrmi_tasks.providers import declaration, resolve_resource
    from qrmi_tasks.providers.local import options as local_options

    monkeypatch.setitem(local_options.PULSER_MODULES, "emu-mps", ("no_such_emu_mps", "emu-mps"))
    resource = resolve_resource("local", clean_env(local_QRMI_LOCAL_PULSER_ENGINE="EMU-MPS"), None)
    with pytest.raises(ConfigError) as info:
        resource.settings(declaration("local").settings)
    assert str(info.value) == (
        "local_QRMI_LOCAL_PULSER_ENGINE names emu-mps, but its Python package emu-mps is not "
        "installed: pip install 'qrmi-tasks[emulators]', or unset it for qutip (got 'EMU-MPS')"
    )


@pytest.mark.timeout(60)  # at once: what run_runner's timeout held a process to
def test_a_40_atom_register_is_refused_at_once_on_qutip(in_process, tmp_path):
    from pulser import Pulse, Register, Sequence
    from pulser.devices import MockDevice

    sequence = Sequence(Register.rectangle(5, 8, spacing=6, prefix="q"), MockDevice)
    sequence.declare_channel("rydberg", "rydberg_global")
    sequence.add(Pulse.ConstantPulse(100, 2.0, 0.0, 0.0), "rydberg")
    sequence.measure("ground-rydberg")
    payload = tmp_path / "big.json"
    payload.write_text(json.dumps({"sequence": sequence.to_abstract_repr(), "job_runs": 10}))
    proc = in_process.run("local", str(payload))
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: emulating 40 atoms with qutip needs about ")
    assert "local_QRMI_LOCAL_PULSER_ENGINE=emu-mps" in last and "Traceback" not in proc.stderr
