"""Provider registry: resource type -> provider class, imported on first use.

Only this table knows which module implements which protocol, so that ``--help``,
configuration errors and a Direct Access run never import qiskit, pulser or another
provider's SDK. The resource types themselves (names, variable prefixes, which older type
a newer name speaks for) are :data:`qrmi_tasks.config.RESOURCE_TYPES`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from qrmi_tasks.compat import warn_unknown_variables
from qrmi_tasks.config import Resource, resolve_resource, resource_type
from qrmi_tasks.errors import ConfigError

if TYPE_CHECKING:
    from qrmi_tasks.providers.base import Provider

#: protocol (a resource type's ``speaks``) -> "module:Class" implementing it
PROVIDERS: dict[str, str] = {
    "local": "qrmi_tasks.providers.local:LocalProvider",
    "direct-access": "qrmi_tasks.providers.direct_access:DirectAccessProvider",
    "qiskit-runtime-service": "qrmi_tasks.providers.qiskit_runtime:QiskitRuntimeProvider",
    "pasqal-cloud": "qrmi_tasks.providers.pasqal_cloud:PasqalCloudProvider",
}


def provider_class(type_name: str) -> type[Provider]:
    """Import and return the provider class for a resource type."""
    target = PROVIDERS.get(resource_type(type_name).speaks)
    if target is None:
        raise ConfigError(f"resource type '{type_name}' is not available in this installation")
    module_name, _, class_name = target.partition(":")
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


def resolve(
    name: str,
    environ: Mapping[str, str] | None = None,
    config_path: str | os.PathLike[str] | None = None,
) -> tuple[Resource, type[Provider]]:
    """Configured resource ``name`` and its provider class, as a run uses them.

    qrmi's variable names are read as aliases; anything else spelled ``{name}_QRMI_*``
    that nobody reads (a typo, another type's variable) is worth one warning line each.
    """
    resource = resolve_resource(name, environ, config_path)
    cls = provider_class(resource.type.name)
    warn_unknown_variables(resource, cls.settings_spec)
    return resource, cls
