"""Drop-in compatibility with qiskit-community/qrmi: the variables its resource types read.

Sites configure QPUs for qrmi's own runner through the spank_qrmi Slurm plugin and a
``qrmi_config.json``; this runner must run unchanged on such a site. Each vendor package
declares qrmi's names for its types (``ProviderDeclaration.qrmi_variables``, with the
settings that read them as aliases); this module works on those declarations:

* :func:`qrmi_variables`: what qrmi reads for a type;
* :func:`warn_unknown_variables`: one warning per ``{NAME}_QRMI_*`` variable that neither
  the resource's provider nor qrmi reads for its type (a typo, or another type's
  variable), naming the closest known variable;
* :func:`markdown_table`: docs/qrmi-compat.md's table of qrmi's variables, generated
  (``python -m qrmi_tasks.compat`` prints it; a test keeps the page in step).
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping

from qrmi_tasks.config import RUNNER_SETTINGS, Resource
from qrmi_tasks.providers import registry
from qrmi_tasks.providers.declaration import ProviderDeclaration, QrmiVariable

log = logging.getLogger("qrmi_tasks.config")


def qrmi_variables(type_name: str) -> list[QrmiVariable]:
    """The variables qrmi reads for resource type ``type_name`` (empty for ours only)."""
    return [v for v in registry.declaration(type_name).qrmi_variables if type_name in v.types]


def known_suffixes(resource: Resource, declaration: ProviderDeclaration) -> set[str]:
    """Every ``{NAME}_``-relative name read for the resource's type, here (its declared
    settings and the runner's) or by qrmi."""
    known = {
        suffix
        for setting in (*declaration.settings, *RUNNER_SETTINGS)
        for candidate in (setting, *setting.aliases)
        if not candidate.shared
        for suffix in resource.suffixes(candidate)
    }
    known.update(
        v.suffix(prefix)
        for v in declaration.qrmi_variables
        if resource.type.name in v.types and not v.shared
        for prefix in resource.type.prefixes
    )
    return known


def _other_type(suffix: str, own: str) -> str | None:
    """The resource type whose prefix ``suffix`` carries, if not the resource's own."""
    own_prefixes = registry.resource_type(own).prefixes
    for rtype in registry.resource_types():
        if rtype.name == own or any(p in own_prefixes for p in rtype.prefixes):
            continue  # another name of the same protocol: its variables are the resource's
        if suffix.startswith(rtype.prefixes):
            return rtype.name
    return None


def unknown_variable_warnings(resource: Resource) -> list[str]:
    """One message per ``{NAME}_QRMI_*`` variable (environment or config file) read by
    neither this runner nor qrmi for the resource's type, naming the closest known one;
    then the type's own start-up warnings (its declaration's ``warnings``)."""
    declaration = registry.declaration(resource.type.name)
    known = known_suffixes(resource, declaration)
    head = f"{resource.name}_"
    seen: dict[str, str] = {}  # suffix -> where it was set
    for key in resource.environ:
        if key.startswith(head + "QRMI_"):
            seen.setdefault(key[len(head) :], "")
    for key in resource.file_environment:
        if key.startswith("QRMI_"):
            seen.setdefault(key, " (in the config file)")
    messages, miscased = _miscased_warnings(resource, known)
    for suffix, where in sorted(seen.items()):
        if suffix in known or suffix in miscased:
            continue
        text = f"{head}{suffix}{where} is not read for resource type {resource.type.name}"
        other = _other_type(suffix, resource.type.name)
        if other is not None:
            text += f" (it belongs to resource type {other})"
        close = difflib.get_close_matches(suffix, sorted(known), n=1, cutoff=0.6)
        if close:
            text += f"; did you mean {head}{close[0]}?"
        else:
            text += "; see docs/qrmi-compat.md for the variables this type reads"
        messages.append(text)
    if declaration.warnings is not None:
        messages.extend(declaration.warnings(resource))
    return messages


def _miscased_warnings(resource: Resource, known: set[str]) -> tuple[list[str], set[str]]:
    """One message per variable that would be this resource's but for its letters' case
    (``ibm_x_qrmi_ibm_da_ENDPOINT``, ``IBM_X_QRMI_...``, ``..._SERVICE_crn``): names are
    case-sensitive, so it is silently unread; the message gives the right spelling. Also
    the ``{NAME}_``-relative names it covered (no second message for them)."""
    head = f"{resource.name}_"
    by_upper = {suffix.upper(): suffix for suffix in known}
    others = {n for n in _listed_names(resource.environ) if n != resource.name}

    def miscased(name: str, exact_head: bool) -> bool:
        # a wrong-case resource name (IBM_X_...) is never read, whatever follows it
        return not exact_head or (name not in known and name.upper() in by_upper)

    found: dict[str, tuple[str, str]] = {}  # as written -> (its suffix, where)
    for key in resource.environ:
        if not key.upper().startswith((head + "QRMI_").upper()):
            continue
        if any(key.startswith(f"{other}_") for other in others):
            continue  # a resource whose name differs only by case: its own variable
        suffix = key[len(head) :]
        if miscased(suffix, key.startswith(head + "QRMI_")):
            found[key] = (suffix, "")
    for key in resource.file_environment:
        if key.upper().startswith("QRMI_") and miscased(key, key.startswith("QRMI_")):
            found[key] = (key, " (in the config file)")
    messages = []
    for key, (suffix, where) in sorted(found.items()):
        right = by_upper.get(suffix.upper())
        if right is None:
            close = difflib.get_close_matches(suffix.upper(), sorted(by_upper), n=1, cutoff=0.6)
            right = by_upper[close[0]] if close else suffix.upper()
        spelled = right if where else head + right
        messages.append(
            f"{key}{where} is not read: variable names are case-sensitive; did you mean {spelled}?"
        )
    return messages, {suffix for suffix, _ in found.values()}


def _listed_names(environ: Mapping[str, str]) -> list[str]:
    """The resource names the job's lists give: where two differ only by case, each
    one's variables are its own."""
    delimiter = environ.get("QRMI_LIST_DELIMITER") or ","
    names: list[str] = []
    for variable in ("QRMI_JOB_QPU_RESOURCES", "SLURM_JOB_QPU_RESOURCES"):
        names += [n.strip() for n in environ.get(variable, "").split(delimiter) if n.strip()]
    return names


def warn_unknown_variables(resource: Resource) -> None:
    """Log :func:`unknown_variable_warnings` (names only: values are never shown)."""
    for message in unknown_variable_warnings(resource):
        log.warning("%s", message)


def markdown_table() -> str:
    """docs/qrmi-compat.md's table: one row per variable qrmi reads, from the declarations
    (a variable read for several types is written with the first one's prefix)."""
    lines = [
        "| variable | resource types | here | notes |",
        "| --- | --- | --- | --- |",
    ]
    for declaration in registry.declarations():
        for variable in declaration.qrmi_variables:
            first = declaration.type_named(variable.types[0])
            suffix = variable.suffix(first.prefix)
            name = suffix if variable.shared else f"{{name}}_{suffix}"
            types = ", ".join(f"`{t}`" for t in variable.types)
            lines.append(f"| `{name}` | {types} | {variable.handling} | {variable.note} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
