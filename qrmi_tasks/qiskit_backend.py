"""A Qiskit ``BackendV2`` for a configured resource: its transpiler target, for
``generate_preset_pass_manager(backend=qrmi_tasks.backend("ibm_torino"))``.

The target is built from the documents the runner's ISA check reads
(:func:`qrmi_tasks.isa.cached_documents`: the backend's configuration and properties,
fetched once per user, endpoint, backend and calibration). ``local`` has Aer's target.
Circuits run through :class:`qrmi_tasks.SamplerV2` / :class:`qrmi_tasks.EstimatorV2`
with ``mode=`` this backend; :meth:`QrmiBackend.run` says so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from qiskit.providers import BackendV2, Options

from qrmi_tasks.errors import UsageError


class QrmiBackend(BackendV2):
    """A resource's target and name (``num_qubits``, ``operation_names``... as any
    ``BackendV2``); ``resource`` is the name primitives run on."""

    def __init__(
        self,
        resource: str,
        target: Any,
        *,
        environ: Mapping[str, str] | None = None,
        config: str | os.PathLike[str] | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(name=resource, description=description)
        self._target = target
        #: the resource name, environment and configuration primitives given this backend use
        self.resource = resource
        self.environ = environ
        self.config = config

    @property
    def target(self) -> Any:
        """The transpiler target built from the resource's own documents."""
        return self._target

    @property
    def max_circuits(self) -> None:
        """No fixed limit here: the service judges a job's size."""
        return None

    @classmethod
    def _default_options(cls) -> Options:
        return Options()

    def run(self, run_input: Any, **options: Any) -> Any:
        """Not supported: backend.run() is Qiskit's legacy path (counts without pubs)."""
        raise UsageError(
            f"{self.name}: backend.run() is not supported; run circuits with "
            f"qrmi_tasks.SamplerV2(mode=backend).run([circuit]) (or EstimatorV2)"
        )

    def __repr__(self) -> str:
        return f"<QrmiBackend {self.name}: {self.num_qubits} qubits>"


def backend(
    resource: str = "local",
    *,
    environ: Mapping[str, str] | None = None,
    config: str | os.PathLike[str] | None = None,
) -> QrmiBackend:
    """The :class:`QrmiBackend` of configured resource ``resource`` (a name as for
    ``qrmi-task-runner``): its target comes from the backend's documents (network, or the
    user's cache of them); ``local``'s is Aer's. Raises the configuration's and the
    provider's one-line errors (a resource type without a target: ``ConfigError``)."""
    from qrmi_tasks import isa
    from qrmi_tasks.providers import provider_class, resolve_resource
    from qrmi_tasks.providers.local.provider import LocalProvider

    environ = os.environ if environ is None else environ
    found = resolve_resource(resource, environ, config)
    if issubclass(provider_class(found.type.name), LocalProvider):
        from qiskit_aer import AerSimulator

        target = AerSimulator().target
        return QrmiBackend(
            resource, target, environ=environ, config=config, description="local (Qiskit Aer)"
        )
    _, target = isa.resource_target(resource, environ, config, "qrmi-backend")
    description = f"{resource} ({found.type.name})"
    return QrmiBackend(resource, target, environ=environ, config=config, description=description)
