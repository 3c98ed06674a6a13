"""Pasqal: Pasqal Cloud (:mod:`.cloud`, Pulser sequences through the pasqal-cloud SDK) and
its logins (:mod:`.auth`); Pasqal on-premises QPUs behind the "warden" service
(:mod:`.local`, our REST client :mod:`.warden`, MUNGE credentials :mod:`.munge`).

Everything about the Pasqal resource types is declared here: names and prefixes,
settings, the variables qrmi reads for them (qiskit-community/qrmi@b2ed2e5
``src/pasqal/cloud.rs``, ``src/pasqal/cloud_config.rs`` (``PasqalConfig``),
``dependencies/pasqal_cloud_client/src/auth/auth.rs``: token first, then
username/password, then client credentials), and how the SDK's failures become our
errors. For ``pasqal-local``: qrmi@b2ed2e5 ``src/pasqal/local.rs`` (``PasqalLocal::new``:
``{name}_QRMI_WARDEN_URL``, else the deprecated ``{name}_QRMI_URL``; ``QRMI_JOB_UID`` and
``QRMI_JOB_ID``, process-wide, which ``acquire()`` sends to ``POST /sessions``;
``task_start`` sends the session ``{name}_QRMI_JOB_ACQUISITION_TOKEN`` as
``X-Warden-Session``) and ``dependencies/pasqal_local_client/src/client.rs``; the names were
checked in the ``qrmi==0.26.4`` wheel. Imports no SDK.
"""

from __future__ import annotations

from typing import Any

from qrmi_tasks.answers import error_body
from qrmi_tasks.config import Resource, ResourceType, Setting, http_url
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
    ALIAS,
    IGNORED,
    SAME,
    ProviderDeclaration,
    QrmiVariable,
)
from qrmi_tasks.retry import error_text, is_transient

_CLOUD = ("pasqal-cloud",)


def _skip_tls_verify(text: str) -> bool:
    """``PASQAL_SKIP_SSL_VERIFY``: only an explicit true value turns TLS checks off.

    The SDK takes any non-empty value (``0``, ``false``) as "skip"; here those mean verify,
    and anything unclear is refused rather than guessed.
    """
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false (1/0, yes/no, on/off)")


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
        # the SDK's own variable, read here with a strict meaning; the SDK's reading of it
        # is overridden on every session the provider makes
        Setting(
            "PASQAL_SKIP_SSL_VERIFY",
            required=False,
            shared=True,
            parse=_skip_tls_verify,
            default=False,
        ),
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

_LOCAL = ("pasqal-local",)
#: qrmi's older name of the warden URL (src/pasqal/local.rs warns that it is deprecated)
LEGACY_URL = "QRMI_URL"


def _job_uid(text: str) -> int:
    """``QRMI_JOB_UID``: qrmi parses it as an i32 (a user id)."""
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError("must be a numeric user id") from None
    if not 0 <= value < 2**31:
        raise ValueError("must be a numeric user id")
    return value


def _legacy_url_warnings(resource: Resource) -> list[str]:
    """qrmi warns when only the deprecated ``{name}_QRMI_URL`` names the warden; so do we."""
    head = f"{resource.name}_"
    current = f"{head}QRMI_WARDEN_URL"
    legacy = f"{head}{LEGACY_URL}"
    if resource.environ.get(current) or resource.file_environment.get("QRMI_WARDEN_URL"):
        return []
    if resource.environ.get(legacy) or resource.file_environment.get(LEGACY_URL):
        return [f"{legacy} is deprecated (as in qrmi); use {current} instead"]
    return []


PASQAL_LOCAL = ProviderDeclaration(
    provider="qrmi_tasks.providers.pasqal.local:PasqalLocalProvider",
    # the prefix makes the warden URL {name}_QRMI_WARDEN_URL, qrmi's name; the other
    # variables qrmi reads for the type are unprefixed or process-wide
    types=(ResourceType("pasqal-local", "QRMI_WARDEN_"),),
    settings=(
        Setting("URL", parse=http_url, aliases=(Setting(LEGACY_URL, prefixed=False),)),
        # the warden session the Slurm plugin's acquire() opened for the job; without one
        # the runner opens a session of its own and revokes it when the run ends
        Setting(ACQUISITION_TOKEN, required=False, secret=True, prefixed=False),
        Setting("QRMI_JOB_UID", required=False, shared=True, parse=_job_uid),
        Setting("QRMI_JOB_ID", required=False, shared=True),
        Setting("SLURM_JOB_ID", required=False, shared=True),
    ),
    qrmi_variables=(
        QrmiVariable(
            "{p}URL",
            _LOCAL,
            SAME,
            "required: the warden's URL (e.g. `http://localhost:4207`); `https://` is trusted "
            "through the system's CA store (`REQUESTS_CA_BUNDLE` for a private CA)",
        ),
        QrmiVariable(
            LEGACY_URL,
            _LOCAL,
            ALIAS,
            "of `QRMI_WARDEN_URL`, read when that is unset; deprecated (a warning says so, as "
            "in qrmi)",
        ),
        QrmiVariable(
            ACQUISITION_TOKEN,
            _LOCAL,
            SAME,
            "the warden session the Slurm plugin opened (`acquire()`), sent as "
            "`X-Warden-Session` and left open; unset: the runner opens a session for the run "
            "(`POST /sessions`) and revokes it at the end (qrmi's `task_start` requires it)",
        ),
        QrmiVariable(
            "QRMI_JOB_UID",
            _LOCAL,
            SAME,
            "process-wide: the user id a session is opened for (only when the runner opens "
            "one); unset: this process's uid (qrmi requires it)",
            shared=True,
        ),
        QrmiVariable(
            "QRMI_JOB_ID",
            _LOCAL,
            SAME,
            "process-wide: the Slurm job id a session is opened for (same); unset: "
            "`SLURM_JOB_ID` (qrmi requires it)",
            shared=True,
        ),
    ),
    warnings=_legacy_url_warnings,
)

DECLARATIONS = (PASQAL_CLOUD, PASQAL_LOCAL)


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
    body = error_body(_answer(exc))
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


# -- the warden (pasqal-local): our REST client's failures ----------------------------------
_WARDEN_HTTP = "qrmi_tasks.providers.pasqal.warden.WardenError"
_MUNGE = "qrmi_tasks.providers.pasqal.munge.MungeError"
_REQUESTS = "requests.exceptions.RequestException"


def _warden_status(exc: BaseException) -> int | None:
    return getattr(exc, "status", None)


def _warden_detail(exc: BaseException) -> str:
    if _WARDEN_HTTP in class_names(exc):
        return exc.detail  # type: ignore[attr-defined]
    return " ".join(str(exc).split())[:300]


def _warden_cannot(failure: Failure) -> str:
    where = f"HTTP {failure.status}: " if failure.status else f"{type(failure.exc).__name__}: "
    url, what = failure.fields["url"], failure.fields["what"]
    return f"warden at {url}: cannot {what}: {where}{failure.detail}"


#: the warden client's failures (:mod:`.warden`: HTTP answers as WardenError, transport as
#: requests' exceptions, MUNGE as MungeError). The call names ``what`` it was doing, the
#: warden ``url`` and the ``session`` variable; the create overrides 400/422 (PayloadError).
WARDEN_ERRORS = ErrorMap(
    (
        ErrorRule(
            _WARDEN_HTTP,
            AuthenticationError,
            "authentication failed: the warden at {url} refused the request to {what} "
            "(HTTP {status}: {detail}); check that munged runs on this node with the "
            "warden's MUNGE key, and {session}",
            when=lambda status: status in (401, 403),
        ),
        ErrorRule(
            _MUNGE,
            ProviderError,
            "cannot {what}: no MUNGE credential for the warden: {detail}",
        ),
        ErrorRule((_WARDEN_HTTP, _REQUESTS), TransientError, _warden_cannot, when=is_transient),
        ErrorRule((_WARDEN_HTTP, _REQUESTS), ProviderError, _warden_cannot, overridable=True),
    ),
    status=_warden_status,
    detail=_warden_detail,
    messages={
        PayloadError: "the warden refused the payload (HTTP {status}): {detail}; fix the "
        "sequence or job_runs and submit again"
    },
)
