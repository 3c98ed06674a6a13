"""Payload builders for tests (built with the real libraries, never hand-written results)."""

from __future__ import annotations

import json
from pathlib import Path


def pulser_sequence_json(atoms: int = 4, duration: int = 500) -> str:
    """A small Pulser sequence (square register, constant global Rydberg pulse, measured)."""
    from pulser import Pulse, Register, Sequence
    from pulser.devices import AnalogDevice

    side = 2 if atoms == 4 else atoms
    register = (
        Register.square(side, spacing=6, prefix="q")
        if atoms == 4
        else Register.rectangle(1, atoms, spacing=6, prefix="q")
    )
    sequence = Sequence(register, AnalogDevice)
    sequence.declare_channel("rydberg", "rydberg_global")
    sequence.add(Pulse.ConstantPulse(duration, 2.0, 0.0, 0.0), "rydberg")
    sequence.measure("ground-rydberg")
    return sequence.to_abstract_repr()


def write_pulser_payload(path: Path, runs: int = 200, as_string: bool = False) -> Path:
    """Write ``{"sequence": ..., "job_runs": runs}`` (sequence as object or JSON string)."""
    text = pulser_sequence_json()
    sequence = text if as_string else json.loads(text)
    path.write_text(json.dumps({"sequence": sequence, "job_runs": runs}))
    return path


def write_long_estimator(path: Path, bindings: int = 200_000, qubits: int = 12) -> Path:
    """An estimator payload that takes minutes on the local simulator (for cancel tests)."""
    from qiskit import QuantumCircuit, qasm3
    from qiskit.circuit import Parameter

    theta = Parameter("t")
    circuit = QuantumCircuit(qubits)
    for q in range(qubits):
        circuit.rx(theta, q)
    for q in range(qubits - 1):
        circuit.cx(q, q + 1)
    pub = [qasm3.dumps(circuit), ["Z" * qubits], [[0.001 * i] for i in range(bindings)]]
    path.write_text(
        json.dumps({"program_id": "estimator", "parameters": {"pubs": [pub], "version": 2}})
    )
    return path
