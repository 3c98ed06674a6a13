"""The worker's JSON codec gives exactly qiskit-ibm-runtime's bytes, without importing it.

``local_codec`` exists so the ``local`` worker skips qiskit-ibm-runtime's ~2 s import; these
tests pin its output to ``RuntimeEncoder`` / ``RuntimeDecoder`` on the results and inputs
the worker actually handles.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys

import numpy as np
import pytest
from qiskit import QuantumCircuit, qasm3
from qiskit.circuit import Parameter
from qiskit.primitives.containers.bindings_array import BindingsArray
from qiskit.primitives.containers.observables_array import ObservablesArray
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime import RuntimeDecoder, RuntimeEncoder

from qrmi_tasks.providers.local import codec as local_codec
from qrmi_tasks.providers.local.sim import Engine, plain_result, run_primitive

pytestmark = pytest.mark.timeout(120)


def _bell(measure: bool = True) -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    if measure:
        circuit.measure_all()
    return circuit


def _parametrized() -> QuantumCircuit:
    theta = Parameter("theta")
    circuit = QuantumCircuit(3)
    circuit.rx(theta, [0, 1, 2])
    circuit.cx(0, 1)
    circuit.measure_all()
    return circuit


def _results():
    bell, param = qasm3.dumps(_bell()), qasm3.dumps(_parametrized())
    values = [[[0.1], [0.2]], [[0.3], [0.4]]]  # a 2x2 pub shape
    for engine in (Engine(), Engine(qiskit="reference")):
        yield run_primitive("sampler", {"pubs": [[bell], [param, values, 17]], "shots": 33}, engine)
        yield run_primitive(
            "estimator",
            {"pubs": [[qasm3.dumps(_bell(False)), ["ZZ", "XX", "IZ"]]], "precision": 0.05},
            engine,
        )


@pytest.mark.parametrize("index", range(4))
def test_results_encode_like_runtime_encoder(index):
    result = list(_results())[index]
    assert local_codec.encode(result) == json.dumps(result, cls=RuntimeEncoder)
    plain = plain_result(result)
    assert local_codec.encode(plain) == json.dumps(plain, cls=RuntimeEncoder)


def test_other_values_encode_like_runtime_encoder():
    values = {
        "int64": np.int64(7),
        "complex": 1 + 2j,
        "set": {3},
        "when": datetime.datetime(2025, 1, 2, 3, 4, 5),
        "objects": np.array([{"a": 1}], dtype=object),
        "floats": np.linspace(0, 1, 5).reshape(5, 1),
        "operator": SparsePauliOp(["XZ", "YY"], [0.5, 0.25]),  # handed to RuntimeEncoder
    }
    assert local_codec.encode(values) == json.dumps(values, cls=RuntimeEncoder)


def test_inputs_decode_like_runtime_decoder():
    theta = Parameter("theta")
    params = {
        "pubs": [
            [_bell(), None, 10],
            [_parametrized(), np.array([[0.1], [0.2]])],
            [_parametrized(), BindingsArray({theta: [0.3, 0.4]})],
            [_bell(False), ObservablesArray(["ZZ", "XX"]), None, 0.1],
        ],
        "options": {"list": np.array([1, 2]), "complex": 1j, "set": {1, 2}},
    }
    text = json.dumps(params, cls=RuntimeEncoder)
    ours, theirs = local_codec.decode(text), json.loads(text, cls=RuntimeDecoder)
    assert ours["pubs"][0] == theirs["pubs"][0]
    assert ours["pubs"][1][0] == theirs["pubs"][1][0]
    np.testing.assert_array_equal(ours["pubs"][1][1], theirs["pubs"][1][1])
    ours_bound, theirs_bound = ours["pubs"][2][1], theirs["pubs"][2][1]
    assert ours_bound.shape == theirs_bound.shape and list(ours_bound.data) == [("theta",)]
    np.testing.assert_array_equal(ours_bound.data[("theta",)], theirs_bound.data[("theta",)])
    assert ours["pubs"][3][1].tolist() == theirs["pubs"][3][1].tolist()
    assert ours["options"]["complex"] == theirs["options"]["complex"] == 1j
    assert ours["options"]["set"] == theirs["options"]["set"] == {1, 2}
    np.testing.assert_array_equal(ours["options"]["list"], theirs["options"]["list"])


def test_a_type_it_does_not_know_goes_to_runtime_decoder():
    text = json.dumps({"op": SparsePauliOp(["XZ"])}, cls=RuntimeEncoder)
    decoded = local_codec.decode(text)
    assert decoded["op"] == SparsePauliOp(["XZ"])


def test_worker_never_imports_qiskit_ibm_runtime_for_a_bell_payload(tmp_path):
    # the point of the codec: the import would cost the worker about two seconds
    from helpers import EXAMPLES

    (tmp_path / "payload.json").write_text((EXAMPLES / "qiskit" / "bell_sampler.json").read_text())
    code = (
        "import sys; from qrmi_tasks.providers.local.worker import main; "
        f"rc = main([{str(tmp_path)!r}]); "
        "print(rc, 'qiskit_ibm_runtime' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["0", "False"], proc.stderr
    result = json.loads((tmp_path / "result.json").read_text(), cls=RuntimeDecoder)
    assert sum(result[0].data.meas.get_counts().values()) == 1000
