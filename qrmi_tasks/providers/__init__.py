"""Providers: one package per vendor (``ibm``, ``pasqal``, ``local``), the registry of the
resource types they declare, and :func:`open_provider`, the one way to turn a configured
resource into a provider (the runner, the Python API through it, and ``qrmi-gen
--resource`` all use it).

Importing this package imports the declarations only: no provider module, no SDK, so
``--help``, configuration errors and a Direct Access run stay light.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal

from qrmi_tasks.config import Resource
from qrmi_tasks.config import resolve_resource as _find_resource
from qrmi_tasks.errors import ConfigError
from qrmi_tasks.logsetup import SECRETS
from qrmi_tasks.providers.registry import (
    declaration,
    declarations,
    provider_class,
    resource_type,
    resource_types,
)

if TYPE_CHECKING:
    from qrmi_tasks.providers.base import Provider, RunContext

__all__ = [
    "Purpose",
    "declaration",
    "declarations",
    "open_provider",
    "provider_class",
    "resolve_resource",
    "resource_type",
    "resource_types",
]

#: what a provider is opened for: a ``run`` (every setting, and the rules among them) or
#: the backend's ``target`` (``qrmi-gen --resource``: only the settings that fetch it)
Purpose = Literal["run", "target"]


def resolve_resource(
    name: str,
    environ: Mapping[str, str] | None = None,
    config_path: str | os.PathLike[str] | None = None,
) -> Resource:
    """Configured resource ``name`` (config file and environment), its type looked up in
    the registry."""
    return _find_resource(name, environ, config_path, resource_type)


def _no_target(resource: Resource, cls: type[Provider]) -> ConfigError:
    from qrmi_tasks.payload import QISKIT

    described = f"resource '{resource.name}' ({resource.type.name})"
    if QISKIT not in cls.payload_kinds:
        return ConfigError(
            f"{described} does not run Qiskit primitives; --resource needs a "
            "resource whose backend has a target (direct-access, qiskit-runtime-service)"
        )
    if not cls.remote:
        return ConfigError(
            f"{described} is the local simulator, which needs no ISA circuits; leave out "
            "--resource (or use --target fake_NAME to try a transpilation)"
        )
    return ConfigError(f"{described} has no backend target to transpile for; leave out --resource")


def open_provider(
    name: str,
    environ: Mapping[str, str] | None = None,
    config: str | os.PathLike[str] | None = None,
    purpose: Purpose = "run",
    context: RunContext | Callable[[Resource, type[Provider]], RunContext] | None = None,
) -> Provider:
    """The provider of configured resource ``name``, after every check that needs no network.

    In order: the resource and its type; one warning per ``{NAME}_QRMI_*`` variable nobody
    reads; the settings ``purpose`` needs (one ConfigError listing every missing or bad
    variable), whose secrets are masked in logs from then on; for a run, the rules among
    them (``check_settings``); for a target, that the backend has one. ``context`` is the
    run's :class:`~qrmi_tasks.providers.base.RunContext`, or a function of the resource and
    provider class making it (the runner reads and checks the payload there, once the
    configuration is known to be right); None: a context without a task to cancel.
    """
    environ = os.environ if environ is None else environ
    resource = resolve_resource(name, environ, config)
    found = declaration(resource.type.name)
    cls = provider_class(resource.type.name)
    # here, not at the top: `python -m qrmi_tasks.providers.compat` must find it unloaded
    from qrmi_tasks.providers.compat import warn_unknown_variables

    warn_unknown_variables(resource)
    if purpose == "target":
        if found.target_settings is None:
            raise _no_target(resource, cls)
        spec = found.target_spec()
    else:
        spec = found.settings
    settings = resource.settings(spec)
    SECRETS.add(resource.secret_values(spec))
    if purpose == "run":
        cls.check_settings(resource, settings)
    if context is None:
        from qrmi_tasks.providers.base import RunContext

        context = RunContext(f"qrmi-{purpose}")  # back-off waits are plain sleeps
    elif callable(context):
        context = context(resource, cls)
    return cls(resource, settings, context)
