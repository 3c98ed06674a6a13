"""Run an IQM JSON circuit job on Qiskit Aer: qrmi's IQM Server result document.

Each circuit (:mod:`qrmi_tasks.providers.iqm.circuits` reads the model) becomes a Qiskit
circuit over its components in IQM's order: ``prx(angle, phase)`` is Qiskit's
``r(angle, phase)`` (the same matrix: exp(-i (X cos phase + Y sin phase) angle / 2), IQM's
definition), ``cz`` is ``cz``, ``measure`` measures each locus qubit into a clbit of its
key, ``cc_prx`` is an ``r`` under ``if_test`` on the clbit its ``feedback_key`` wrote,
``reset`` and ``barrier`` are themselves, ``delay`` does nothing in an ideal simulation.
``move`` (IQM Star's computational resonator) is not simulated.

The result has IQM Server's two artifacts (iqm-station-control-client 14
``CircuitMeasurementResults``, ``CircuitMeasurementCounts``): per circuit,
``measurements`` ``{key: [[bit per locus qubit] per shot]}`` and ``measurement_counts``
``{"measurement_keys": [keys in circuit order], "counts": {bitstring: n}}``, a bitstring
being the keys' results concatenated in that order, each key's qubits in locus order.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from qrmi_tasks.providers.iqm import circuits as model
from qrmi_tasks.providers.local.sim import Engine, ExecutionError, _check_memory


def _build(circuit: dict[str, Any], where: str, mapping: dict[str, str]):
    """(Qiskit circuit, [(key, [clbit index per locus qubit])]) of one IQM circuit."""
    from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister

    operations = model.instructions(circuit, where)
    names = sorted(
        {mapping.get(q, q) for _, locus, _ in operations for q in locus},
        key=model.component_order,
    )
    index = {name: i for i, name in enumerate(names)}
    keys: list[tuple[str, list[int]]] = []
    feedback: dict[tuple[str, str], int] = {}  # (feedback_key, qubit) -> clbit
    clbits = 0
    for name, locus, args in operations:
        if name == "measure":
            if any(key == args.get("key") for key, _ in keys):
                raise ExecutionError(f"{where}: measurement key {args.get('key')!r} is used twice")
            keys.append((str(args.get("key")), list(range(clbits, clbits + len(locus)))))
            for offset, qubit in enumerate(locus):
                if args.get("feedback_key"):
                    feedback[(args["feedback_key"], mapping.get(qubit, qubit))] = clbits + offset
            clbits += len(locus)
    qc = QuantumCircuit(QuantumRegister(max(1, len(names)), "q"), ClassicalRegister(clbits, "c"))
    measured = iter(keys)
    for name, locus, args in operations:
        qubits = [index[mapping.get(q, q)] for q in locus]
        try:
            if name == "prx":
                qc.r(float(args["angle"]), float(args["phase"]), qubits[0])
            elif name == "cz":
                qc.cz(qubits[0], qubits[1])
            elif name == "measure":
                _, bits = next(measured)
                for qubit, bit in zip(qubits, bits, strict=True):
                    qc.measure(qubit, bit)
            elif name == "cc_prx":
                source = feedback[(args["feedback_key"], args["feedback_qubit"])]
                with qc.if_test((qc.clbits[source], 1)):
                    qc.r(float(args["angle"]), float(args["phase"]), qubits[0])
            elif name == "reset":
                for qubit in qubits:
                    qc.reset(qubit)
            elif name == "barrier":
                qc.barrier(qubits)
            elif name == "delay":
                continue
            else:
                raise ExecutionError(f"{where}: operation '{name}' is not simulated here")
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ExecutionError(f"{where}: bad '{name}' operation ({exc!r})") from None
    return qc, keys


def run_iqm_job(job_text: str, seed: int | None = None, engine: Engine | None = None) -> str:
    """The qrmi result document (JSON text) of an IQM JSON ``circuit`` job.

    ``engine`` (the ``local`` resource's settings): Aer's method (``automatic``: Aer
    chooses), and the memory check that refuses a state the job cannot hold (Rejected).
    """
    engine = engine or Engine()
    from qiskit_aer import AerSimulator

    try:
        job = json.loads(job_text)
        batch = model.circuits(job)
        shots = model.shots(job)
        mapping = model.qubit_mapping(job)
    except (ValueError, KeyError, TypeError) as exc:
        raise ExecutionError(str(exc)) from None
    built = []
    for i, circuit in enumerate(batch):
        if not isinstance(circuit, dict):
            raise ExecutionError(f"circuit {i}: QIR circuits are not simulated here")
        try:
            built.append(_build(circuit, f"circuit {i} ('{circuit.get('name', '')}')", mapping))
        except ValueError as exc:
            raise ExecutionError(str(exc)) from None
    width = max(qc.num_qubits for qc, _ in built)
    method = engine.method
    if method in ("automatic", "statevector", "density_matrix"):
        dense = "statevector" if method == "automatic" else method
        _check_memory(engine, dense, width, f"{width}-qubit {dense}")
    simulator = AerSimulator(method=method, seed_simulator=seed)
    result = simulator.run([qc for qc, _ in built], shots=shots, memory=True).result()
    measurements, counts = [], []
    for i, (qc, keys) in enumerate(built):
        # Qiskit writes clbit 0 rightmost; no clbit at all: one empty string per shot
        memory = result.get_memory(i) if qc.num_clbits else [""] * shots
        shots_bits = [text.replace(" ", "")[::-1] for text in memory]
        measurements.append(
            {key: [[int(bits[b]) for b in clbits] for bits in shots_bits] for key, clbits in keys}
        )
        histogram = Counter(
            "".join(bits[b] for _, clbits in keys for b in clbits) for bits in shots_bits
        )
        counts.append({"measurement_keys": [k for k, _ in keys], "counts": dict(histogram)})
    return json.dumps(
        {"measurement_counts": counts, "measurements": measurements}, indent=2, sort_keys=True
    )
