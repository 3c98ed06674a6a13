"""qrmi-tasks: run quantum workloads on QPU resources from HPC batch jobs.

From Python: ``qrmi_tasks.run(payload, resource="local")`` returns a Qiskit
``PrimitiveResult`` (or a Pulser counter, or counts per circuit for IQM and Felis);
``qrmi_tasks.submit(...)`` returns a
:class:`~qrmi_tasks.api.Task` handle; ``qrmi_tasks.load(path)`` reads a result file.
Qiskit's own primitives on any resource: ``qrmi_tasks.SamplerV2(mode="local")``,
``EstimatorV2``, and ``qrmi_tasks.backend(name)`` (a ``BackendV2`` with the resource's
target, for ``generate_preset_pass_manager``).
They are imported on first use, so ``import qrmi_tasks`` (and the CLIs' start) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qrmi_tasks.api import Task, TaskCancelled, run, submit
    from qrmi_tasks.primitives import EstimatorV2, PrimitiveJob, SamplerV2
    from qrmi_tasks.qiskit_backend import QrmiBackend, backend
    from qrmi_tasks.results import load

__version__ = "0.1.0"

_EXPORTS = {
    "run": "qrmi_tasks.api",
    "submit": "qrmi_tasks.api",
    "Task": "qrmi_tasks.api",
    "TaskCancelled": "qrmi_tasks.api",
    "load": "qrmi_tasks.results",
    "SamplerV2": "qrmi_tasks.primitives",
    "EstimatorV2": "qrmi_tasks.primitives",
    "PrimitiveJob": "qrmi_tasks.primitives",
    "backend": "qrmi_tasks.qiskit_backend",
    "QrmiBackend": "qrmi_tasks.qiskit_backend",
}

__all__ = [
    "EstimatorV2",
    "PrimitiveJob",
    "QrmiBackend",
    "SamplerV2",
    "Task",
    "TaskCancelled",
    "__version__",
    "backend",
    "load",
    "run",
    "submit",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'qrmi_tasks' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
