"""The target check without qiskit: qubit count and instructions read from the backend's
JSON documents and from the payload's OpenQASM 3 text by a small scanner.

It decides only what it can read for sure: a circuit with more qubits than the backend is
refused, a circuit whose every instruction is one of the backend's own on those qubits
fits. Anything else (a gate the documents do not list there, OpenQASM it does not read,
circuits encoded for qiskit's RuntimeDecoder) is left to the full check in
:mod:`qrmi_tasks.isa`, which builds a qiskit ``Target``: it returns None then.
"""

from __future__ import annotations

import re
from typing import Any

# statements that declare, not act: they do not touch the target
_DECLARATION = re.compile(r"^(OPENQASM\b|include\b|bit\b|creg\b|input\b|const\b)")
_QUBITS = re.compile(
    r"^(?:qubit\s*(?:\[\s*(\d+)\s*\])?\s+(\w+)|qreg\s+(\w+)\s*(?:\[\s*(\d+)\s*\])?)$"
)
# `name(params) operands` / `target = measure operand`
_CALL = re.compile(r"^([A-Za-z_]\w*)\s*(?:\([^;{}]*\))?\s+([^=;{}()]+)$")
_MEASURE = re.compile(r"^[\w\[\]\s]+=\s*measure\s+([^;{}()]+)$")
_OPERAND = re.compile(r"^(?:\$(\d+)|([A-Za-z_]\w*)\s*(?:\[\s*(\d+)\s*\])?)$")
_DIRECTIVES = frozenset({"barrier"})
# the converter gives every qubit these (qiskit_ibm_runtime's convert_to_target)
_EVERY_QUBIT = frozenset({"measure", "delay"})


class Unreadable(Exception):
    """The scanner does not read this text for sure: let qiskit read it."""


def _statements(text: str) -> list[str]:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return [" ".join(part.split()) for part in text.split(";") if part.strip()]


def scan(text: str) -> tuple[int, list[tuple[str, tuple[int, ...]]]]:
    """(qubit count, [(instruction name, qubit indices)]) of an OpenQASM 3 program.

    Raises :class:`Unreadable` on anything beyond declarations, gate calls, measurements
    and barriers on physical (``$n``) or register qubits.
    """
    registers: dict[str, tuple[int, int]] = {}  # name -> (first index, size)
    size = 0
    physical = -1
    instructions: list[tuple[str, tuple[int, ...]]] = []

    def index(operand: str) -> list[int]:
        nonlocal physical
        match = _OPERAND.match(operand.strip())
        if not match:
            raise Unreadable(operand)
        if match.group(1) is not None:
            if registers:
                raise Unreadable("physical and register qubits mixed")
            physical = max(physical, int(match.group(1)))
            return [int(match.group(1))]
        name, item = match.group(2), match.group(3)
        if name not in registers:
            raise Unreadable(name)
        first, length = registers[name]
        if item is None:
            return list(range(first, first + length))
        if int(item) >= length:
            raise Unreadable(operand)
        return [first + int(item)]

    for statement in _statements(text):
        if _DECLARATION.match(statement):
            continue
        match = _QUBITS.match(statement)
        if match:
            if physical >= 0:
                raise Unreadable("physical and register qubits mixed")
            name = match.group(2) or match.group(3)
            length = int(match.group(1) or match.group(4) or 1)
            registers[name] = (size, length)
            size += length
            continue
        match = _MEASURE.match(statement)
        if match:
            for qubit in index(match.group(1)):
                instructions.append(("measure", (qubit,)))
            continue
        match = _CALL.match(statement)
        if not match or match.group(1) in ("gate", "def", "if", "for", "while", "box", "let"):
            raise Unreadable(statement)
        name = match.group(1)
        operands = [index(part) for part in match.group(2).split(",")]
        if name in _DIRECTIVES:
            continue
        if name == "measure" or any(len(qubits) != 1 for qubits in operands):
            raise Unreadable(statement)  # `measure q -> c` and register broadcasts
        instructions.append((name, tuple(qubits[0] for qubits in operands)))
    return (size if registers else physical + 1), instructions


def backend_instructions(
    configuration: dict[str, Any], properties: dict[str, Any] | None
) -> tuple[int, set[tuple[str, tuple[int, ...]]]]:
    """(qubit count, the (name, qubits) the documents say the backend runs)."""
    count = int(configuration["n_qubits"])
    basis = set(configuration.get("basis_gates") or ())
    offered: set[tuple[str, tuple[int, ...]]] = set()
    for gate in (properties or {}).get("gates") or ():
        name, qubits = gate.get("gate"), gate.get("qubits")
        if name not in basis or not isinstance(qubits, list):
            continue
        if any(
            p.get("name") == "operational" and not p.get("value")
            for p in gate.get("parameters") or ()
        ):
            continue
        offered.add((name, tuple(int(q) for q in qubits)))
    offered.update((name, (q,)) for name in _EVERY_QUBIT for q in range(count))
    return count, offered


def problems(
    circuits: list[Any], configuration: Any, properties: Any, backend: str
) -> list[str] | None:
    """The full check's problems where this light one can decide them, else None."""
    if not isinstance(configuration, dict) or not all(isinstance(c, str) for c in circuits):
        return None
    try:
        count, offered = backend_instructions(configuration, properties)
        scanned = [scan(text) for text in circuits]
    except (Unreadable, KeyError, TypeError, ValueError, AttributeError):
        return None
    found = []
    for position, (used, instructions) in enumerate(scanned):
        if used > count:
            found.append(f"pub {position} uses {used} qubits; {backend} has {count}")
        elif any(item not in offered for item in instructions):
            return None  # qiskit says which instruction, as the full check always has
    return found
