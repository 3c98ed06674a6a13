"""What a vendor package declares about the resource types it serves.

Each package under :mod:`qrmi_tasks.providers` (``ibm``, ``pasqal``, ``local``...) has a
module-level ``DECLARATIONS`` tuple of :class:`ProviderDeclaration`: one per provider
class, naming every type that class serves, their variable prefixes, the settings, the
variables qiskit-community/qrmi reads for them and what this runner does with each. The
registry (:mod:`qrmi_tasks.providers.registry`) finds the packages; nothing else lists
types. Declarations are data only: a package's ``__init__`` must not import its SDK, so
``--help``, configuration errors and another vendor's run stay light.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from qrmi_tasks.config import Resource, ResourceType, Setting

#: how this runner treats a variable qrmi reads (docs/qrmi-compat.md explains each)
SAME, ALIAS, IGNORED = "same", "alias", "ignored"
#: qrmi's name of the token the spank_qrmi plugin hands each job (acquire()'s result)
ACQUISITION_TOKEN = "QRMI_JOB_ACQUISITION_TOKEN"
#: qrmi's job timeout, read without a type prefix
JOB_TIMEOUT = "QRMI_JOB_TIMEOUT_SECONDS"


@dataclass(frozen=True)
class QrmiVariable:
    """One variable a qrmi resource type reads, and what this runner does with it.

    ``name`` is what follows ``{NAME}_``, with ``{p}`` for the type's prefix; ``shared``
    variables are read without ``{NAME}_`` (process-wide). ``types`` are the type names
    (of the declaration that lists it) qrmi reads it for; ``handling`` is ``same`` (read
    under qrmi's name), ``alias`` (another spelling of one of our settings) or ``ignored``
    (accepted without effect); ``note`` is docs/qrmi-compat.md's cell.
    """

    name: str
    types: tuple[str, ...]
    handling: str
    note: str
    shared: bool = False

    def suffix(self, prefix: str) -> str:
        """The name for a type whose variable prefix is ``prefix``."""
        return self.name.replace("{p}", prefix)


@dataclass(frozen=True)
class ProviderDeclaration:
    """Everything about the resource types one provider class serves, in one place."""

    #: ``"module:Class"`` of the provider, imported only when a resource of these types runs
    provider: str
    #: the accepted names, each with its variable prefix; the first is the canonical one,
    #: the others are other names of the same protocol (qrmi's newer or our older ones)
    types: tuple[ResourceType, ...]
    #: per-resource settings the provider reads ({NAME}_{PREFIX}{SETTING}, with aliases)
    settings: tuple[Setting, ...] = ()
    #: names of the settings :meth:`~qrmi_tasks.providers.base.Provider.backend_documents`
    #: needs (``qrmi-gen --resource`` resolves only these). None: no backend target.
    target_settings: frozenset[str] | None = None
    #: what qiskit-community/qrmi reads for these types (docs/qrmi-compat.md's table)
    qrmi_variables: tuple[QrmiVariable, ...] = ()
    #: more start-up warnings for a resource of these types (names only, never values)
    warnings: Callable[[Resource], list[str]] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        names = {t.name for t in self.types}
        for variable in self.qrmi_variables:
            unknown = set(variable.types) - names
            if unknown:  # a declaration bug: fail where it is imported, in every test
                raise ValueError(f"qrmi variable {variable.name} names undeclared {unknown}")

    @property
    def name(self) -> str:
        """The canonical type name."""
        return self.types[0].name

    def type_named(self, name: str) -> ResourceType:
        """The declared type ``name`` (KeyError when it is not one of these)."""
        for rtype in self.types:
            if rtype.name == name:
                return rtype
        raise KeyError(name)

    def target_spec(self) -> tuple[Setting, ...]:
        """:attr:`settings` with only :attr:`target_settings` required."""
        wanted = self.target_settings or frozenset()
        return tuple(s if s.name in wanted else replace(s, required=False) for s in self.settings)

    def setting(self, name: str) -> Setting:
        """The declared setting ``name``."""
        return next(s for s in self.settings if s.name == name)
