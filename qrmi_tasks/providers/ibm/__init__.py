"""IBM: Direct Access / Quantum System (:mod:`.direct_access`) and Qiskit Runtime / Quantum
Compute Service (:mod:`.qiskit_runtime`), side by side on one IAM token wrapper
(:mod:`.iam`) and one job-reason text (:func:`job_reason`).

Everything about the IBM resource types is declared here: names and prefixes, settings,
the variables qrmi reads for them, and how the foreign failures of their clients
(S3 error answers of the Direct Access job data, qiskit-ibm-runtime) become our errors. qrmi's
names are from qiskit-community/qrmi@b2ed2e5 (0.23.1; checked against the strings of the
``qrmi==0.26.4`` wheel's ``_core.abi3.so``): ``src/ibm/quantum_system.rs``
(``IBMQuantumSystem::new``, ``task_start``, ``s3_env``),
``src/ibm/quantum_compute_service.rs`` and ``src/ibm/qiskit_runtime_service.rs``
(``::new``: ``SESSION_ID`` then ``QRMI_JOB_ACQUISITION_TOKEN``; ``TIMEOUT_SECONDS`` then
``QRMI_JOB_TIMEOUT_SECONDS``). Imports no SDK.
"""

from __future__ import annotations

import re
from typing import Any

from qrmi_tasks.answers import error_body
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
from qrmi_tasks.retry import error_text, is_transient, one_line

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


# -- Qiskit Runtime (qiskit-ibm-runtime) ---------------------------------------------------
_IAM_ERROR = "qrmi_tasks.providers.ibm.iam.IamError"
_REQUESTS_API_ERROR = "qiskit_ibm_runtime.api.exceptions.RequestsApiError"


def _runtime_status(exc: BaseException) -> int | None:
    """The HTTP status behind a failure: -1 when the library got no answer; for the IAM
    exchange, IAM's status when it refused the key, else 0 (no usable answer)."""
    if _IAM_ERROR in class_names(exc):
        return exc.status if exc.refused else 0  # type: ignore[attr-defined]
    return getattr(exc, "status_code", None)


def _runtime_detail(exc: BaseException) -> str:
    """The service's error text behind a library error (:func:`retry.error_text`)."""
    if _IAM_ERROR in class_names(exc):
        return exc.detail  # type: ignore[attr-defined]
    response = getattr(exc.__cause__, "response", None)
    if response is None:
        return one_line(exc, 300)
    return error_text(error_body(response), str(exc))


def _no_answer(failure: Failure) -> str:
    """Why a request got no HTTP answer (status -1), in a few words; ``HTTP N`` otherwise."""
    if failure.status is not None and failure.status > 0:
        return f"HTTP {failure.status}"
    text = str(failure.exc)
    errno = re.search(r"\[Errno -?\d+\] [^\"')]+", text)
    if errno or "Max retries exceeded" in text:
        detail = errno.group(0) if errno else "retries exhausted"
        return f"no answer from {failure.fields['endpoint']} ({detail})"
    return one_line(text, 300)


#: qiskit-ibm-runtime's failures (and our IAM wrapper's). The call names ``what`` it was
#: doing, the ``endpoint``, ``iam`` URL and the ``apikey`` and ``crn`` variables. A
#: TransientError's text is the reason only: the provider's retry loop words the rest.
RUNTIME_ERRORS = ErrorMap(
    (
        ErrorRule(
            _IAM_ERROR,
            AuthenticationError,
            "authentication failed: IAM at {iam} refused the API key (HTTP {status}: "
            "{detail}); check {apikey}",
            when=lambda status: status != 0,
        ),
        ErrorRule(_IAM_ERROR, TransientError, "IAM at {iam}: {detail}"),
        ErrorRule(
            "qiskit_ibm_runtime.exceptions.IBMNotAuthorizedError",
            AuthenticationError,
            "authentication failed: Qiskit Runtime at {endpoint} refused a fresh IAM token "
            "(HTTP 401) while trying to {what}; check {apikey} and {crn}",
        ),
        ErrorRule(
            _REQUESTS_API_ERROR,
            AuthenticationError,
            "authentication failed: Qiskit Runtime refused access while trying to {what} "
            "(HTTP 403: {detail}); check {crn}",
            when=lambda status: status == 403,
        ),
        ErrorRule(
            _REQUESTS_API_ERROR,
            ProviderError,
            "Qiskit Runtime: cannot {what}: HTTP {status}: {detail}",
            when=lambda status: status != -1 and not is_transient(status),
            overridable=True,
        ),
        ErrorRule(_REQUESTS_API_ERROR, TransientError, _no_answer),
        # a job's state that forbids the call: the provider's own code decides
        ErrorRule("qiskit_ibm_runtime.exceptions.RuntimeInvalidStateError", None),
        ErrorRule(
            "qiskit_ibm_runtime.exceptions.IBMError",
            ProviderError,
            lambda f: f"Qiskit Runtime: cannot {f.fields['what']}: {one_line(f.exc)}",
        ),
        ErrorRule(
            "json.decoder.JSONDecodeError",
            ProviderError,
            "Qiskit Runtime: cannot {what}: the service's answer is not JSON",
        ),
    ),
    status=_runtime_status,
    detail=_runtime_detail,
)
