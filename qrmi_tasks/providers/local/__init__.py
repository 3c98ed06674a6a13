"""The embedded ``local`` resource: payloads simulated on this machine (:mod:`.provider`
starts :mod:`.worker`, which runs :mod:`.sim` on Qiskit Aer or a Pulser engine).

Its one type is declared here, with its settings; it needs no credentials, no network,
and no configuration: with no resource list at all, ``local`` is this. Imports no
simulator.
"""

from __future__ import annotations

import importlib.util

from qrmi_tasks.config import ResourceType, Setting, one_of
from qrmi_tasks.providers.declaration import ProviderDeclaration
from qrmi_tasks.providers.local.options import (
    AER_METHODS,
    DEVICES,
    PULSER_ENGINES,
    PULSER_MODULES,
    QISKIT_ENGINES,
)


def _pulser_engine(text: str) -> str:
    """PULSER_ENGINE: one of the engines, whose package is installed (looked up, not imported)."""
    engine = one_of(*PULSER_ENGINES)(text)
    module, package = PULSER_MODULES[engine]
    if importlib.util.find_spec(module) is None:
        raise ValueError(
            f"names {engine}, but its Python package {package} is not installed: "
            "pip install 'qrmi-tasks[emulators]', or unset it for qutip"
        )
    return engine


LOCAL = ProviderDeclaration(
    provider="qrmi_tasks.providers.local.provider:LocalProvider",
    types=(ResourceType("local", "QRMI_LOCAL_"),),
    settings=(
        Setting("SEED", required=False, parse=int),
        # Qiskit payloads: Aer, or qiskit's reference primitives (slow; a fallback)
        Setting("ENGINE", required=False, parse=one_of(*QISKIT_ENGINES), default="aer"),
        Setting("METHOD", required=False, parse=one_of(*AER_METHODS), default="automatic"),
        Setting("DEVICE", required=False, parse=one_of(*DEVICES), default="auto"),
        # Pulser payloads: pulser-simulation (QuTiP), or Pasqal's emu-sv / emu-mps
        Setting("PULSER_ENGINE", required=False, parse=_pulser_engine, default="qutip"),
    ),
)

DECLARATIONS = (LOCAL,)
