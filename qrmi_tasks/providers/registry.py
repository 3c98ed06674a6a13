"""The one registry of resource types: the vendor packages' declarations, found on disk.

Every sub-package of :mod:`qrmi_tasks.providers` with a ``DECLARATIONS`` tuple
(:class:`~qrmi_tasks.providers.declaration.ProviderDeclaration`) is a vendor package; a new
vendor is one new package, with no table to edit elsewhere. Only declarations are imported
here; a provider class (and its SDK) is imported when a resource of its type is opened.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from qrmi_tasks.config import ResourceType
from qrmi_tasks.errors import ConfigError
from qrmi_tasks.providers.declaration import ProviderDeclaration

if TYPE_CHECKING:
    from qrmi_tasks.providers.base import Provider

_PACKAGE = "qrmi_tasks.providers"
# keyed by the package's search path, so a test that adds a directory to it sees its package
_found: dict[tuple[str, ...], dict[str, ProviderDeclaration]] = {}


def _search_path() -> tuple[str, ...]:
    return tuple(importlib.import_module(_PACKAGE).__path__)


def _discover(path: tuple[str, ...]) -> dict[str, ProviderDeclaration]:
    by_type: dict[str, ProviderDeclaration] = {}
    for info in sorted(pkgutil.iter_modules(list(path)), key=lambda i: i.name):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"{_PACKAGE}.{info.name}")
        for declaration in getattr(module, "DECLARATIONS", ()):
            for rtype in declaration.types:
                if rtype.name in by_type:
                    raise ConfigError(
                        f"resource type '{rtype.name}' is declared twice (by "
                        f"{by_type[rtype.name].provider} and {declaration.provider}); "
                        "reinstall qrmi-tasks"
                    )
                by_type[rtype.name] = declaration
    return by_type


def _by_type() -> dict[str, ProviderDeclaration]:
    path = _search_path()
    if path not in _found:
        _found[path] = _discover(path)
    return _found[path]


def declarations() -> list[ProviderDeclaration]:
    """Every declaration, each once, in the order of their packages' names."""
    unique: dict[int, ProviderDeclaration] = {}
    for declaration in _by_type().values():
        unique.setdefault(id(declaration), declaration)
    return list(unique.values())


def resource_types() -> list[ResourceType]:
    """Every accepted type name, with its variable prefix."""
    return [rtype for d in declarations() for rtype in d.types]


def declaration(type_name: str) -> ProviderDeclaration:
    """The declaration serving type ``type_name`` (ConfigError naming the known ones)."""
    found = _by_type().get(type_name)
    if found is None:
        known = ", ".join(sorted(_by_type()))
        raise ConfigError(f"unknown resource type '{type_name}'; known types: {known}")
    return found


def resource_type(type_name: str) -> ResourceType:
    """Look up a resource type by the name used in ``*_QPU_TYPES``."""
    return declaration(type_name).type_named(type_name)


def provider_class(type_name: str) -> type[Provider]:
    """Import and return the provider class serving resource type ``type_name``."""
    target = declaration(type_name).provider
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
