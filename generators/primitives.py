"""SamplerV2 / EstimatorV2 payloads from Qiskit objects, as IBM's generator tools write them.

Each circuit becomes an OpenQASM 3 string (``qasm3.dumps`` with the options IBM's own
tools use), parameter values a nested list in the order of the circuit's parameters,
observables a list of ``{pauli: coeff}`` objects, with ``"version": 2`` and
``"support_qiskit": false`` (plain-JSON results).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from generators.core import GeneratorError, Payload, warn_not_isa
from generators.targets import NamedTarget, fake_target
from qrmi_tasks.errors import first_line


def resolve_target(target: Any) -> NamedTarget | None:
    """Accept a fake backend name, a ``Target``, a ``BackendV2`` or a :class:`NamedTarget`."""
    if target is None or isinstance(target, NamedTarget):
        return target
    if isinstance(target, str):
        return fake_target(target)
    from qiskit.transpiler import Target

    if isinstance(target, Target):
        return NamedTarget(getattr(target, "description", None) or "target", target)
    if hasattr(target, "target") and hasattr(target, "name"):  # a BackendV2
        return NamedTarget(str(target.name), target.target)
    raise GeneratorError(
        f"target must be a fake backend name, a qiskit Target or a backend, not "
        f"{type(target).__name__}"
    )


def _single(item: Any) -> bool:
    """Whether ``item`` is one pub (a circuit, a pub, or a tuple starting with a circuit)."""
    from qiskit import QuantumCircuit
    from qiskit.primitives.containers.estimator_pub import EstimatorPub
    from qiskit.primitives.containers.sampler_pub import SamplerPub

    if isinstance(item, QuantumCircuit | SamplerPub | EstimatorPub):
        return True
    # a tuple of circuits is a list of pubs, as for Qiskit's primitives' run()
    return (
        isinstance(item, tuple)
        and bool(item)
        and isinstance(item[0], QuantumCircuit)
        and not any(isinstance(x, QuantumCircuit) for x in item[1:])
    )


def _as_list(pubs: Any) -> list[Any]:
    if _single(pubs):
        return [pubs]
    if isinstance(pubs, Iterable) and not isinstance(pubs, str | bytes | Mapping):
        items = list(pubs)
        if items:
            return items
    raise GeneratorError(
        "give at least one circuit or pub: a QuantumCircuit, a tuple like Qiskit's "
        "primitives accept, or a list of them"
    )


def dumps_qasm3(circuit: Any) -> str:
    """OpenQASM 3 text of ``circuit`` with the exporter options IBM's tools use."""
    from qiskit import qasm3

    try:
        return qasm3.dumps(
            circuit,
            disable_constants=True,
            allow_aliasing=True,
            experimental=qasm3.ExperimentalFeatures.SWITCH_CASE_V1,
        )
    except Exception as exc:  # QASM3ExporterError for instructions without a definition
        raise GeneratorError(
            f"cannot export circuit '{circuit.name}' to OpenQASM 3: {first_line(exc)}"
        ) from None


def _transpile(circuits: list[Any], named: NamedTarget | None, optimization_level: int) -> list:
    if named is None:
        return circuits
    if optimization_level not in (0, 1, 2, 3):
        raise GeneratorError(f"optimization level must be 0 to 3, got {optimization_level}")
    from qiskit.transpiler import generate_preset_pass_manager

    for circuit in circuits:
        if circuit.num_qubits > named.target.num_qubits:
            raise GeneratorError(
                f"circuit '{circuit.name}' has {circuit.num_qubits} qubits but "
                f"{named.name} has {named.target.num_qubits}"
            )
    manager = generate_preset_pass_manager(
        optimization_level=optimization_level, target=named.target
    )
    try:
        return list(manager.run(circuits))
    except Exception as exc:  # TranspilerError: gates the target cannot synthesize...
        raise GeneratorError(f"cannot transpile for {named.name}: {first_line(exc)}") from None


def _values(pub: Any) -> list | None:
    """Parameter values as nested lists (circuit's parameter order), None if unparametrized."""
    if not pub.circuit.num_parameters:
        return None
    return pub.parameter_values.as_array(pub.circuit.parameters).tolist()


def _entry(head: list[Any], values: list | None, last: Any) -> list[Any]:
    """A pub as IBM's schemas lay it out: ``head``, then the optional parameter values
    and last slot (shots or precision), written only up to the last one that is set."""
    entry = list(head)
    if values is not None or last is not None:
        entry.append(values if values is not None else [])
    if last is not None:
        entry.append(last)
    return entry


def _prepare(
    kind: str, pubs: Any, observables: Any, target: Any, optimization_level: int
) -> tuple[list[Any], NamedTarget | None, list[Any]]:
    """Coerced pubs, the resolved target (None: warned that circuits are not ISA) and
    the circuits to emit (transpiled for the target)."""
    coerced = _coerce(kind, _as_list(pubs), observables)
    named = resolve_target(target)
    if named is None:
        warn_not_isa()
    return coerced, named, _transpile([p.circuit for p in coerced], named, optimization_level)


def _coerce(kind: str, items: list[Any], observables: Any) -> list[Any]:
    from qiskit import QuantumCircuit
    from qiskit.primitives.containers.estimator_pub import EstimatorPub
    from qiskit.primitives.containers.sampler_pub import SamplerPub

    pubs = []
    for index, item in enumerate(items):
        if kind == "estimator" and isinstance(item, QuantumCircuit):
            if observables is None:
                raise GeneratorError(
                    f"pub {index}: a bare circuit needs observables (observables=... or "
                    "(circuit, observables) tuples)"
                )
            item = (item, observables)
        try:
            pub = SamplerPub.coerce(item) if kind == "sampler" else EstimatorPub.coerce(item)
            pub.validate()
        except Exception as exc:  # ValueError, TypeError from shape or parameter checks
            raise GeneratorError(f"pub {index}: {first_line(exc)}") from None
        if kind == "sampler" and not pub.circuit.num_clbits:
            raise GeneratorError(
                f"pub {index}: circuit '{pub.circuit.name}' has no classical bits to sample; "
                "add measurements (e.g. circuit.measure_all())"
            )
        pubs.append(pub)
    return pubs


def _options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    import json

    if options is None:
        return {}
    try:
        # plain JSON types only, so the payload never needs qiskit's decoder
        return json.loads(json.dumps(dict(options)))
    except (TypeError, ValueError) as exc:
        raise GeneratorError(f"options must be plain JSON values: {exc}") from None


def sampler_payload(
    pubs: Any,
    *,
    shots: int | None = None,
    target: Any = None,
    optimization_level: int = 1,
    options: Mapping[str, Any] | None = None,
    support_qiskit: bool = False,
) -> Payload:
    """A SamplerV2 payload.

    ``pubs``: a ``QuantumCircuit``, a pub tuple ``(circuit, parameter_values, shots)``, a
    ``SamplerPub``, or a list of them. ``target``: a fake backend name (``"fake_torino"``),
    a ``Target`` or a backend; circuits are then transpiled to ISA with
    ``optimization_level``. Without a target circuits are emitted as they are (an
    :class:`~generators.core.IsaWarning` says so).
    """
    from qiskit.primitives.containers.sampler_pub import SamplerPub

    if shots is not None and (type(shots) is not int or shots < 1):
        raise GeneratorError(f"shots must be an integer >= 1, got {shots!r}")
    coerced, named, circuits = _prepare("sampler", pubs, None, target, optimization_level)
    entries = []
    for pub, circuit in zip(coerced, circuits, strict=True):
        pub = SamplerPub(circuit, pub.parameter_values, pub.shots, validate=False)
        pub_shots = None if pub.shots is None else int(pub.shots)
        entries.append(_entry([dumps_qasm3(circuit)], _values(pub), pub_shots))
    parameters: dict[str, Any] = {"pubs": entries, "version": 2, "support_qiskit": support_qiskit}
    if shots is not None:
        parameters["shots"] = shots
    parameters["options"] = _options(options)
    return Payload("sampler", {"program_id": "sampler", "parameters": parameters}, _name(named))


def estimator_payload(
    pubs: Any,
    observables: Any = None,
    *,
    precision: float | None = None,
    default_shots: int | None = None,
    resilience_level: int | None = None,
    target: Any = None,
    optimization_level: int = 1,
    options: Mapping[str, Any] | None = None,
    support_qiskit: bool = False,
) -> Payload:
    """An EstimatorV2 payload.

    ``pubs``: ``(circuit, observables, parameter_values, precision)`` tuples or
    ``EstimatorPub``s (or a list of them), or circuits with ``observables`` given
    separately (``"ZZ"``, a ``SparsePauliOp``, a list of them). With a ``target``,
    circuits are transpiled to ISA and the observables get the circuit's layout applied.
    ``support_qiskit`` as for :func:`sampler_payload`.
    """
    from qiskit.primitives.containers.estimator_pub import EstimatorPub

    if precision is not None and not precision > 0:
        raise GeneratorError(f"precision must be > 0, got {precision!r}")
    if default_shots is not None and (type(default_shots) is not int or default_shots < 1):
        raise GeneratorError(f"default shots must be an integer >= 1, got {default_shots!r}")
    if resilience_level is not None and resilience_level not in (0, 1, 2):
        raise GeneratorError(f"resilience level must be 0, 1 or 2, got {resilience_level!r}")
    coerced, named, circuits = _prepare("estimator", pubs, observables, target, optimization_level)
    entries = []
    for pub, circuit in zip(coerced, circuits, strict=True):
        obs = pub.observables
        if named is not None:
            obs = obs.apply_layout(circuit.layout, circuit.num_qubits)
        pub = EstimatorPub(circuit, obs, pub.parameter_values, pub.precision, validate=False)
        # IBM's schema wants an array of observables: a single one becomes a list of one
        observables_list = pub.observables.tolist()
        if isinstance(observables_list, dict):
            observables_list = [observables_list]
        pub_precision = None if pub.precision is None else float(pub.precision)
        head = [dumps_qasm3(circuit), observables_list]
        entries.append(_entry(head, _values(pub), pub_precision))
    parameters: dict[str, Any] = {"pubs": entries, "version": 2, "support_qiskit": support_qiskit}
    if precision is not None:
        parameters["precision"] = float(precision)
    if resilience_level is not None:
        parameters["resilience_level"] = resilience_level
    opts = _options(options)
    if default_shots is not None:
        opts["default_shots"] = default_shots
    parameters["options"] = opts
    return Payload("estimator", {"program_id": "estimator", "parameters": parameters}, _name(named))


def _name(named: NamedTarget | None) -> str | None:
    return None if named is None else named.name
