"""Payload builders for qrmi-task-runner (Qiskit primitives, Pulser sequences).

Notebook API::

    from generators import sampler_payload, estimator_payload, pulser_payload, qpp_payload

    payload = sampler_payload(circuit, shots=1000, target="fake_torino")
    payload.save("sampler_input_fake_torino.json")

Names are imported on first use, so ``import generators`` (and ``qrmi-gen --help``)
does not import qiskit or pulser.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from generators.core import GeneratorError, IsaWarning, Payload
    from generators.felis import felis_payload
    from generators.iqm import iqm_payload
    from generators.primitives import estimator_payload, sampler_payload
    from generators.sequences import pulser_payload, qpp_payload, qpp_sequence
    from generators.validate import validate_file

_EXPORTS = {
    "Payload": "generators.core",
    "GeneratorError": "generators.core",
    "IsaWarning": "generators.core",
    "sampler_payload": "generators.primitives",
    "iqm_payload": "generators.iqm",
    "estimator_payload": "generators.primitives",
    "pulser_payload": "generators.sequences",
    "qpp_payload": "generators.sequences",
    "qpp_sequence": "generators.sequences",
    "validate_file": "generators.validate",
    "felis_payload": "generators.felis",
}

__all__ = [
    "GeneratorError",
    "IsaWarning",
    "Payload",
    "estimator_payload",
    "felis_payload",
    "iqm_payload",
    "pulser_payload",
    "qpp_payload",
    "qpp_sequence",
    "sampler_payload",
    "validate_file",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'generators' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
