"""What the target check needs from a human-readable QIR program, read without an LLVM
parser: the qubits it uses and the QIS functions it calls (the names Felis lists in a
target's ``instructions[].signature``, e.g. ``__quantum__qis__h__body:void (%Qubit*)``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_REQUIRED_QUBITS = re.compile(r'"required_num_qubits"\s*=\s*"(\d+)"')
# qubit 0 is written `%Qubit* null`, qubit n `%Qubit* inttoptr (i64 n to %Qubit*)`
_QUBIT_N = re.compile(r"inttoptr\s*\(\s*i64\s+(\d+)\s+to\s+%Qubit\*\s*\)")
_QUBIT_0 = re.compile(r"%Qubit\*\s+null\b")
_QIS_CALL = re.compile(r"\bcall\s+[^@\n]*@(__quantum__qis__[A-Za-z0-9_]+)\s*\(")


@dataclass(frozen=True)
class QirProgram:
    """The facts of a QIR text the target check compares with the target's description."""

    #: qubits the program needs: its entry point's ``required_num_qubits``, else the
    #: highest qubit index it names plus one (0 when it names none)
    qubits: int
    #: the ``__quantum__qis__*`` functions it calls
    functions: frozenset[str]


def read_qir(text: str) -> QirProgram:
    """Read ``text`` (human-readable QIR, as qiskit-alice-bob-provider writes it)."""
    declared = [int(n) for n in _REQUIRED_QUBITS.findall(text)]
    if declared:
        qubits = max(declared)
    else:
        indices = [int(n) for n in _QUBIT_N.findall(text)]
        if _QUBIT_0.search(text):
            indices.append(0)
        qubits = max(indices) + 1 if indices else 0
    return QirProgram(qubits, frozenset(_QIS_CALL.findall(text)))


def signature_function(signature: str) -> str:
    """The function name of a Felis instruction signature (what precedes its ``:``)."""
    return signature.split(":", 1)[0].strip()
