"""Does a payload's circuits fit a backend: qubit count and ISA (the backend's own
instructions on its own qubits)? Real QPUs refuse anything else, after the user has
waited in their queue. The runner checks before it submits; ``qrmi-gen validate
--resource`` makes the same check; both go through :func:`target_problems`.

The check reads the backend's documents once per node and calibration
(:mod:`qrmi_tasks.backend_cache`) and decides from them and the circuits' OpenQASM text
without qiskit where it can (:mod:`qrmi_tasks.isa_light`); only where that cannot decide
does it import qiskit and qiskit-ibm-runtime (about two seconds, 150 MiB) to build a
``Target``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from qrmi_tasks.errors import ProviderError, first_line
from qrmi_tasks.payload import QISKIT, CheckedPayload

if TYPE_CHECKING:
    from qrmi_tasks.providers.base import Provider

# not instructions a backend runs: markers for the transpiler and the scheduler
_DIRECTIVES = frozenset({"barrier", "snapshot"})


class TargetUnavailable(ProviderError):
    """The backend's documents do not make a transpiler target (exit 3 where fatal)."""


def target_from_json(configuration: Any, properties: Any, name: str) -> Any:
    """Build a qiskit ``Target`` from BackendConfiguration and BackendProperties JSON."""
    from qiskit_ibm_runtime.models import BackendConfiguration, BackendProperties
    from qiskit_ibm_runtime.utils.backend_converter import convert_to_target

    try:
        config = BackendConfiguration.from_dict(configuration)
        props = BackendProperties.from_dict(properties) if properties else None
        return convert_to_target(config, props)
    except Exception as exc:  # malformed documents raise KeyError, TypeError, ValueError...
        raise TargetUnavailable(
            f"cannot build a transpiler target for '{name}' from its configuration and "
            f"properties: {first_line(exc)}"
        ) from None


def cached_documents(
    provider: Provider, environ: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``provider.backend_documents()``, shared by the user's runners (backend_cache)."""
    from qrmi_tasks import backend_cache

    endpoint = provider.settings.get("ENDPOINT") if hasattr(provider.settings, "get") else None
    key = f"{provider.resource.type.name} {endpoint or ''} {provider.resource.name}"
    return backend_cache.documents(environ, key, provider.backend_documents)


def resource_target(
    name: str,
    environ: Mapping[str, str] | None = None,
    config: str | os.PathLike[str] | None = None,
    purpose: str = "qrmi-target",
) -> tuple[str, Any]:
    """(resource name, transpiler target) of configured resource ``name``, built from the
    documents the runner's check reads (:func:`cached_documents`). ``purpose`` names the
    caller in the provider's context (no task to cancel: back-off waits are plain sleeps)."""
    from qrmi_tasks.providers import open_provider
    from qrmi_tasks.providers.base import RunContext

    environ = os.environ if environ is None else environ
    provider = open_provider(name, environ, config, "target", RunContext(purpose))
    try:
        configuration, properties = cached_documents(provider, environ)
    finally:
        provider.close()
    resource = provider.resource.name
    return resource, target_from_json(configuration, properties, resource)


def _pub_heads(payload: CheckedPayload) -> list[Any]:
    return [pub[0] if isinstance(pub, list) else pub for pub in payload.parameters["pubs"]]


def payload_circuits(payload: CheckedPayload) -> list[Any]:
    """The circuit of every pub of a Qiskit payload (OpenQASM 3 text or RuntimeEncoder)."""
    from qrmi_tasks import qasm

    circuits = []
    for pub in payload.parameters["pubs"]:
        head = pub[0] if isinstance(pub, list) else pub
        if isinstance(head, str):
            circuits.append(qasm.loads(head))
        else:
            from qiskit_ibm_runtime import RuntimeDecoder

            # unbounded zlib inside, but check_document measured every compressed value
            # of a CheckedPayload within qrmi_tasks.inflate's budget
            circuits.append(json.loads(json.dumps(head), cls=RuntimeDecoder))
    return circuits


def isa_problems(circuits: list[Any], target: Any, backend: str) -> list[str]:
    """One line per circuit that ``backend``'s ``target`` cannot run as it is."""
    problems = []
    for index, circuit in enumerate(circuits):
        if circuit.num_qubits > target.num_qubits:
            problems.append(
                f"pub {index} uses {circuit.num_qubits} qubits; {backend} has {target.num_qubits}"
            )
            continue
        index_of = {qubit: i for i, qubit in enumerate(circuit.qubits)}
        supported: dict[tuple[str, tuple[int, ...]], bool] = {}  # one target query per pair
        for instruction in circuit.data:
            operation = instruction.operation
            if operation.name in _DIRECTIVES:
                continue
            qubits = tuple(index_of[q] for q in instruction.qubits)
            key = (operation.name, qubits)
            if key not in supported:
                supported[key] = target.instruction_supported(operation.name, qubits)
            if not supported[key]:
                problems.append(
                    f"pub {index} is not an ISA circuit for {backend}: '{operation.name}' on "
                    f"qubit(s) {', '.join(map(str, qubits))} is not one of its instructions"
                )
                break
    return problems


def checks_target(provider: Provider, payload: CheckedPayload) -> bool:
    """Whether :func:`target_problems` applies: a Qiskit payload for a backend with a target."""
    from qrmi_tasks.providers.registry import declaration

    if payload.kind != QISKIT:
        return False
    return declaration(provider.resource.type.name).target_settings is not None


def target_problems(
    provider: Provider, payload: CheckedPayload, environ: Mapping[str, str] | None = None
) -> list[str]:
    """One line per circuit of ``payload`` that ``provider``'s backend cannot run.

    Fetches the backend's documents (network, or the node's cache; the provider's errors
    propagate) and raises :class:`TargetUnavailable` when they do not make a target.
    """
    from qrmi_tasks import isa_light

    if not checks_target(provider, payload):
        return []
    backend = provider.resource.name
    configuration, properties = cached_documents(
        provider, os.environ if environ is None else environ
    )
    light = isa_light.problems(_pub_heads(payload), configuration, properties, backend)
    if light is not None:
        return light
    target = target_from_json(configuration, properties, backend)
    return isa_problems(payload_circuits(payload), target, backend)


def refusal(payload: CheckedPayload, backend: str, problems: list[str]) -> str:
    """The one-line message for a payload ``backend`` cannot run."""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return (
        f"{payload.source} cannot run on {backend}: {problems[0]}{more}; "
        f"generate it with 'qrmi-gen ... --resource {backend}' (transpiles to ISA)"
    )
