"""IQM Server payloads: Qiskit circuits as an IQM JSON ``circuit`` job.

IQM's own library cannot do this here: iqm-client 36's Qiskit adapter
(``iqm.qiskit_iqm``) pins ``qiskit<2.2`` and ``pydantic<2.13`` (this project runs Qiskit
2.6), and its ``create_run_request`` needs a live backend. So the IQM JSON is built from
its documented model: the circuits are transpiled to IQM's native operations (Qiskit's
``r`` and ``cz``, plus ``measure``, ``reset``, ``barrier``, ``delay``) and serialised
as iqm-client 36's ``qiskit_to_iqm.serialize_instructions`` does (``r`` -> ``prx``,
qubit ``i`` -> ``QB{i+1}`` or the architecture's ``i``-th qubit, measurement keys
``{creg}_{len}_{creg index}_{bit}``); the job is iqm-station-control-client 14's
``PostJobsRequest`` (``circuits``, ``shots``, ``calibration_set_id``). The payload has
the four keys qrmi's ``task_runner`` reads (``iqmjson``, ``job_type``, ``use_timeslot``,
``tag``), as qrmi's ``examples/task_runner/iqm/gen_iqm_json.py`` writes them.

With an architecture (the dynamic quantum architecture of a configured ``iqm-server``
resource, or one given as a dict) the circuits are laid out and routed on its qubits and
``cz`` couplings; without one they are written for a fully connected device with
``QB1..QBn`` (fine for ``local``) and an :class:`~generators.core.IsaWarning`.
"""

from __future__ import annotations

from typing import Any

from generators.core import GeneratorError, Payload, warn_not_isa
from qrmi_tasks.providers.iqm.circuits import component_order

#: IQM's native circuit operations, as Qiskit names them
BASIS = ("r", "cz", "measure", "reset", "delay", "id")  # barriers stay as they are


def _serialize(circuit: Any, names: list[str]) -> dict[str, Any]:
    """One transpiled Qiskit circuit as an iqm-pulse ``Circuit`` object."""
    instructions = []
    for item in circuit.data:
        op = item.operation
        locus = [names[circuit.find_bit(q).index] for q in item.qubits]
        if op.name == "r":
            args = {"angle": float(op.params[0]), "phase": float(op.params[1])}
            instructions.append({"name": "prx", "locus": locus, "args": args})
        elif op.name in ("cz", "reset", "barrier"):
            instructions.append({"name": op.name, "locus": locus, "args": {}})
        elif op.name == "measure":
            bit = circuit.find_bit(item.clbits[0])
            register, index = bit.registers[0]
            key = f"{register.name}_{len(register)}_{circuit.cregs.index(register)}_{index}"
            instructions.append({"name": "measure", "locus": locus, "args": {"key": key}})
        elif op.name == "delay":
            seconds = _seconds(float(op.params[0]), op.unit)
            instructions.append({"name": "delay", "locus": locus, "args": {"duration": seconds}})
        elif op.name == "id":
            continue
        else:
            raise GeneratorError(
                f"circuit '{circuit.name}': '{op.name}' is not an IQM native operation after "
                "transpiling (classical control is not supported here)"
            )
    return {"name": circuit.name, "instructions": instructions, "metadata": None}


def _seconds(value: float, unit: str) -> float:
    scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "ps": 1e-12, "dt": 1e-9}
    if unit not in scale:
        raise GeneratorError(f"delay in unit '{unit}' is not supported")
    return value * scale[unit]


def _coupling(architecture: dict[str, Any]) -> tuple[list[str], list[list[int]]]:
    """The architecture's qubits (IQM's order) and its ``cz`` couplings as index pairs."""
    qubits = sorted(architecture.get("qubits") or [], key=component_order)
    if not qubits:
        raise GeneratorError("the dynamic quantum architecture lists no qubits")
    index = {q: i for i, q in enumerate(qubits)}
    implementations = ((architecture.get("gates") or {}).get("cz") or {}).get("implementations")
    edges = set()
    for impl in (implementations or {}).values():
        for locus in impl.get("loci", []):
            if len(locus) == 2 and all(q in index for q in locus):
                a, b = index[locus[0]], index[locus[1]]
                edges.update({(a, b), (b, a)})  # cz is symmetric
    return qubits, [list(e) for e in sorted(edges)]


def iqm_payload(
    circuits: Any,
    *,
    shots: int = 1024,
    job_type: str = "circuit",
    use_timeslot: bool = False,
    tag: str | None = None,
    architecture: dict[str, Any] | None = None,
    calibration_set_id: str | None = None,
    optimization_level: int = 1,
    backend: str | None = None,
) -> Payload:
    """An ``iqm`` payload from Qiskit circuits (one circuit or a list).

    ``architecture``: a dynamic quantum architecture (JSON object) to transpile for; its
    ``calibration_set_id`` is written unless ``calibration_set_id`` is given. ``backend``
    names it in the payload's description.
    """
    from qiskit import QuantumCircuit, transpile
    from qiskit.transpiler import CouplingMap

    batch = [circuits] if isinstance(circuits, QuantumCircuit) else list(circuits)
    if not batch:
        raise GeneratorError("no circuit given")
    if job_type != "circuit":
        raise GeneratorError(
            f"job_type '{job_type}': only 'circuit' jobs are built from Qiskit circuits"
        )
    if type(shots) is not int or shots < 1:
        raise GeneratorError(f"shots must be an integer >= 1, got {shots!r}")
    if any(c.num_parameters for c in batch):
        raise GeneratorError("bind the circuits' parameters first (assign_parameters)")
    if architecture is not None:
        names, edges = _coupling(architecture)
        widest = max(c.num_qubits for c in batch)
        if widest > len(names):
            raise GeneratorError(
                f"a circuit uses {widest} qubits; the quantum computer has {len(names)}"
            )
        coupling = CouplingMap(edges) if edges else None
        calibration_set_id = calibration_set_id or architecture.get("calibration_set_id")
    else:
        warn_not_isa()
        widest = max(c.num_qubits for c in batch)
        names = [f"QB{i + 1}" for i in range(widest)]
        coupling = None
    try:
        transpiled = transpile(
            batch,
            basis_gates=list(BASIS),
            coupling_map=coupling,
            optimization_level=optimization_level,
            seed_transpiler=0,
        )
    except Exception as exc:
        raise GeneratorError(f"cannot transpile for IQM: {' '.join(str(exc).split())}") from None
    job: dict[str, Any] = {
        "circuits": [_serialize(c, names) for c in transpiled],
        "shots": shots,
    }
    if calibration_set_id:
        job["calibration_set_id"] = str(calibration_set_id)
    document = {"iqmjson": job, "job_type": job_type, "use_timeslot": use_timeslot, "tag": tag}
    return Payload("iqm", document, backend=backend)


def resource_architecture(
    resource: str, config_path: str | None = None, calibration_set: str = "default"
) -> dict[str, Any]:
    """The dynamic quantum architecture of configured ``iqm-server`` resource ``resource``."""
    from qrmi_tasks.providers import open_provider

    provider = open_provider(resource, config=config_path)
    if not hasattr(provider, "architecture"):
        raise GeneratorError(
            f"resource '{resource}' is a {provider.resource.type.name} resource; --resource "
            "needs an iqm-server resource"
        )
    return provider.architecture(calibration_set)
