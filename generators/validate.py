"""``qrmi-gen validate``: the checks the runner makes before it submits anything."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from qrmi_tasks.errors import PayloadError
from qrmi_tasks.isa import refusal, target_problems
from qrmi_tasks.payload import QISKIT, CheckedPayload, load_payload, validate_sequence
from qrmi_tasks.providers import provider_class
from qrmi_tasks.providers.registry import declaration


def validate_file(
    path: str | os.PathLike[str],
    type_name: str | None = None,
    resource_name: str | None = None,
    config_path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> CheckedPayload:
    """Validate payload file ``path`` as the runner would; return it or raise QrmiError.

    * always: JSON, structure, the QRMI payload schema, and Pulser's rebuild of a sequence;
    * ``type_name``: also that resources of this type run this kind of payload;
    * ``resource_name``: exactly the runner's preparation for that configured resource
      (its settings and the rules among them, the payload kind); then, for a Qiskit
      payload on a resource whose backend has a target (direct-access,
      qiskit-runtime-service), that every circuit fits it: qubit count and ISA. That
      fetches the backend's documents (network); nothing is submitted.
    """
    if resource_name is not None:
        from qrmi_tasks.runner import RunRequest, prepare

        environ = os.environ if environ is None else environ
        request = RunRequest(
            resource_name, Path(path), config_path=Path(config_path) if config_path else None
        )
        provider, payload = prepare(request, environ)
        try:
            problems = target_problems(provider, payload)
        finally:
            provider.close()
        if problems:
            raise PayloadError(refusal(payload, resource_name, problems))
        return payload
    payload = load_payload(path)
    if type_name is not None:
        provider_class(type_name).check_kind(payload, f"a {type_name} resource")
    validate_sequence(payload)
    return payload


def unchecked_note(payload: CheckedPayload, type_name: str | None) -> str:
    """What ``--type`` alone left unchecked, for the ``ok`` line ('' when nothing).

    A type whose backends have a target (direct-access, qiskit-runtime-service) runs
    only circuits that fit one backend: without ``--resource`` there is no target to
    check them against, and a plain "ok" would read as if they had been.
    """
    if type_name is None or payload.kind != QISKIT:
        return ""
    if declaration(type_name).target_settings is None:
        return ""
    return "structure checked; circuits not checked against a backend: use --resource NAME"
