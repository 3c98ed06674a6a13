"""Drop-in compatibility with qiskit-community/qrmi: the variables its resource types read.

Sites configure QPUs for qrmi's own runner through the spank_qrmi Slurm plugin and a
``qrmi_config.json``; this runner must run unchanged on such a site. This module is the one
place that knows qrmi's vocabulary:

* :data:`QRMI_VARIABLES`: every per-resource variable qrmi's resource types read, and what
  this runner does with it (``same``: read under the same name; ``alias``: read as another
  spelling of one of our settings; ``ignored``: accepted without effect, and why).
  docs/qrmi-compat.md is the same table for people; a test keeps the two in step.
* :func:`warn_unknown_variables`: one warning per ``{NAME}_QRMI_*`` variable that neither
  the resource's provider nor qrmi reads for its type (a typo, or another type's
  variable), naming the closest known variable.

The providers' ``settings_spec`` entries carry the aliases themselves
(:class:`qrmi_tasks.config.Setting` ``aliases``); this module only describes them.

Sources (qrmi HEAD as fetched: qiskit-community/qrmi@b2ed2e5, version 0.23.1; the names were
also checked against the strings of the ``qrmi==0.26.4`` wheel's ``_core.abi3.so``):
``src/ibm/quantum_system.rs`` (``IBMQuantumSystem::new``, ``task_start``, ``s3_env``),
``src/ibm/quantum_compute_service.rs`` and ``src/ibm/qiskit_runtime_service.rs``
(``::new``: ``SESSION_ID`` then ``QRMI_JOB_ACQUISITION_TOKEN``; ``TIMEOUT_SECONDS`` then
``QRMI_JOB_TIMEOUT_SECONDS``), ``src/pasqal/cloud.rs`` and ``src/pasqal/cloud_config.rs``
(``PasqalConfig``), ``dependencies/pasqal_cloud_client/src/auth/auth.rs`` (token first,
then username/password, then client credentials).
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass

from qrmi_tasks.config import RESOURCE_TYPES, RUNNER_SETTINGS, Resource, Setting

log = logging.getLogger("qrmi_tasks.config")

SAME, ALIAS, IGNORED = "same", "alias", "ignored"
QS = ("ibm-quantum-system",)
QCS = ("ibm-quantum-compute-service", "qiskit-runtime-service")
PASQAL = ("pasqal-cloud",)
#: qrmi's name of the token the spank_qrmi plugin hands each job (acquire()'s result)
ACQUISITION_TOKEN = "QRMI_JOB_ACQUISITION_TOKEN"
JOB_TIMEOUT = "QRMI_JOB_TIMEOUT_SECONDS"


@dataclass(frozen=True)
class QrmiVariable:
    """One variable a qrmi resource type reads.

    ``name`` is what follows ``{NAME}_``, with ``{p}`` for the type's prefix
    (``QRMI_IBM_QS_``, ``QRMI_IBM_QCS_``, ...); ``shared`` variables are read without
    ``{NAME}_`` (process-wide).
    """

    name: str
    types: tuple[str, ...]
    handling: str
    note: str
    shared: bool = False

    def suffix(self, type_name: str) -> str:
        """The name for resource type ``type_name`` (its prefix filled in)."""
        return self.name.replace("{p}", RESOURCE_TYPES[type_name].prefix)


QRMI_VARIABLES: tuple[QrmiVariable, ...] = (
    # -- ibm-quantum-system (src/ibm/quantum_system.rs) ------------------------------------
    *(
        QrmiVariable(f"{{p}}{name}", QS, SAME, "required, as in qrmi")
        for name in ("ENDPOINT", "IAM_ENDPOINT", "IAM_APIKEY", "SERVICE_CRN")
    ),
    *(
        QrmiVariable(
            f"{{p}}{name}",
            QS,
            SAME,
            "required: qrmi builds its client without S3, but its task_start "
            "(run_primitive: 'S3 bucket is not configured') and task_result (s3_env) need "
            "it; the Quantum System API only exchanges job data through presigned S3 URLs",
        )
        for name in (
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "S3_ENDPOINT",
            "S3_BUCKET",
            "S3_REGION",
        )
    ),
    QrmiVariable(
        "{p}S3_ENDPOINT_FOR_QSAPI",
        QS,
        SAME,
        "optional; our older name {p}S3_ENDPOINT_FOR_DAAPI is read when it is unset",
    ),
    QrmiVariable(JOB_TIMEOUT, QS, SAME, "required: the job's timeout_secs"),
    QrmiVariable(
        ACQUISITION_TOKEN,
        QS,
        IGNORED,
        "accepted silently: qrmi's acquire() returns a random UUID here (no sessions)",
    ),
    # -- ibm-quantum-compute-service / qiskit-runtime-service ------------------------------
    *(
        QrmiVariable(f"{{p}}{name}", QCS, SAME, "required, as in qrmi")
        for name in ("ENDPOINT", "IAM_ENDPOINT", "IAM_APIKEY", "SERVICE_CRN")
    ),
    QrmiVariable(
        "{p}SESSION_ID",
        QCS,
        SAME,
        "run the job in this session and leave it open; wins over the acquisition token",
    ),
    QrmiVariable(
        ACQUISITION_TOKEN,
        QCS,
        ALIAS,
        "the session the Slurm plugin opened (acquire()): read when {p}SESSION_ID is unset; "
        "the job runs in it, the session is left open (the plugin closes it)",
    ),
    QrmiVariable(
        "{p}SESSION_MODE",
        QCS,
        SAME,
        "qrmi's acquire() (the plugin) opens a session of this mode (default dedicated); "
        "here, with neither {p}SESSION_ID nor the acquisition token, the runner opens "
        "one itself and closes it after the job; unset: no session",
    ),
    QrmiVariable(
        "{p}SESSION_MAX_TTL",
        QCS,
        SAME,
        "max_ttl (seconds) of a session the runner opens (qrmi's acquire() sends 28800 "
        "when unset; here unset leaves the service's default)",
    ),
    QrmiVariable("{p}TIMEOUT_SECONDS", QCS, SAME, "the job's cost (seconds)"),
    QrmiVariable(
        JOB_TIMEOUT,
        QCS,
        ALIAS,
        "read as {p}TIMEOUT_SECONDS when that is unset, as qrmi does",
    ),
    # -- pasqal-cloud (src/pasqal/cloud.rs, cloud_config.rs) -------------------------------
    QrmiVariable(
        "{p}PROJECT_ID",
        PASQAL,
        SAME,
        "required here (qrmi allows none for unauthenticated calls; a batch needs one)",
    ),
    QrmiVariable(
        "{p}AUTH_TOKEN",
        PASQAL,
        SAME,
        "a bearer token, used while it is valid (JWT exp), then the credentials below",
    ),
    QrmiVariable(
        "PASQAL_USERNAME",
        PASQAL,
        SAME,
        "with PASQAL_PASSWORD: password login at {p}AUTH_ENDPOINT (process-wide, as in qrmi)",
        shared=True,
    ),
    QrmiVariable(
        "PASQAL_PASSWORD", PASQAL, SAME, "see PASQAL_USERNAME (masked in logs)", shared=True
    ),
    QrmiVariable(
        "{p}CLIENT_ID",
        PASQAL,
        SAME,
        "with {p}CLIENT_SECRET: service-account (client credentials) login, used when no "
        "username/password is set",
    ),
    QrmiVariable("{p}CLIENT_SECRET", PASQAL, SAME, "see {p}CLIENT_ID (masked in logs)"),
    QrmiVariable(
        "{p}AUTH_ENDPOINT",
        PASQAL,
        SAME,
        "OAuth token URL for both logins (default authenticate.pasqal.cloud/oauth/token; "
        "https:// is added when no scheme is given)",
    ),
    QrmiVariable(
        "{p}BASE_URL",
        PASQAL,
        SAME,
        "API root (default https://apis.pasqal.cloud): core API {BASE_URL}/core-fast, "
        "account API {BASE_URL}/account; our {p}ENDPOINT / {p}ACCOUNT_ENDPOINT, when set, "
        "override those two URLs",
    ),
    QrmiVariable(
        "PASQAL_CONFIG_ROOT",
        PASQAL,
        IGNORED,
        "qrmi's fallback ~/.pasqal/config (or PASQAL_CONFIG_ROOT/.pasqal/config, "
        "{NAME}_PASQAL_CONFIG_ROOT) is not read: set the variables above; a warning says so",
        shared=True,
    ),
    QrmiVariable(
        ACQUISITION_TOKEN,
        PASQAL,
        IGNORED,
        "accepted silently: qrmi's acquire() returns a random UUID here (no sessions)",
    ),
)


def qrmi_variables(type_name: str) -> list[QrmiVariable]:
    """The variables qrmi reads for resource type ``type_name`` (empty for ours only)."""
    return [v for v in QRMI_VARIABLES if type_name in v.types]


def known_suffixes(resource: Resource, spec: tuple[Setting, ...]) -> set[str]:
    """Every ``{NAME}_``-relative name read for the resource's type, here (its provider's
    settings ``spec`` and the runner's) or by qrmi."""
    known = {
        resource.suffix(candidate)
        for setting in (*spec, *RUNNER_SETTINGS)
        for candidate in (setting, *setting.aliases)
        if not candidate.shared
    }
    known.update(
        v.suffix(resource.type.name) for v in qrmi_variables(resource.type.name) if not v.shared
    )
    return known


def _other_type(suffix: str, own: str) -> str | None:
    """The resource type whose prefix ``suffix`` carries, if not the resource's own."""
    for rtype in RESOURCE_TYPES.values():
        if rtype.name != own and suffix.startswith(rtype.prefix):
            return rtype.name
    return None


def unknown_variable_warnings(resource: Resource, spec: tuple[Setting, ...]) -> list[str]:
    """One message per ``{NAME}_QRMI_*`` variable (environment or config file) read by
    neither this runner (the provider's settings ``spec``) nor qrmi for the resource's
    type, naming the closest known one."""
    known = known_suffixes(resource, spec)
    head = f"{resource.name}_"
    seen: dict[str, str] = {}  # suffix -> where it was set
    for key in resource.environ:
        if key.startswith(head + "QRMI_"):
            seen.setdefault(key[len(head) :], "")
    for key in resource.file_environment:
        if key.startswith("QRMI_"):
            seen.setdefault(key, " (in the config file)")
    messages = []
    for suffix, where in sorted(seen.items()):
        if suffix in known:
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
    if resource.type.name in PASQAL:
        for name in ("PASQAL_CONFIG_ROOT", f"{head}PASQAL_CONFIG_ROOT"):
            if resource.environ.get(name):
                messages.append(
                    f"{name} is set, but qrmi-task-runner does not read Pasqal config files; "
                    f"set {head}QRMI_PASQAL_CLOUD_AUTH_TOKEN, PASQAL_USERNAME/PASQAL_PASSWORD "
                    f"or {head}QRMI_PASQAL_CLOUD_CLIENT_ID/_CLIENT_SECRET instead"
                )
    return messages


def warn_unknown_variables(resource: Resource, spec: tuple[Setting, ...]) -> None:
    """Log :func:`unknown_variable_warnings` (names only: values are never shown)."""
    for message in unknown_variable_warnings(resource, spec):
        log.warning("%s", message)
