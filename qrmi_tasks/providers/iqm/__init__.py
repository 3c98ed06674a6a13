"""IQM: IQM Server (:mod:`.server`, IQM JSON circuit jobs through our own REST client,
:mod:`.api`), and the IQM JSON circuit model both it and the ``local`` resource read
(:mod:`.circuits`).

Everything about the ``iqm-server`` resource type is declared here: its name and prefix,
the settings, the variables qrmi reads for it and how HTTP failures become our errors.
qrmi's names are from qiskit-community/qrmi@b2ed2e5 ``src/iqm/server.rs``
(``IQMServer::new``: ``{name}_QRMI_IQM_ISA_ENDPOINT``, ``..._TOKEN``, and
``{name}_QRMI_JOB_ACQUISITION_TOKEN``; checked against the strings of the ``qrmi==0.26.4``
wheel's ``_core.abi3.so``); the error bodies (``{"error_code", "message", "request_id"}``)
and statuses per route are those of its generated client ``dependencies/iqm_client``
(``src/apis/jobs_api.rs``, ``src/models/``). Imports nothing heavy.
"""

from __future__ import annotations

from typing import Any

from qrmi_tasks.answers import error_body
from qrmi_tasks.config import ResourceType, Setting, http_url
from qrmi_tasks.errors import (
    AuthenticationError,
    ErrorMap,
    ErrorRule,
    Failure,
    PayloadError,
    ProviderError,
    TransientError,
)
from qrmi_tasks.providers.declaration import (
    ACQUISITION_TOKEN,
    IGNORED,
    SAME,
    ProviderDeclaration,
    QrmiVariable,
)
from qrmi_tasks.retry import error_text, is_transient, one_line

_SERVER = ("iqm-server",)

IQM_SERVER = ProviderDeclaration(
    provider="qrmi_tasks.providers.iqm.server:IQMServerProvider",
    types=(ResourceType("iqm-server", "QRMI_IQM_ISA_"),),
    settings=(
        Setting("ENDPOINT", parse=http_url),
        Setting("TOKEN", secret=True),
    ),
    qrmi_variables=(
        QrmiVariable(
            "{p}ENDPOINT",
            _SERVER,
            SAME,
            "required: the IQM Server URL (routes under `{ENDPOINT}/api/v1/`)",
        ),
        QrmiVariable(
            "{p}TOKEN", _SERVER, SAME, "required: the API token, sent as a bearer token; masked"
        ),
        QrmiVariable(
            ACQUISITION_TOKEN,
            _SERVER,
            IGNORED,
            "qrmi's `acquire()` returns a random UUID for this type (IQM Server has no sessions)",
        ),
    ),
)

DECLARATIONS = (IQM_SERVER,)


def _answer(exc: BaseException) -> Any:
    """The HTTP response behind a requests failure (None: no answer at all)."""
    return getattr(exc, "response", None)


def _status(exc: BaseException) -> int | None:
    return getattr(_answer(exc), "status_code", None)


def _detail(exc: BaseException) -> str:
    """IQM Server's reason: ``error_code: message`` of its error bodies (generated client's
    ``models/*``: ``{"error_code", "message", "request_id", "details"?}``), else the body
    or the exception as one line."""
    response = _answer(exc)
    if response is None:
        return one_line(exc, 300)
    body = error_body(response)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        code = body.get("error_code")
        return one_line(f"{code}: {body['message']}" if code else body["message"], 300)
    return error_text(body, f"HTTP {response.status_code}")


def _cannot(failure: Failure) -> str:
    where = f"HTTP {failure.status}: " if failure.status else f"{type(failure.exc).__name__}: "
    return f"IQM Server: cannot {failure.fields['what']}: {where}{failure.detail}"


_HTTP = "requests.exceptions.RequestException"

#: requests' failures of our client (:mod:`.api`); the call names ``what`` it was doing and
#: the ``token`` variable. The call that sends the payload overrides 400/413/422 with
#: :class:`PayloadError`. 403 is not an authentication failure on every route: on a
#: submit it says the account cannot run now (``timeslot_required``, ``not_enough_credits``,
#: ``quota_exceeded``...), on a cancel that the job is final (``illegal_job_status``), so
#: only a 401 names the token.
IQM_ERRORS = ErrorMap(
    (
        ErrorRule(
            _HTTP,
            AuthenticationError,
            "authentication failed: IQM Server refused the token while trying to {what} "
            "(HTTP 401: {detail}); check {token}",
            when=lambda status: status == 401,
        ),
        ErrorRule(_HTTP, TransientError, _cannot, when=is_transient),
        ErrorRule(_HTTP, ProviderError, _cannot, overridable=True),
        ErrorRule(
            "json.decoder.JSONDecodeError",
            ProviderError,
            "IQM Server: cannot {what}: the answer is not JSON",
        ),
    ),
    status=_status,
    detail=_detail,
    messages={
        PayloadError: "IQM Server refused the job (HTTP {status}: {detail}); fix 'iqmjson' or "
        "'job_type' and submit again"
    },
)
