"""End-to-end runs of the real CLI on the embedded ``local`` resource."""

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
    proc = run_runner("local", str(EXAMPLES / "qiskit" / "bell_sampler.json"))
    assert proc.returncode == 0, proc.stderr
    result = _decode(proc.stdout)  # stdout holds the result and nothing else
    counts = result[0].data.meas.get_counts()
    assert set(counts) == {"00", "11"}
    assert sum(counts.values()) == 1000
    assert 350 < counts["00"] < 650
    assert "completed" in proc.stderr and "{" not in proc.stderr


def test_bell_estimator_zz_is_one(tmp_path):
    out = tmp_path / "est.json"
    proc = run_runner("local", str(EXAMPLES / "qiskit" / "bell_estimator.json"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    result = _decode(out.read_text())
    evs, stds = result[0].data.evs, result[0].data.stds
    params = json.loads((EXAMPLES / "qiskit" / "bell_estimator.json").read_text())["parameters"]
    precision = params.get("precision", 0.015625)
    # observables ZZ, XX, ZI on a Bell state: 1, 1, 0 within the requested precision
    assert np.allclose(evs, [1.0, 1.0, 0.0], atol=5 * precision)
    assert np.all(stds <= precision + 1e-12)


def test_plain_json_result_when_support_qiskit_false(tmp_path):
    doc = json.loads((EXAMPLES / "qiskit" / "bell_sampler.json").read_text())
    doc["parameters"]["support_qiskit"] = False
    payload = tmp_path / "p.json"
    payload.write_text(json.dumps(doc))
    proc = run_runner("local", str(payload))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    samples = result["results"][0]["data"]["meas"]["samples"]
    assert result["results"][0]["data"]["meas"]["num_bits"] == 2
    assert set(samples) <= {"0x0", "0x3"} and len(samples) == 1000


def test_seeded_local_runs_are_reproducible(tmp_path):
    env = clean_env(local_QRMI_LOCAL_SEED="7")
    payload = str(EXAMPLES / "qiskit" / "bell_sampler.json")
    first = run_runner("local", payload, env=env)
    second = run_runner("local", payload, env=env)
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout


@pytest.mark.parametrize("as_string", [False, True])
def test_pulser_payload_counts_sum_to_job_runs(tmp_path, as_string):
    payload = write_pulser_payload(tmp_path / "seq.json", runs=150, as_string=as_string)
    proc = run_runner("local", str(payload), "-o", str(tmp_path / "out.json"))
    assert proc.returncode == 0, proc.stderr
    counter = json.loads((tmp_path / "out.json").read_text())["counter"]
    assert sum(counter.values()) == 150
    assert all(len(bits) == 4 and set(bits) <= {"0", "1"} for bits in counter)


def test_task_failure_is_exit_1_and_keeps_existing_output(tmp_path):
    doc = json.loads((EXAMPLES / "qiskit" / "bell_estimator.json").read_text())
    doc["parameters"]["pubs"][0][1] = ["ZZZ"]  # 3-qubit observable on a 2-qubit circuit
    payload = tmp_path / "bad.json"
    payload.write_text(json.dumps(doc))
    out = tmp_path / "out.json"
    out.write_text("previous result")
    proc = run_runner("local", str(payload), "-o", str(out))
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: task ") and "failed" in last
    assert "Traceback" not in proc.stderr
    assert out.read_text() == "previous result"
    assert {p.name for p in tmp_path.iterdir()} == {"bad.json", "out.json"}  # no partial file


def test_config_file_declares_local_resource(tmp_path):
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
    a = run_runner("sim", payload, "--config", str(config))
    b = run_runner("sim", payload, env=clean_env(QRMI_CONFIG=str(config)))
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    assert a.stdout == b.stdout  # same seed from the file's environment
    # the process environment overrides the file
    c = run_runner("sim", payload, env=clean_env(QRMI_CONFIG=str(config), sim_QRMI_LOCAL_SEED="4"))
    assert c.returncode == 0 and c.stdout != a.stdout


def test_simulator_takes_explicit_option_values_not_defaults():
    # In-process: the simulator behind `local` and the fakes. An explicit option is used
    # as given ("or" once turned an explicit value into the 4096 default).
    from qrmi_tasks.providers.local_sim import run_primitive

    bell = json.loads((EXAMPLES / "qiskit" / "bell_sampler.json").read_text())
    circuit = bell["parameters"]["pubs"][0][0]
    result = run_primitive("sampler", {"pubs": [[circuit]], "options": {"default_shots": 7}})
    assert result[0].data.meas.num_shots == 7
    result = run_primitive("sampler", {"pubs": [[circuit, None, 5]], "shots": 9})
    assert result[0].data.meas.num_shots == 5


def test_simulator_refuses_includes_itself(tmp_path):
    # The fakes hand pubs to the simulator without the runner's payload check.
    from qrmi_tasks.providers.local_sim import ExecutionError, run_primitive

    included = tmp_path / "defs.inc"
    included.write_text("leaked_file_content;\n")
    circuit = f'OPENQASM 2.0;\ninclude "{included}";\nqreg q[1];\ncreg c[1];\nmeasure q -> c;'
    with pytest.raises(ExecutionError, match="may only include") as info:
        run_primitive("sampler", {"pubs": [[circuit]]})
    assert "leaked_file_content" not in str(info.value)
