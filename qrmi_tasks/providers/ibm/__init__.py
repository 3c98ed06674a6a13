"""IBM: Direct Access / Quantum System (:mod:`.direct_access`) and Qiskit Runtime / Quantum
Compute Service (:mod:`.qiskit_runtime`), side by side on one IAM token wrapper
(:mod:`.iam`) and one job-reason text (:func:`job_reason`).

Everything about the IBM resource types is declared here: names and prefixes, settings,
the variables qrmi reads for them, and how the failures of their clients (S3 error answers
of the Direct Access job data, our IBM REST client :mod:`.rest` for Qiskit Runtime) become
our errors. qrmi's names are from qiskit-community/qrmi@b2ed2e5 (0.23.1; checked against
the strings of the ``qrmi==0.26.4`` wheel's ``_core.abi3.so``): ``src/ibm/quantum_system.rs``
(``IBMQuantumSystem::new``, ``task_start``, ``s3_env``),
``src/ibm/quantum_compute_service.rs`` and ``src/ibm/qiskit_runtime_service.rs``
(``::new``: ``SESSION_ID`` then ``QRMI_JOB_ACQUISITION_TOKEN``; ``TIMEOUT_SECONDS`` then
``QRMI_JOB_TIMEOUT_SECONDS``). Imports no SDK.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qrmi_tasks.config import ResourceType, Setting, http_url, one_of, positive_int
from qrmi_tasks.errors import (
    AuthenticationError,
    ErrorMap,
    ErrorRule,
    Failure,
    ProviderError,
    TransientError,
    class_names,
)
from qrmi_tasks.providers.declaration import (
    ACQUISITION_TOKEN,
    ALIAS,
    IGNORED,
    JOB_TIMEOUT,
    SAME,
    ProviderDeclaration,
    QrmiVariable,
)
from qrmi_tasks.retry import is_transient, one_line

QS = ("ibm-quantum-system",)
QCS = ("ibm-quantum-compute-service", "qiskit-runtime-service")
SESSION_MODES = ("batch", "dedicated")

#: what both IBM services need: the API, and an API key that IAM exchanges for tokens
API_SETTINGS: tuple[Setting, ...] = (
    Setting("ENDPOINT", parse=http_url),
    Setting("IAM_ENDPOINT", parse=http_url),
    Setting("IAM_APIKEY", secret=True),
    Setting("SERVICE_CRN"),
)
_API_NAMES = frozenset(s.name for s in API_SETTINGS)


def job_reason(code: Any, reason: Any, solution: Any = None) -> str:
    """An IBM job's failure reason as one line: ``reason_code C: reason; solution: S``
    (what either service's job answer gives of it; '' when it gives nothing)."""
    parts = []
    if reason:
        parts.append(f"reason_code {code}: {reason}" if code else str(reason))
    elif code:
        parts.append(f"reason_code {code}")
    if solution:
        parts.append(f"solution: {solution}")
    return one_line("; ".join(parts))


def _api_required(note: str = "required") -> tuple[tuple[str, str], ...]:
    return (
        ("ENDPOINT", note),
        ("IAM_ENDPOINT", note),
        ("IAM_APIKEY", f"{note}; masked in logs" if note == "required" else note),
        ("SERVICE_CRN", note),
    )


DIRECT_ACCESS = ProviderDeclaration(
    provider="qrmi_tasks.providers.ibm.direct_access:DirectAccessProvider",
    # qrmi's prefix first (qrmi 0.26.4 reads QRMI_IBM_QS_ only); our older QRMI_IBM_DA_
    # names are read when the QS_ one is unset
    types=(
        ResourceType("direct-access", "QRMI_IBM_QS_", ("QRMI_IBM_DA_",)),
        ResourceType("ibm-quantum-system", "QRMI_IBM_QS_", ("QRMI_IBM_DA_",)),  # qrmi's name
    ),
    settings=(
        *API_SETTINGS,
        Setting("AWS_ACCESS_KEY_ID", secret=True),
        Setting("AWS_SECRET_ACCESS_KEY", secret=True),
        Setting("S3_ENDPOINT"),
        Setting("S3_BUCKET"),
        Setting("S3_REGION"),
        Setting(JOB_TIMEOUT, prefixed=False, parse=positive_int),
        # qrmi's name (src/ibm/quantum_system.rs); our older _FOR_DAAPI is read when it is unset
        Setting(
            "S3_ENDPOINT_FOR_QSAPI", required=False, aliases=(Setting("S3_ENDPOINT_FOR_DAAPI"),)
        ),
        Setting("API_VERSION", required=False),
        Setting(
            "LOG_LEVEL",
            required=False,
            default="warning",
            parse=one_of("critical", "error", "warning", "info", "debug"),
        ),
    ),
    # generating a payload needs no S3 bucket nor job timeout
    target_settings=_API_NAMES | {"API_VERSION"},
    qrmi_variables=(
        *(QrmiVariable(f"{{p}}{name}", QS, SAME, note) for name, note in _api_required()),
        QrmiVariable("{p}AWS_ACCESS_KEY_ID", QS, SAME, "required (see S3 below); masked"),
        QrmiVariable("{p}AWS_SECRET_ACCESS_KEY", QS, SAME, "required; masked"),
        *(
            QrmiVariable(f"{{p}}{name}", QS, SAME, "required")
            for name in ("S3_ENDPOINT", "S3_BUCKET", "S3_REGION")
        ),
        QrmiVariable(
            "{p}S3_ENDPOINT_FOR_QSAPI",
            QS,
            SAME,
            "optional: S3 endpoint as the service reaches it (presigned URLs use it); our "
            "older `..._S3_ENDPOINT_FOR_DAAPI` is its alias",
        ),
        QrmiVariable(JOB_TIMEOUT, QS, SAME, "required: the job's `timeout_secs`"),
        QrmiVariable(
            ACQUISITION_TOKEN,
            QS,
            IGNORED,
            "qrmi's `acquire()` returns a random UUID for this type (no sessions)",
        ),
    ),
)

QISKIT_RUNTIME = ProviderDeclaration(
    provider="qrmi_tasks.providers.ibm.qiskit_runtime:QiskitRuntimeProvider",
    # qrmi's current prefix QRMI_IBM_QCS_ first, then QRMI_IBM_QRS_, the older one (qrmi
    # 0.26.4 still reads it for qiskit-runtime-service), for both names of the type
    types=(
        ResourceType("qiskit-runtime-service", "QRMI_IBM_QCS_", ("QRMI_IBM_QRS_",)),
        ResourceType("ibm-quantum-compute-service", "QRMI_IBM_QCS_", ("QRMI_IBM_QRS_",)),
    ),
    settings=(
        *API_SETTINGS,
        # qrmi reads {NAME}_QRMI_JOB_TIMEOUT_SECONDS when TIMEOUT_SECONDS is unset
        Setting(
            "TIMEOUT_SECONDS",
            required=False,
            parse=positive_int,
            aliases=(Setting(JOB_TIMEOUT, prefixed=False),),
        ),
        Setting("SESSION_MODE", required=False, parse=one_of(*SESSION_MODES)),
        Setting("SESSION_MAX_TTL", required=False, parse=positive_int),
        # The session to run in: SESSION_ID, else the token the spank_qrmi plugin handed the
        # job (its acquire() opened that session), as qrmi's ::new reads them
        Setting(
            "SESSION_ID", required=False, aliases=(Setting(ACQUISITION_TOKEN, prefixed=False),)
        ),
    ),
    target_settings=_API_NAMES,
    qrmi_variables=(
        *(
            QrmiVariable(f"{{p}}{name}", QCS, SAME, note.replace(" in logs", ""))
            for name, note in _api_required()
        ),
        QrmiVariable(
            "{p}SESSION_ID",
            QCS,
            SAME,
            "run the job in this session, left open; wins over the acquisition token",
        ),
        QrmiVariable(
            ACQUISITION_TOKEN,
            QCS,
            ALIAS,
            "of `SESSION_ID`, read when that is unset: the session the plugin opened; the job "
            "goes into it and it is left open (the plugin closes it)",
        ),
        QrmiVariable(
            "{p}SESSION_MODE",
            QCS,
            SAME,
            "in qrmi only the plugin's `acquire()` uses it (default `dedicated`); here, with "
            "neither `SESSION_ID` nor the token, the runner opens a session of this mode and "
            "closes it after the job; unset: no session",
        ),
        QrmiVariable(
            "{p}SESSION_MAX_TTL",
            QCS,
            SAME,
            "`max_ttl` (s) of a session the runner opens; qrmi's `acquire()` sends 28800 when "
            "unset, here unset leaves the service's default (8 h)",
        ),
        QrmiVariable("{p}TIMEOUT_SECONDS", QCS, SAME, "the job's `cost` (s)"),
        QrmiVariable(
            JOB_TIMEOUT,
            QCS,
            ALIAS,
            "of `TIMEOUT_SECONDS`, read when that is unset (as qrmi does)",
        ),
    ),
)

DECLARATIONS = (DIRECT_ACCESS, QISKIT_RUNTIME)


# -- the Direct Access job data (S3) --------------------------------------------------------
#: S3 error answers (``da_storage.S3Error``: ``Code: Message``) that no retry cures; the
#: call names the ``action``, ``bucket`` and ``endpoint``
S3_ERRORS = ErrorMap(
    (
        ErrorRule(
            "qrmi_tasks.providers.ibm.da_storage.S3Error",
            ProviderError,
            "S3 {action} failed (bucket {bucket} at {endpoint}): {detail}",
        ),
    ),
    detail=lambda exc: one_line(exc, 300),
)


# -- Qiskit Runtime (our REST client, :mod:`.rest`) ------------------------------------------
_IAM_ERROR = "qrmi_tasks.providers.ibm.iam.IamError"
_API_ERROR = "qrmi_tasks.providers.ibm.rest.ApiError"
_UNAVAILABLE = "qrmi_tasks.providers.ibm.rest.Unavailable"
_PROTOCOL_ERROR = "qrmi_tasks.providers.ibm.rest.ProtocolError"


def _runtime_status(exc: BaseException) -> int | None:
    """The HTTP status behind a failure: -1 when no answer came; for the IAM exchange,
    IAM's status when it refused the key, else 0 (no usable answer)."""
    names = class_names(exc)
    if _IAM_ERROR in names:
        return exc.status if exc.refused else 0  # type: ignore[attr-defined]
    if _UNAVAILABLE in names:
        if exc.iam:  # type: ignore[attr-defined]
            return 0
        status = exc.status  # type: ignore[attr-defined]
        return -1 if status is None else status
    return getattr(exc, "status", None)


def _runtime_detail(exc: BaseException) -> str:
    """The service's (or IAM's) error text behind a failure of our client."""
    names = class_names(exc)
    if _IAM_ERROR in names:
        return exc.detail  # type: ignore[attr-defined]
    if _UNAVAILABLE in names:
        cause = exc.cause  # type: ignore[attr-defined]
        return cause.detail if exc.iam else exc.reason  # type: ignore[attr-defined]
    return getattr(exc, "detail", None) or one_line(exc, 300)


def _no_answer(failure: Failure) -> str:
    """A transient failure's reason: ``HTTP N`` or why no answer came, in a few words."""
    if failure.status is not None and failure.status > 0:
        return f"HTTP {failure.status}"
    detail = getattr(failure.exc, "connection_detail", failure.detail)
    return f"no answer from {failure.fields['endpoint']} ({detail})"


def _cannot(reason: Callable[[Failure], str] | str) -> Callable[[Failure], str]:
    """``Qiskit Runtime: cannot <what>: <reason>``, the wording of every failed call."""

    def message(failure: Failure) -> str:
        text = reason(failure) if callable(reason) else failure.format(reason)
        return f"Qiskit Runtime: cannot {failure.fields['what']}: {text}"

    return message


#: our Qiskit Runtime client's failures (:mod:`.rest`, and the IAM wrapper's). The call
#: names ``what`` it was doing, the ``endpoint``, ``iam`` URL and the ``apikey`` and
#: ``crn`` variables.
RUNTIME_ERRORS = ErrorMap(
    (
        ErrorRule(
            _IAM_ERROR,
            AuthenticationError,
            "authentication failed: IAM at {iam} refused the API key (HTTP {status}: "
            "{detail}); check {apikey}",
            when=lambda status: status != 0,
        ),
        ErrorRule(_IAM_ERROR, TransientError, _cannot("IAM at {iam}: {detail}")),
        ErrorRule(
            _API_ERROR,
            AuthenticationError,
            "authentication failed: Qiskit Runtime at {endpoint} refused a fresh IAM token "
            "(HTTP 401) while trying to {what}; check {apikey} and {crn}",
            when=lambda status: status == 401,
        ),
        ErrorRule(
            _API_ERROR,
            AuthenticationError,
            "authentication failed: Qiskit Runtime refused access while trying to {what} "
            "(HTTP 403: {detail}); check {crn}",
            when=lambda status: status == 403,
        ),
        ErrorRule(
            _API_ERROR,
            ProviderError,
            _cannot("HTTP {status}: {detail}"),
            when=lambda status: not is_transient(status),
            overridable=True,
        ),
        # a transient status the call chose not to repeat (a POST that must not run twice)
        ErrorRule(_API_ERROR, TransientError, _cannot(_no_answer)),
        ErrorRule(_PROTOCOL_ERROR, ProviderError, _cannot("{detail}")),
        ErrorRule(
            _UNAVAILABLE, TransientError, _cannot("IAM at {iam}: {detail}"), when=lambda s: s == 0
        ),
        ErrorRule(_UNAVAILABLE, TransientError, _cannot(_no_answer)),
    ),
    status=_runtime_status,
    detail=_runtime_detail,
)
