"""Provider registry: resource type name -> provider class, imported on first use.

Only this table knows which module implements which resource type, so that
``--help``, configuration errors and a Direct Access run never import qiskit,
pulser or another provider's SDK.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qrmi_tasks.errors import ConfigError

if TYPE_CHECKING:
    from qrmi_tasks.providers.base import Provider


@dataclass(frozen=True)
class ResourceType:
    """One accepted value of ``*_QPU_TYPES``."""

    name: str  # as written in QRMI_JOB_QPU_TYPES / SLURM_JOB_QPU_TYPES
    prefix: str  # settings are read from {resource}_{prefix}{SETTING}
    target: str  # "module:Class" implementing it


# The newer type names (ibm-quantum-system, ibm-quantum-compute-service) speak the same
# protocols as the old ones; only their variable prefixes differ.
RESOURCE_TYPES: dict[str, ResourceType] = {
    t.name: t
    for t in (
        ResourceType("local", "QRMI_LOCAL_", "qrmi_tasks.providers.local:LocalProvider"),
        ResourceType(
            "direct-access",
            "QRMI_IBM_DA_",
            "qrmi_tasks.providers.direct_access:DirectAccessProvider",
        ),
        ResourceType(
            "ibm-quantum-system",
            "QRMI_IBM_QS_",
            "qrmi_tasks.providers.direct_access:DirectAccessProvider",
        ),
        ResourceType(
            "qiskit-runtime-service",
            "QRMI_IBM_QRS_",
            "qrmi_tasks.providers.qiskit_runtime:QiskitRuntimeProvider",
        ),
        ResourceType(
            "ibm-quantum-compute-service",
            "QRMI_IBM_QCS_",
            "qrmi_tasks.providers.qiskit_runtime:QiskitRuntimeProvider",
        ),
        ResourceType(
            "pasqal-cloud",
            "QRMI_PASQAL_CLOUD_",
            "qrmi_tasks.providers.pasqal_cloud:PasqalCloudProvider",
        ),
    )
}


def resource_type(name: str) -> ResourceType:
    """Look up a resource type by the name used in ``*_QPU_TYPES``."""
    try:
        return RESOURCE_TYPES[name]
    except KeyError:
        known = ", ".join(sorted(RESOURCE_TYPES))
        raise ConfigError(f"unknown resource type '{name}'; known types: {known}") from None


def provider_class(type_name: str) -> type[Provider]:
    """Import and return the provider class for a resource type."""
    rtype = resource_type(type_name)
    module_name, _, class_name = rtype.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ConfigError(
                f"resource type '{type_name}' is not available in this installation"
            ) from None
        raise ConfigError(
            f"resource type '{type_name}' needs the Python package '{exc.name}', which is not "
            "installed; reinstall qrmi-tasks with its dependencies"
        ) from None
    return getattr(module, class_name)
