"""Alice & Bob Felis payloads: a Qiskit circuit as human-readable QIR, converted offline by
Alice & Bob's own library (qiskit-alice-bob-provider 3.x, ``pip install
'qrmi-tasks[alice-bob]'``), as its remote backend's ``run`` does before uploading: the
``EnsurePreparationPass`` (every qubit starts with an explicit preparation), then
``circuit_to_qir``. Felis transpiles the program to the target's gate set itself.
"""

from __future__ import annotations

from typing import Any

from generators.core import GeneratorError, Payload
from qrmi_tasks.errors import first_line

#: Felis's name of the shots input param (qiskit-alice-bob-provider maps ``shots`` to it)
SHOTS_PARAM = "nbShots"


def circuit_qir(circuit: Any) -> str:
    """The human-readable QIR of ``circuit`` (a ``QuantumCircuit``), as Alice & Bob's
    provider uploads it."""
    from qiskit import QuantumCircuit

    if not isinstance(circuit, QuantumCircuit):
        raise GeneratorError(f"expected a qiskit QuantumCircuit, not {type(circuit).__name__}")
    try:
        from qiskit.transpiler import PassManager
        from qiskit_alice_bob_provider.plugins.state_preparation import EnsurePreparationPass
        from qiskit_alice_bob_provider.qir import circuit_to_qir
    except ImportError as exc:
        raise GeneratorError(
            f"Alice & Bob payloads need qiskit-alice-bob-provider ({first_line(exc)}): "
            "pip install 'qrmi-tasks[alice-bob]'"
        ) from None
    try:
        prepared = PassManager([EnsurePreparationPass()]).run(circuit)
        return circuit_to_qir(prepared)
    except (ValueError, RuntimeError) as exc:
        raise GeneratorError(
            f"circuit '{circuit.name}' has no QIR form: {first_line(exc)}"
        ) from None


def felis_payload(
    circuit: Any, shots: int | None = None, input_params: dict[str, Any] | None = None
) -> Payload:
    """A QIR payload ``{"human_qir": <QIR text>, "input_params": {...}}`` for an
    ``alice-bob-felis`` resource; ``shots`` sets ``input_params["nbShots"]``."""
    params = dict(input_params or {})
    if shots is not None:
        if type(shots) is not int or shots < 1:
            raise GeneratorError(f"shots must be an integer >= 1, got {shots!r}")
        params[SHOTS_PARAM] = shots
    return Payload("qir", {"human_qir": circuit_qir(circuit), "input_params": params})
