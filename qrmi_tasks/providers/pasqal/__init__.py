"""Pasqal: Pasqal Cloud (:mod:`.cloud`, Pulser sequences through the pasqal-cloud SDK) and
its logins (:mod:`.auth`).

Everything about the Pasqal resource types is declared here: names and prefixes,
settings, the variables qrmi reads for them (qiskit-community/qrmi@b2ed2e5
``src/pasqal/cloud.rs``, ``src/pasqal/cloud_config.rs`` (``PasqalConfig``),
``dependencies/pasqal_cloud_client/src/auth/auth.rs``: token first, then
username/password, then client credentials), and how the SDK's failures become our
errors. Imports no SDK.
"""

from __future__ import annotations

from typing import Any

from qrmi_tasks.config import Resource, ResourceType, Setting
from qrmi_tasks.errors import (
    AuthenticationError,
    ErrorMap,
    ErrorRule,
    Failure,
    PayloadError,
    ProviderError,
    TransientError,
    class_names,
)
from qrmi_tasks.providers.declaration import (
    ACQUISITION_TOKEN,
    IGNORED,
    SAME,
    ProviderDeclaration,
    QrmiVariable,
)
from qrmi_tasks.retry import error_text, is_transient

_CLOUD = ("pasqal-cloud",)


def _config_root_warnings(resource: Resource) -> list[str]:
    """qrmi falls back to Pasqal config files; this runner does not: say so when set."""
    head = f"{resource.name}_"
    return [
        f"{name} is set, but qrmi-task-runner does not read Pasqal config files; set "
        f"{head}QRMI_PASQAL_CLOUD_AUTH_TOKEN, PASQAL_USERNAME/PASQAL_PASSWORD or "
        f"{head}QRMI_PASQAL_CLOUD_CLIENT_ID/_CLIENT_SECRET instead"
        for name in ("PASQAL_CONFIG_ROOT", f"{head}PASQAL_CONFIG_ROOT")
        if resource.environ.get(name)
    ]


PASQAL_CLOUD = ProviderDeclaration(
    provider="qrmi_tasks.providers.pasqal.cloud:PasqalCloudProvider",
    types=(ResourceType("pasqal-cloud", "QRMI_PASQAL_CLOUD_"),),
    settings=(
        Setting("PROJECT_ID"),
        # One credential is needed, taken in qrmi's order (see auth): the token, the
        # process-wide username/password, the service account's client id/secret
        Setting("AUTH_TOKEN", required=False, secret=True),
        Setting("PASQAL_USERNAME", required=False, shared=True),
        Setting("PASQAL_PASSWORD", required=False, secret=True, shared=True),
        Setting("CLIENT_ID", required=False),
        Setting("CLIENT_SECRET", required=False, secret=True),
        Setting("AUTH_ENDPOINT", required=False),  # OAuth token URL of both logins
        Setting("BASE_URL", required=False),  # qrmi's API root: {BASE_URL}/core-fast, /account
        Setting("ENDPOINT", required=False),  # core API URL (wins over BASE_URL's)
        Setting("ACCOUNT_ENDPOINT", required=False),  # account API URL (same)
    ),
    qrmi_variables=(
        QrmiVariable(
            "{p}PROJECT_ID",
            _CLOUD,
            SAME,
            "required here (qrmi allows none for unauthenticated calls; a batch needs one)",
        ),
        QrmiVariable(
            "{p}AUTH_TOKEN",
            _CLOUD,
            SAME,
            "bearer token, used while usable (not a JWT, or its `exp` more than 10 s away), "
            "then the logins below; masked",
        ),
        QrmiVariable(
            "PASQAL_USERNAME",
            _CLOUD,
            SAME,
            "process-wide (no `{name}_`), as in qrmi; with `PASQAL_PASSWORD`: password login "
            "at `AUTH_ENDPOINT`",
            shared=True,
        ),
        QrmiVariable("PASQAL_PASSWORD", _CLOUD, SAME, "masked", shared=True),
        QrmiVariable(
            "{p}CLIENT_ID",
            _CLOUD,
            SAME,
            "with `CLIENT_SECRET`: service-account (client credentials) login, used when no "
            "username/password is set",
        ),
        QrmiVariable("{p}CLIENT_SECRET", _CLOUD, SAME, "masked"),
        QrmiVariable(
            "{p}AUTH_ENDPOINT",
            _CLOUD,
            SAME,
            "OAuth token URL of both logins (default `authenticate.pasqal.cloud/oauth/token`; "
            "`https://` added when there is no scheme)",
        ),
        QrmiVariable(
            "{p}BASE_URL",
            _CLOUD,
            SAME,
            "API root (default `https://apis.pasqal.cloud`): core API `{BASE_URL}/core-fast`, "
            "account API `{BASE_URL}/account`; our `..._ENDPOINT` / `..._ACCOUNT_ENDPOINT` name "
            "those two URLs and win when set",
        ),
        QrmiVariable(
            "PASQAL_CONFIG_ROOT",
            _CLOUD,
            IGNORED,
            "qrmi's fallback file `~/.pasqal/config` (or under `PASQAL_CONFIG_ROOT`, "
            "`{name}_PASQAL_CONFIG_ROOT`) is not read; setting either root variable gets a "
            "warning saying which variables to set instead",
            shared=True,
        ),
        QrmiVariable(
            ACQUISITION_TOKEN,
            _CLOUD,
            IGNORED,
            "qrmi's `acquire()` returns a random UUID for this type (no sessions)",
        ),
    ),
    warnings=_config_root_warnings,
)

DECLARATIONS = (PASQAL_CLOUD,)


def _answer(exc: BaseException) -> Any:
    """The HTTP response behind an SDK or requests failure (None: no answer at all)."""
    if "requests.exceptions.HTTPError" in class_names(exc):
        return getattr(exc, "response", None)
    return getattr(exc.__cause__, "response", None)


def _status(exc: BaseException) -> int | None:
    return getattr(_answer(exc), "status_code", None)


def _detail(exc: BaseException) -> str:
    """The service's reason in an error answer, one line (retry.error_text reads JSend);
    the SDK's own message, which names the call, when the answer says nothing."""
    response = _answer(exc)
    body: Any = None
    if response is not None:
        try:
            body = response.json()
        except ValueError:
            body = response.text
    return error_text(body) if body else " ".join(str(exc).split())[:300]


def _cannot(failure: Failure) -> str:
    # no status: no answer at all (refused, dropped, timed out); the class says which
    where = f"HTTP {failure.status}: " if failure.status else f"{type(failure.exc).__name__}: "
    return f"Pasqal Cloud: cannot {failure.fields['what']}: {where}{failure.detail}"


_SDK_OR_HTTP = (
    "pasqal_cloud.errors.ExceptionWithResponseContext",
    "requests.exceptions.RequestException",
)

#: the SDK's (and requests') failures; the call names ``what`` it was doing and the
#: ``credential`` variables in use; a call sending the payload overrides its refusals
#: (``overrides={422: PayloadError}``)
CLOUD_ERRORS = ErrorMap(
    (
        ErrorRule(
            _SDK_OR_HTTP,
            AuthenticationError,
            "authentication failed: Pasqal Cloud refused the token while trying to {what} "
            "(HTTP {status}); check {credential}",
            when=lambda status: status in (401, 403),
        ),
        ErrorRule(_SDK_OR_HTTP, TransientError, _cannot, when=is_transient),
        ErrorRule(_SDK_OR_HTTP, ProviderError, _cannot, overridable=True),
    ),
    status=_status,
    detail=_detail,
    messages={
        PayloadError: "Pasqal Cloud refused the payload (HTTP {status}): {detail}; fix the "
        "sequence or job_runs and submit again"
    },
)
