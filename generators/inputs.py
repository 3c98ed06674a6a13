"""Reading the CLI's inputs: circuit files, observables, parameter values, user scripts."""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path
from typing import Any

from generators.core import GeneratorError
from qrmi_tasks.errors import first_line
from qrmi_tasks.readers import read_input

_QPY_MAGIC = b"QISKIT"
_HEADER = re.compile(rb"\A(?:\s|//[^\n]*\n|/\*.*?\*/)*OPENQASM\s+(\d+)", re.DOTALL)
# One term of a Pauli sum: optional sign, optional coefficient and '*', Pauli letters.
_TERM = re.compile(
    r"\s*([+-])?\s*(?:(\([^)]*\)|[\d.]+(?:[eE][+-]?\d+)?j?)\s*\*)?\s*([IXYZ]+)\s*", re.IGNORECASE
)


def read_bytes(path: str | Path, what: str) -> bytes:
    """A file's bytes, or a one-line GeneratorError naming what the file was for."""
    return read_input(path, what, error=GeneratorError)


# the name qiskit gives a circuit nobody named ("circuit-41"): useless in messages
_DEFAULT_NAME = re.compile(r"circuit-\d+")


def load_circuits(path: str | Path) -> list[Any]:
    """Circuits in an OpenQASM 2 or 3 file (told apart by the header) or a QPY file.

    Circuits without a name of their own are named after the file (``bell``, or
    ``ansatz[1]`` for the second circuit of a QPY file), so messages name what the user
    gave.
    """
    circuits = _load_circuits(path)
    stem = Path(path).stem
    for index, circuit in enumerate(circuits):
        if _DEFAULT_NAME.fullmatch(circuit.name or "circuit-0"):
            circuit.name = stem if len(circuits) == 1 else f"{stem}[{index}]"
    return circuits


def _load_circuits(path: str | Path) -> list[Any]:
    data = read_bytes(path, "circuit")
    if data.startswith(_QPY_MAGIC):
        import io

        from qiskit import qpy

        try:
            return list(qpy.load(io.BytesIO(data)))
        except Exception as exc:  # QpyError, struct errors on truncated files...
            raise GeneratorError(f"{path}: cannot read QPY: {first_line(exc)}") from None
    match = _HEADER.match(data)
    if match is None:
        raise GeneratorError(
            f"{path} is neither OpenQASM (no 'OPENQASM 2.0;' or 'OPENQASM 3.0;' header) nor QPY"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise GeneratorError(f"{path} is not UTF-8 text") from None
    from qiskit import qasm2, qasm3

    version = match.group(1)
    try:
        if version == b"2":
            # the legacy set makes qelib1.inc gates outside the standard library load too
            return [qasm2.loads(text, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)]
        if version == b"3":
            return [qasm3.loads(text)]
    except Exception as exc:  # QASM2ParseError, QASM3ImporterError, ...
        raise GeneratorError(
            f"{path}: cannot parse OpenQASM {version.decode()}: {first_line(exc)}"
        ) from None
    raise GeneratorError(f"{path}: unsupported OpenQASM version {version.decode()}")


def parse_observable(text: str) -> Any:
    """A ``SparsePauliOp`` from ``ZZ``, ``0.5*ZZ+XI`` or a JSON file ``{"ZZ": 0.5, ...}``."""
    path = Path(text)
    if path.is_file():
        try:
            data = json.loads(read_bytes(path, "observable").decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise GeneratorError(f"observable file {path} is not JSON: {exc}") from None
        if isinstance(data, str):
            return parse_observable(data)
        if not isinstance(data, dict) or not data:
            raise GeneratorError(
                f'observable file {path} must hold an object {{"ZZ": 0.5, ...}} of Pauli '
                "strings and coefficients"
            )
        terms = []
        for pauli, coeff in data.items():
            if not isinstance(coeff, int | float) or isinstance(coeff, bool):
                raise GeneratorError(
                    f"observable file {path}: the coefficient of {pauli} must be a number"
                )
            terms.append((pauli, coeff))
        return _sparse(terms, text)
    terms = []
    position = 0
    stripped = text.strip()
    while position < len(stripped):
        match = _TERM.match(stripped, position)
        if match is None or match.end() == position or (terms and not match.group(1)):
            raise GeneratorError(
                f"cannot read observable '{text}': write Pauli strings with optional "
                "coefficients, e.g. ZZ, 0.5*ZZ+XI, or give a JSON file"
            )
        sign, coeff_text, pauli = match.groups()
        try:
            coeff = complex(coeff_text.replace(" ", "")) if coeff_text else 1.0
        except ValueError:
            raise GeneratorError(
                f"cannot read observable '{text}': '{coeff_text}' is not a number"
            ) from None
        if coeff.imag == 0:
            coeff = coeff.real
        terms.append((pauli.upper(), -coeff if sign == "-" else coeff))
        position = match.end()
    if not terms:
        raise GeneratorError("empty observable; give Pauli strings such as ZZ")
    return _sparse(terms, text)


def _sparse(terms: list[tuple[str, Any]], text: str) -> Any:
    from qiskit.quantum_info import SparsePauliOp

    widths = {len(p) for p, _ in terms}
    if len(widths) != 1:
        raise GeneratorError(f"observable '{text}': all Pauli strings must have the same length")
    try:
        return SparsePauliOp.from_list(terms).simplify()
    except Exception as exc:  # bad letters reach here from JSON files
        raise GeneratorError(f"observable '{text}': {first_line(exc)}") from None


def parse_param_values(text: str) -> Any:
    """Parameter values from JSON text or a JSON file: an array (n-d) or ``{name: values}``."""
    path = Path(text)
    source = f"parameter values file {path}" if path.is_file() else "--param-values"
    raw = read_bytes(path, "parameter values").decode("utf-8-sig") if path.is_file() else text
    try:
        values = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise GeneratorError(
            f"{source} is not JSON (nor an existing file): {exc.msg} at column {exc.colno}"
        ) from None
    if isinstance(values, dict):
        return values
    if isinstance(values, list | int | float) and not isinstance(values, bool):
        import numpy as np

        try:
            return np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            pass
    raise GeneratorError(
        f"{source} must be a (nested) array of numbers, in the order of the circuit's "
        "parameters sorted by name, or an object {name: values}"
    )


def run_script(path: str | Path, names: tuple[str, ...], what: str) -> Any:
    """Execute a user's Python file and return the first variable of ``names`` it defines.

    It runs with ``__name__ == "__qrmi_gen__"``, so its ``if __name__ == "__main__":``
    block (writing files, plotting) is skipped.
    """
    path = Path(path)
    read_bytes(path, "script")  # one-line errors for missing or unreadable files
    from qrmi_tasks.quiet import quiet_import_warnings

    try:
        with quiet_import_warnings():
            namespace = runpy.run_path(str(path), run_name="__qrmi_gen__")
    except SystemExit as exc:
        raise GeneratorError(f"{path} exited ({exc.code}) instead of defining {what}") from None
    except Exception as exc:  # anything the user's code raises
        raise GeneratorError(f"{path} failed: {type(exc).__name__}: {first_line(exc)}") from None
    for name in names:
        if name in namespace:
            return namespace[name]
    wanted = " or ".join(f"'{n}'" for n in names)
    raise GeneratorError(f"{path} must define {what} in a variable named {wanted}")
