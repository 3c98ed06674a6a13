"""OpenQASM text to a qiskit ``QuantumCircuit``, through qiskit's native (Rust) importers
where they parse the program: the ``local`` worker and the runner's target check
(:mod:`qrmi_tasks.isa`) both read circuits here.

The native OpenQASM 3 importer (``qasm3.loads_experimental``) parses 10**5 gates in about
a second where the reference importer (``qiskit_qasm3_import``, ANTLR) takes 27 s; it
refuses, with an error, what it does not handle yet (hardware qubits, ``input``
parameters...), which then goes to the reference one. Imports qiskit.
"""

from __future__ import annotations

import warnings
from typing import Any

from qrmi_tasks.payload import qasm_version


def loads(text: str) -> Any:
    """The circuit of an OpenQASM 2 or 3 program; includes other than the standard ones
    are never read from the file system (the payload check refuses them first)."""
    from qiskit import qasm2, qasm3

    if qasm_version(text) == 2:
        return qasm2.loads(
            text,
            include_path=(),  # only the built-in qelib1.inc; never the file system
            custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS,
        )
    return native_qasm3(text) or qasm3.loads(text)


def native_qasm3(source: str) -> Any:
    """qiskit's native OpenQASM 3 importer, or None where it does not handle the program."""
    from qiskit import qasm3

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its ExperimentalWarning
            return qasm3.loads_experimental(source, include_path=())
    except Exception:
        return None
