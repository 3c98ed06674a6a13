"""Transpiler targets: offline fake backends, or the live target of a configured resource."""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generators.core import GeneratorError


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
        import difflib

        known = sorted(k for k in classes if k.startswith("fake_"))
        # "ibm_torino" is what users type: its fake is fake_torino
        wanted = name.lower().removeprefix("ibm_").removeprefix("fake_")
        bare = [k.removeprefix("fake_") for k in known]
        close = ["fake_" + k for k in difflib.get_close_matches(wanted, bare, 3, 0.75)]
        hint = (
            f"did you mean {' or '.join(close)}?"
            if close
            else f"e.g. {', '.join(known[:12])} ({len(known)} in all)"
        )
        raise GeneratorError(
            f"unknown fake backend '{name}' (--target takes qiskit_ibm_runtime.fake_provider's "
            f"offline backends; --resource a configured QPU); {hint}"
        )
    backend = cls()
    return NamedTarget(backend.name, backend.target)


def resource_target(
    name: str,
    environ: Mapping[str, str] | None = None,
    config_path: str | os.PathLike[str] | None = None,
) -> NamedTarget:
    """The live target of configured resource ``name`` (as the runner resolves it), from
    the backend's documents the runner's target check reads: fetched through the provider,
    or from the user's backend cache when a runner or an earlier ``qrmi-gen`` on this node
    fetched them for the same calibration (:mod:`qrmi_tasks.backend_cache`)."""
    from qrmi_tasks.isa import resource_target as documents_target

    resource, target = documents_target(name, environ, config_path, "qrmi-gen")
    return NamedTarget(resource, target)
