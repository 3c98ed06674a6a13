"""Pulser payloads: from a ``pulser.Sequence``, its abstract representation, or an analog
circuit of qiskit-pasqal-provider (``HamiltonianGate``)."""

from __future__ import annotations

import json
from typing import Any

from generators.core import GeneratorError, Payload
from qrmi_tasks.errors import PayloadError, first_line
from qrmi_tasks.payload import rebuild_sequence
from qrmi_tasks.quiet import quiet_import_warnings

DEFAULT_DEVICE = "AnalogDevice"
DEFAULT_BASIS = "ground-rydberg"


def _check_runs(runs: Any) -> int:
    if type(runs) is not int or runs < 1:
        raise GeneratorError(f"runs must be an integer >= 1, got {runs!r}")
    return runs


def _abstract_repr(sequence: Any) -> str:
    """The abstract-repr JSON text of a Sequence, a JSON string, or a decoded object."""
    with quiet_import_warnings():
        from pulser import Sequence

    if isinstance(sequence, Sequence):
        if sequence.is_parametrized():
            names = ", ".join(sorted(sequence.declared_variables)) or "?"
            raise GeneratorError(
                f"the sequence has unbuilt variables ({names}); call "
                "sequence.build(name=value, ...) first: a payload carries no variable values"
            )
        try:
            return sequence.to_abstract_repr()
        except Exception as exc:  # AbstractReprError, ValueError for unserializable parts
            raise GeneratorError(f"cannot serialize the sequence: {first_line(exc)}") from None
    if isinstance(sequence, dict):
        return json.dumps(sequence)
    if isinstance(sequence, str):
        return sequence
    raise GeneratorError(
        f"sequence must be a pulser.Sequence or its abstract representation (JSON text or "
        f"object), not {type(sequence).__name__}"
    )


def pulser_payload(sequence: Any, runs: int) -> Payload:
    """A Pulser payload ``{"sequence": <abstract repr object>, "job_runs": runs}``.

    ``sequence``: a built ``pulser.Sequence``, or its abstract representation as JSON text
    or a decoded object. It is rebuilt with ``Sequence.from_abstract_repr`` to validate it.
    """
    runs = _check_runs(runs)
    text = _abstract_repr(sequence)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GeneratorError(f"the sequence is not JSON: {exc.msg} at column {exc.colno}") from None
    if isinstance(document, dict) and "sequence" in document and "job_runs" in document:
        raise GeneratorError(
            "this is already a payload ({'sequence', 'job_runs'}); give only its 'sequence'"
        )
    try:
        rebuilt = rebuild_sequence(text)
    except PayloadError as exc:
        raise GeneratorError(exc.message) from None
    if rebuilt.is_parametrized():
        raise GeneratorError(
            "the sequence declares variables; build it with values before serializing"
        )
    return Payload("pulser", {"sequence": document, "job_runs": runs})


def device_by_name(name: str) -> Any:
    """A device of ``pulser.devices`` by name (``AnalogDevice``, ``DigitalAnalogDevice``...)."""
    with quiet_import_warnings():
        import pulser.devices

    # the public device classes (pulser's common base class is private)
    kinds = (pulser.devices.Device, pulser.devices.VirtualDevice)
    devices = {
        attr: value
        for attr, value in vars(pulser.devices).items()
        if isinstance(value, kinds) and not attr.startswith("_")
    }
    for attr, value in devices.items():
        if name.lower() in (attr.lower(), str(value.name).lower()):
            return value
    raise GeneratorError(
        f"unknown Pulser device '{name}'; pulser.devices has: {', '.join(sorted(devices))}"
    )


def qpp_sequence(circuit: Any, device: Any = DEFAULT_DEVICE, basis: str = DEFAULT_BASIS) -> Any:
    """Convert a circuit with one ``HamiltonianGate`` to a measured ``pulser.Sequence``.

    Uses qiskit-pasqal-provider's own helpers, as its backends do before submitting:
    ``get_register_from_circuit``, ``place_register`` (a layout for devices that need
    one), ``gen_seq``; then adds the measurement a QPU needs.
    """
    try:
        with quiet_import_warnings():
            from qiskit_pasqal_provider.providers.pulse_utils import (
                gen_seq,
                get_register_from_circuit,
                place_register,
            )
    except ModuleNotFoundError as exc:
        raise GeneratorError(
            f"qrmi-gen qpp needs the Python package qiskit-pasqal-provider ({exc.name} is "
            "missing); pip install qiskit-pasqal-provider"
        ) from None
    from qiskit import QuantumCircuit

    if not isinstance(circuit, QuantumCircuit):
        raise GeneratorError(f"expected a qiskit QuantumCircuit, not {type(circuit).__name__}")
    if isinstance(device, str):
        device = device_by_name(device)
    try:
        register = place_register(get_register_from_circuit(circuit), device)
        sequence = gen_seq(analog_register=register, device=device, circuit=circuit)
        if sequence.is_parametrized():
            raise GeneratorError(
                "the HamiltonianGate uses qiskit Parameters; assign values "
                "(circuit.assign_parameters) before generating a payload"
            )
        sequence.measure(basis)
    except GeneratorError:
        raise
    except Exception as exc:  # the helpers raise AssertionError and ValueError
        raise GeneratorError(
            f"cannot convert the circuit to a Pulser sequence for {device.name}: {first_line(exc)}"
        ) from None
    return sequence


def qpp_payload(circuit: Any, runs: int, device: Any = DEFAULT_DEVICE) -> Payload:
    """A Pulser payload from a qiskit-pasqal-provider analog circuit (see :func:`qpp_sequence`)."""
    runs = _check_runs(runs)
    return pulser_payload(qpp_sequence(circuit, device), runs)
