"""Execute payloads on local simulators: Qiskit reference primitives and Pulser's emulator.

Shared by the ``local`` resource's worker process and by the test fakes of the cloud
services, so every fake returns results computed the same way a real run would be.
Imports qiskit / pulser; never import this module from the runner process.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np

from qrmi_tasks.payload import qasm_include_problem, qasm_version

IBM_DEFAULT_SHOTS = 4096
IBM_DEFAULT_PRECISION = 0.015625


class ExecutionError(Exception):
    """The payload is well-formed JSON but cannot be executed (bad circuit, bad pub...)."""


def _runtime_json():
    from qiskit_ibm_runtime import RuntimeDecoder, RuntimeEncoder

    return RuntimeDecoder, RuntimeEncoder


def _load_circuit(circuit: Any, where: str):
    from qiskit import QuantumCircuit, qasm2, qasm3

    if isinstance(circuit, QuantumCircuit):
        return circuit
    if not isinstance(circuit, str):
        raise ExecutionError(f"{where}: circuit must be an OpenQASM string or encoded QPY")
    # checked again here, not only in the payload check: the fakes run pubs directly
    problem = qasm_include_problem(circuit)
    if problem:
        raise ExecutionError(f"{where}: {problem}")
    try:
        if qasm_version(circuit) == 2:
            return qasm2.loads(
                circuit,
                include_path=(),  # only the built-in qelib1.inc; never the file system
                custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS,
            )
        return qasm3.loads(circuit)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExecutionError(f"{where}: cannot parse OpenQASM: {first}") from None


def _bindings(circuit, values: Any, where: str):
    """Parameter values as a BindingsArray-coercible object."""
    from qiskit.primitives.containers.bindings_array import BindingsArray

    if values is None:
        return None
    if isinstance(values, BindingsArray):
        return values
    if isinstance(values, dict):
        data = {}
        for key, vals in values.items():
            # IBM's encoding keys a group of parameters as "(a, b)"
            names = tuple(n.strip() for n in str(key).strip("()").split(",") if n.strip())
            data[names if len(names) > 1 else names[0]] = np.asarray(vals, dtype=float)
        try:
            return BindingsArray.coerce(data)
        except Exception as exc:
            raise ExecutionError(f"{where}: bad parameter values: {exc}") from None
    array = np.asarray(values, dtype=float)
    if array.ndim == 0:
        array = array.reshape(1)
    if circuit.num_parameters and array.shape[-1] != circuit.num_parameters:
        raise ExecutionError(
            f"{where}: {array.shape[-1]} parameter value(s) per binding, circuit has "
            f"{circuit.num_parameters} parameter(s)"
        )
    return array


def _compact(circuit, observables: Any = None, where: str = "pub"):
    """Simulate only the qubits an ISA circuit uses; narrow its observables to match.

    An ISA circuit names physical qubits (``$57``): OpenQASM 3 import sizes it by the
    highest one, and its observables span the whole backend (133 qubits on Heron). Qubits
    that no instruction touches and no observable acts on stay in |0> and are left out,
    so a 2-qubit job for a 133-qubit backend is a 2-qubit simulation.
    """
    from qiskit.circuit import QuantumCircuit

    if circuit.qregs:
        return circuit, observables  # declared qubits (``qubit[2] q``), not physical ones
    labels = None
    width = circuit.num_qubits
    if observables is not None:
        from qiskit.primitives.containers.observables_array import ObservablesArray

        try:
            array = ObservablesArray.coerce(observables)
        except Exception as exc:
            raise ExecutionError(f"{where}: bad observables: {exc}") from None
        if array.num_qubits < width:
            return circuit, observables  # the estimator reports the mismatch
        width, labels = array.num_qubits, array.tolist()
    needed = {circuit.find_bit(q).index for inst in circuit.data for q in inst.qubits}
    for label in _labels(labels):
        needed.update(width - 1 - k for k, letter in enumerate(label) if letter != "I")
    kept = sorted(needed) or [0]
    if len(kept) == width == circuit.num_qubits:
        return circuit, observables
    compact = QuantumCircuit(len(kept), name=circuit.name, global_phase=circuit.global_phase)
    for register in circuit.cregs:
        compact.add_register(register)
    compact.add_bits([c for c in circuit.clbits if c not in set(compact.clbits)])
    position = {old: new for new, old in enumerate(kept)}
    for inst in circuit.data:
        qubits = [compact.qubits[position[circuit.find_bit(q).index]] for q in inst.qubits]
        compact.append(inst.operation, qubits, inst.clbits, copy=False)
    if labels is None:
        return compact, None

    def narrow(item):
        if isinstance(item, list):
            return [narrow(i) for i in item]
        return {"".join(k[width - 1 - q] for q in reversed(kept)): c for k, c in item.items()}

    return compact, narrow(labels)


def _labels(labels):
    if isinstance(labels, list):
        for item in labels:
            yield from _labels(item)
    elif isinstance(labels, dict):
        yield from labels


def decode_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """Decode RuntimeEncoder-typed values (``{"__type__": ...}``) inside primitive params."""
    decoder, _ = _runtime_json()
    return json.loads(json.dumps(params), cls=decoder)


def run_primitive(program_id: str, params: dict[str, Any]):
    """Run EstimatorV2/SamplerV2 parameters on qiskit's statevector primitives.

    Returns the ``PrimitiveResult``.
    """
    from qiskit.primitives import StatevectorEstimator, StatevectorSampler

    params = decode_parameters(params)
    options = params.get("options") or {}
    pubs_in = params.get("pubs") or []
    if program_id == "sampler":
        shots = _first_set(params.get("shots"), options.get("default_shots"), IBM_DEFAULT_SHOTS)
        seed = (options.get("simulator") or {}).get("seed_simulator")
        pubs = []
        for i, pub in enumerate(pubs_in):
            circuit = _load_circuit(pub[0], f"pubs[{i}]")
            if not circuit.num_clbits:
                raise ExecutionError(f"pubs[{i}]: sampler circuit has no measurements")
            circuit, _ = _compact(circuit)
            values = _bindings(circuit, pub[1] if len(pub) > 1 else None, f"pubs[{i}]")
            pub_shots = pub[2] if len(pub) > 2 and pub[2] is not None else None
            pubs.append((circuit, values, pub_shots))
        sampler = StatevectorSampler(default_shots=int(shots), seed=seed)
        return _run(sampler, pubs)
    if program_id == "estimator":
        precision = _first_set(params.get("precision"), options.get("default_precision"))
        if precision is None and options.get("default_shots") is not None:
            precision = 1 / np.sqrt(options["default_shots"])
        seed = options.get("seed_estimator")
        pubs = []
        for i, pub in enumerate(pubs_in):
            circuit = _load_circuit(pub[0], f"pubs[{i}]")
            circuit = circuit.remove_final_measurements(inplace=False)
            circuit, observables = _compact(circuit, pub[1], f"pubs[{i}]")
            values = _bindings(circuit, pub[2] if len(pub) > 2 else None, f"pubs[{i}]")
            pub_precision = pub[3] if len(pub) > 3 else None
            pubs.append((circuit, observables, values, pub_precision))
        estimator = StatevectorEstimator(
            default_precision=float(precision if precision is not None else IBM_DEFAULT_PRECISION),
            seed=seed,
        )
        return _run(estimator, pubs)
    raise ExecutionError(f"unknown program_id {program_id!r}")


def _first_set(*values: Any) -> Any:
    """The first value that is not None: an explicit 0 is a value, not "unset"."""
    return next((value for value in values if value is not None), None)


def _run(primitive, pubs):
    try:
        return primitive.run(pubs).result()
    except ExecutionError:
        raise
    except Exception as exc:  # qiskit's coercion errors: shape, observables, parameters
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExecutionError(f"cannot run the pubs: {first}") from None


def encode_primitive_result(result, support_qiskit: bool = True) -> str:
    """Serialize a PrimitiveResult as Qiskit Runtime does.

    ``support_qiskit`` true (the default): RuntimeEncoder form, decodable with
    RuntimeDecoder. False: the plain-JSON form of IBM's ``*_result_v2`` schemas.
    """
    _, encoder = _runtime_json()
    if support_qiskit:
        return json.dumps(result, cls=encoder)
    return json.dumps(plain_result(result), cls=encoder)


def _samples(bit_array) -> Any:
    """Hex strings per shot, nested like the pub's shape."""

    def row_hex(rows: np.ndarray) -> list[str]:
        return [hex(int.from_bytes(r.tobytes(), "big")) for r in rows]

    array = bit_array.array
    if array.ndim == 2:
        return row_hex(array)
    return [_samples_nd(array[i], row_hex) for i in range(array.shape[0])]


def _samples_nd(array: np.ndarray, row_hex):
    if array.ndim == 2:
        return row_hex(array)
    return [_samples_nd(array[i], row_hex) for i in range(array.shape[0])]


def plain_result(result) -> dict[str, Any]:
    """The plain-JSON (``support_qiskit: false``) form of a PrimitiveResult."""
    from qiskit.primitives.containers import BitArray

    pubs = []
    for pub in result:
        data: dict[str, Any] = {}
        for name, value in pub.data.items():
            if isinstance(value, BitArray):
                data[name] = {"samples": _samples(value), "num_bits": value.num_bits}
            else:
                data[name] = np.asarray(value).tolist()
        pubs.append({"data": data, "metadata": pub.metadata})
    return {"results": pubs, "metadata": dict(result.metadata)}


def run_pulser(sequence_json: str, runs: int, seed: int | None = None) -> dict[str, int]:
    """Emulate a Pulser abstract-repr sequence and sample ``runs`` shots: {bitstring: count}."""
    from qrmi_tasks.quiet import quiet_import_warnings

    with quiet_import_warnings():
        from pulser import Sequence
        from pulser_simulation import QutipEmulator

    try:
        sequence = Sequence.from_abstract_repr(sequence_json)
    except Exception as exc:
        raise ExecutionError(f"invalid Pulser sequence: {exc}") from None
    if sequence.is_parametrized():
        raise ExecutionError("the sequence has unbuilt variables; call build() before serializing")
    try:
        emulator = QutipEmulator.from_sequence(sequence)
        final = emulator.run()
        if seed is not None:
            np.random.seed(seed)
        counts: Counter[str] = final.sample_final_state(N_samples=runs)
    except Exception as exc:
        raise ExecutionError(f"emulation failed: {exc}") from None
    return {bits: int(n) for bits, n in sorted(counts.items())}
