"""Does a payload's circuits fit a backend: qubit count and ISA (the backend's own
instructions on its own qubits)? Real QPUs refuse anything else, after the user has
waited in their queue; ``qrmi-gen validate --resource`` says so first."""

from __future__ import annotations

import json
from typing import Any

from qrmi_tasks.payload import QISKIT, CheckedPayload

# not instructions a backend runs: markers for the transpiler and the scheduler
_DIRECTIVES = frozenset({"barrier", "snapshot"})


def payload_circuits(payload: CheckedPayload) -> list[Any]:
    """The circuit of every pub of a Qiskit payload (OpenQASM 3 text or RuntimeEncoder)."""
    from qiskit import qasm3

    circuits = []
    for pub in payload.parameters["pubs"]:
        head = pub[0] if isinstance(pub, list) else pub
        if isinstance(head, str):
            circuits.append(qasm3.loads(head))
        else:
            from qiskit_ibm_runtime import RuntimeDecoder

            circuits.append(json.loads(json.dumps(head), cls=RuntimeDecoder))
    return circuits


def isa_problems(circuits: list[Any], target: Any, backend: str) -> list[str]:
    """One line per circuit that ``backend``'s ``target`` cannot run as it is."""
    problems = []
    for index, circuit in enumerate(circuits):
        if circuit.num_qubits > target.num_qubits:
            problems.append(
                f"pub {index} uses {circuit.num_qubits} qubits; {backend} has {target.num_qubits}"
            )
            continue
        for instruction in circuit.data:
            operation = instruction.operation
            if operation.name in _DIRECTIVES:
                continue
            qubits = tuple(circuit.find_bit(q).index for q in instruction.qubits)
            if not target.instruction_supported(operation.name, qubits):
                problems.append(
                    f"pub {index} is not an ISA circuit for {backend}: '{operation.name}' on "
                    f"qubit(s) {', '.join(map(str, qubits))} is not one of its instructions"
                )
                break
    return problems


def check_isa(payload: CheckedPayload, target: Any, backend: str) -> list[str]:
    """:func:`isa_problems` for a payload (none for a Pulser payload)."""
    if payload.kind != QISKIT:
        return []
    return isa_problems(payload_circuits(payload), target, backend)
