"""Transpiler targets: offline fake backends, or the live target of a configured resource."""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generators.core import GeneratorError, first_line
from qrmi_tasks.config import Setting, resolve_resource
from qrmi_tasks.errors import ConfigError, ProviderError

DIRECT_ACCESS_TYPES = ("direct-access", "ibm-quantum-system")
RUNTIME_TYPES = ("qiskit-runtime-service", "ibm-quantum-compute-service")


@dataclass(frozen=True)
class NamedTarget:
    """A qiskit ``Target`` and the backend name it describes (for file names and logs)."""

    name: str
    target: Any  # qiskit.transpiler.Target


def _fake_backend_classes() -> dict[str, type]:
    from qiskit_ibm_runtime import fake_provider
    from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

    classes = {}
    for attr, cls in vars(fake_provider).items():
        if inspect.isclass(cls) and issubclass(cls, FakeBackendV2) and cls is not FakeBackendV2:
            name = getattr(cls, "backend_name", None) or attr
            classes[name.lower()] = cls
            classes[attr.lower()] = cls  # the class name works too: FakeTorino
    return classes


def fake_target(name: str) -> NamedTarget:
    """The target of ``qiskit_ibm_runtime.fake_provider``'s backend ``name`` (offline)."""
    classes = _fake_backend_classes()
    cls = classes.get(name.lower())
    if cls is None:
        known = sorted(k for k in classes if k.startswith("fake_"))
        shown = ", ".join(known[:12])
        raise GeneratorError(
            f"unknown fake backend '{name}'; use one of qiskit_ibm_runtime.fake_provider's "
            f"backends, e.g. {shown} ({len(known)} in all)"
        )
    backend = cls()
    return NamedTarget(backend.name, backend.target)


def resource_target(
    name: str,
    environ: Mapping[str, str] | None = None,
    config_path: str | os.PathLike[str] | None = None,
) -> NamedTarget:
    """Fetch the live target of configured resource ``name`` (as the runner resolves it)."""
    environ = os.environ if environ is None else environ
    resource = resolve_resource(name, environ, config_path)
    type_name = resource.type.name
    if type_name in DIRECT_ACCESS_TYPES:
        return NamedTarget(resource.name, _direct_access_target(resource))
    if type_name in RUNTIME_TYPES:
        return NamedTarget(resource.name, _runtime_target(resource))
    if type_name == "local":
        raise ConfigError(
            f"resource '{name}' is the local simulator, which needs no ISA circuits; "
            "leave out --resource (or use --target fake_NAME to try a transpilation)"
        )
    raise ConfigError(
        f"resource '{name}' ({type_name}) does not run Qiskit primitives; "
        "--resource needs a direct-access or qiskit-runtime-service resource"
    )


def _direct_access_target(resource: Any) -> Any:
    from qrmi_tasks.providers.direct_access import DirectAccessProvider

    # Only the API settings: generating a payload needs no S3 bucket nor job timeout.
    wanted = ("ENDPOINT", "IAM_ENDPOINT", "IAM_APIKEY", "SERVICE_CRN", "API_VERSION")
    spec = tuple(s for s in DirectAccessProvider.settings_spec if s.name in wanted)
    return _rest_target(resource, spec, f"/v1/backends/{resource.name}", "Direct Access")


def _runtime_target(resource: Any) -> Any:
    # Through the runner's Qiskit Runtime provider, i.e. qiskit-ibm-runtime's own client,
    # with the same endpoints, IAM handling and error messages as a run.
    from qrmi_tasks.logsetup import SECRETS
    from qrmi_tasks.providers.base import RunContext
    from qrmi_tasks.providers.qiskit_runtime import QiskitRuntimeProvider

    spec = QiskitRuntimeProvider.settings_spec
    SECRETS.add(resource.secret_values(spec))
    provider = QiskitRuntimeProvider(resource, resource.settings(spec), RunContext("qrmi-gen"))
    try:
        configuration, properties = provider.backend_documents()
    finally:
        provider.close()
    return target_from_json(configuration, properties, resource.name)


def _rest_target(resource: Any, spec: tuple[Setting, ...], base: str, service: str) -> Any:
    """GET ``{base}/configuration`` and ``{base}/properties``; build the Target."""
    from qrmi_tasks.logsetup import SECRETS
    from qrmi_tasks.providers.da_client import DirectAccessClient, IamTokens

    settings = resource.settings(spec)
    SECRETS.add(resource.secret_values(spec))
    client = DirectAccessClient(
        settings["ENDPOINT"],
        settings["SERVICE_CRN"],
        IamTokens(settings["IAM_ENDPOINT"], settings["IAM_APIKEY"]),
        pause=_pause,
        api_version=settings.get("API_VERSION"),
    )
    try:
        configuration = client.json("GET", f"{base}/configuration")
        properties = client.json("GET", f"{base}/properties")
    except ProviderError as exc:
        # the client names its own API in messages; say which service this really was
        raise type(exc)(exc.message.replace("Direct Access", service)) from None
    return target_from_json(configuration, properties, resource.name)


def _pause(seconds: float) -> None:
    """Back-off wait for the client's retries; never interrupted (no task to cancel)."""
    time.sleep(seconds)


def target_from_json(configuration: Any, properties: Any, name: str) -> Any:
    """Build a ``Target`` from BackendConfiguration and BackendProperties JSON documents."""
    from qiskit_ibm_runtime.models import BackendConfiguration, BackendProperties
    from qiskit_ibm_runtime.utils.backend_converter import convert_to_target

    try:
        config = BackendConfiguration.from_dict(configuration)
        props = BackendProperties.from_dict(properties) if properties else None
        return convert_to_target(config, props)
    except Exception as exc:  # malformed documents raise KeyError, TypeError, ValueError...
        raise GeneratorError(
            f"cannot build a transpiler target for '{name}' from its configuration and "
            f"properties: {first_line(exc)}"
        ) from None
