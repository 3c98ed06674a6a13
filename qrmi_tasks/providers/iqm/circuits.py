"""The IQM JSON circuit job, as IQM Server's ``circuit`` jobs take it, read without IQM's
libraries: the circuits' operations, and whether a dynamic quantum architecture (DQA) has
them.

The model is iqm-station-control-client 14's ``PostJobsRequest`` (alias ``RunRequest``,
``CircuitJobDefinition``: ``circuits``, ``shots`` >= 1 (default 1),
``calibration_set_id``, ``qubit_mapping`` as a list of ``{logical_name, physical_name}``
or an object) whose circuits are iqm-pulse 15's ``Circuit`` (``name``, ``instructions``
of ``{name, locus, args, implementation}``; the older ``qubits`` for ``locus`` is read
too) or a QIR string; the DQA is ``DynamicQuantumArchitecture`` (``qubits``,
``computational_resonators``, ``gates: {name: {implementations: {impl: {loci}}}}``). The
check follows iqm-client 36's ``validation.validate_instruction``: ``barrier`` and
``delay`` need existing components only, ``measure`` and ``reset`` act on each of their
components alone (each must be in one of the gate's loci), ``cz`` is symmetric, the others
(``prx``, ``cc_prx``, ``move``) must be calibrated on their exact locus.
"""

from __future__ import annotations

import re
from typing import Any

#: need no calibration: any existing component will do
UNCALIBRATED = frozenset({"barrier", "delay"})
#: act on each component of their locus separately
FACTORIZABLE = frozenset({"measure", "reset"})
#: the order of the locus does not matter
SYMMETRIC = frozenset({"cz"})


def circuits(job: dict[str, Any]) -> list[Any]:
    """The job's circuits (objects, or QIR strings), ValueError when there are none."""
    found = job.get("circuits")
    if not isinstance(found, list) or not found:
        raise ValueError("'iqmjson' has no 'circuits' (a non-empty list of circuits)")
    return found


def shots(job: dict[str, Any]) -> int:
    """The job's shots (PostJobsRequest's default: 1), ValueError when not a positive int."""
    value = job.get("shots", 1)
    if type(value) is not int or value < 1:
        raise ValueError(f"'iqmjson.shots' must be an integer >= 1, got {value!r}")
    return value


def qubit_mapping(job: dict[str, Any]) -> dict[str, str]:
    """Logical -> physical qubit names (empty: the circuits name physical qubits)."""
    value = job.get("qubit_mapping")
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, list):
        return {str(i["logical_name"]): str(i["physical_name"]) for i in value}
    return {}


def instructions(circuit: dict[str, Any], where: str) -> list[tuple[str, tuple[str, ...], dict]]:
    """``(name, locus, args)`` of each operation of a circuit object."""
    found = circuit.get("instructions")
    if not isinstance(found, list):
        raise ValueError(f"{where} has no 'instructions' list")
    result = []
    for index, item in enumerate(found):
        locus = item.get("locus", item.get("qubits")) if isinstance(item, dict) else None
        if not isinstance(item.get("name") if locus is not None else None, str):
            raise ValueError(f"{where}, instruction {index}: needs a 'name' and a 'locus'")
        args = item.get("args") or {}
        result.append((item["name"], tuple(str(q) for q in locus), args))
    return result


def component_order(name: str) -> tuple[str, int]:
    """IQM's sort order of components: by the non-numeric part, then numerically
    (``QB2`` before ``QB10``)."""
    match = re.fullmatch(r"(.*?)(\d*)", name)
    prefix, number = match.group(1), match.group(2)  # type: ignore[union-attr]
    return prefix, int(number) if number else -1


def architecture_problems(job: dict[str, Any], dqa: dict[str, Any]) -> list[str]:
    """One line per circuit of ``job`` that the DQA cannot run (its first problem)."""
    components = set(dqa.get("qubits", [])) | set(dqa.get("computational_resonators", []))
    gates: dict[str, set[tuple[str, ...]]] = {}
    for name, info in (dqa.get("gates") or {}).items():
        implementations = (info or {}).get("implementations") or {}
        gates[name] = {tuple(locus) for impl in implementations.values() for locus in impl["loci"]}
    mapping = qubit_mapping(job)
    problems = []
    for index, circuit in enumerate(circuits(job)):
        if isinstance(circuit, str):
            continue  # QIR: the server compiles it
        where = f"circuit {index} ('{circuit.get('name', '')}')"
        problem = _first_problem(instructions(circuit, where), mapping, components, gates)
        if problem is not None:
            problems.append(f"{where}: {problem}")
    return problems


def _first_problem(
    operations: list[tuple[str, tuple[str, ...], dict]],
    mapping: dict[str, str],
    components: set[str],
    gates: dict[str, set[tuple[str, ...]]],
) -> str | None:
    for name, locus, _ in operations:
        physical = tuple(mapping.get(q, q) for q in locus)
        missing = [q for q in physical if q not in components]
        if missing:
            known = sorted(components, key=component_order)
            return (
                f"'{name}' on {', '.join(missing)}, which the quantum computer does not have "
                f"(it has {len(known)} components: {', '.join(known)})"
            )
        if name in UNCALIBRATED:
            continue
        if name not in gates:
            return (
                f"'{name}' is not an operation of the calibration set "
                f"(it has {', '.join(sorted(gates))})"
            )
        loci = gates[name]
        if name in FACTORIZABLE:
            allowed = {q for one in loci for q in one}
            bad = [q for q in physical if q not in allowed]
            if bad:
                return f"'{name}' is not calibrated on {', '.join(bad)}"
            continue
        if physical in loci or (name in SYMMETRIC and physical[::-1] in loci):
            continue
        return f"'{name}' is not calibrated on ({', '.join(physical)})"
    return None
