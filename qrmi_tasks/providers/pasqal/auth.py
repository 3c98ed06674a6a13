"""Pasqal Cloud authentication and URLs as qrmi configures them, built on the SDK's classes.

qrmi (qiskit-community/qrmi@b2ed2e5 ``src/pasqal/cloud.rs``, ``cloud_config.rs`` and
``dependencies/pasqal_cloud_client/src/auth/auth.rs``) accepts three credentials, used in
this order:

1. ``{NAME}_QRMI_PASQAL_CLOUD_AUTH_TOKEN``, a bearer token, while it is usable: not a JWT,
   or a JWT whose ``exp`` is more than 10 s away;
2. ``PASQAL_USERNAME`` / ``PASQAL_PASSWORD`` (process-wide): Auth0's password-realm grant
   at ``{NAME}_QRMI_PASQAL_CLOUD_AUTH_ENDPOINT`` with Pasqal's public client id, realm
   ``pcs-users`` and the account API audience;
3. ``{NAME}_QRMI_PASQAL_CLOUD_CLIENT_ID`` / ``_CLIENT_SECRET``: the ``client_credentials``
   grant (service accounts) at the same endpoint.

The password login is the SDK's own ``PasswordGrantTokenProvider`` (configured with the
SDK's constants, the ones qrmi hard-codes too); the SDK has no client-credentials
provider, so :class:`_ClientCredentials` subclasses ``ExpiringTokenProvider``, which the
SDK documents as the way to add one. Tokens are cached until shortly before expiry by the
SDK's class, and every token obtained is registered with the log masker.

URLs: ``{NAME}_QRMI_PASQAL_CLOUD_BASE_URL`` (qrmi; default ``https://apis.pasqal.cloud``)
gives the core API ``{BASE_URL}/core-fast`` and the account API ``{BASE_URL}/account``
(the SDK's ``endpoints.CORE_API_URL`` / ``ACCOUNT_API_URL`` have that shape, and qrmi's
client calls ``{base_url}/core-fast/api/...``); our ``_ENDPOINT`` / ``_ACCOUNT_ENDPOINT``
name those two URLs directly and win when set.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from qrmi_tasks.answers import answer_hook
from qrmi_tasks.errors import AuthenticationError, ProviderError
from qrmi_tasks.logsetup import SECRETS

DEFAULT_BASE_URL = "https://apis.pasqal.cloud"  # qrmi's pasqal_cloud_client DEFAULT_BASE_URL
DEFAULT_AUTH_ENDPOINT = "authenticate.pasqal.cloud/oauth/token"  # qrmi's cloud_config.rs
_EXPIRY_GRACE_SECONDS = 10  # qrmi's AUTH_TOKEN_EXPIRY_GRACE_SECONDS


def token_url(auth_endpoint: str | None) -> str:
    """The OAuth token URL: qrmi adds ``https://`` when the endpoint has no scheme."""
    value = (auth_endpoint or DEFAULT_AUTH_ENDPOINT).strip()
    return value if "://" in value else f"https://{value}"


def api_urls(settings: dict[str, Any]) -> tuple[str, str]:
    """``(core, account)`` API URLs from BASE_URL, overridden by ENDPOINT / ACCOUNT_ENDPOINT."""
    base = (settings.get("BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    core = settings.get("ENDPOINT") or f"{base}/core-fast"
    account = settings.get("ACCOUNT_ENDPOINT") or f"{base}/account"
    return core.rstrip("/"), account.rstrip("/")


def credential_kind(settings: dict[str, Any]) -> str | None:
    """Which credential the settings provide first (qrmi's order), or None."""
    if settings.get("AUTH_TOKEN"):
        return "token"
    if settings.get("PASQAL_USERNAME") and settings.get("PASQAL_PASSWORD"):
        return "password"
    if settings.get("CLIENT_ID") and settings.get("CLIENT_SECRET"):
        return "client"
    return None


def token_usable(token: str, now: float | None = None) -> bool:
    """qrmi's test: a non-JWT token is usable; a JWT while ``exp`` is > 10 s away."""
    import jwt  # PyJWT, a dependency of pasqal-cloud

    if token.count(".") != 2:
        return True
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return False
    exp = claims.get("exp")
    if exp is None:
        return True
    try:
        return float(exp) > (time.time() if now is None else now) + _EXPIRY_GRACE_SECONDS
    except (TypeError, ValueError):
        return False


def token_provider(authentication: Any, endpoints: Any, settings: dict[str, Any]) -> Any:
    """A ``pasqal_cloud.authentication.TokenProvider`` following qrmi's order.

    ``authentication`` and ``endpoints`` are the SDK's modules (imported by the caller,
    which keeps the SDK's import cost out of runs that do not need it).
    """
    import requests

    url = token_url(settings.get("AUTH_ENDPOINT"))
    user, password = settings.get("PASQAL_USERNAME"), settings.get("PASQAL_PASSWORD")
    client_id, secret = settings.get("CLIENT_ID"), settings.get("CLIENT_SECRET")

    class _ClientCredentials(authentication.ExpiringTokenProvider):
        """OAuth client-credentials grant, with the form qrmi's auth.rs posts."""

        def _query_token(self) -> dict[str, Any]:
            response = requests.post(
                url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": secret,
                    "audience": endpoints.AUDIENCE,
                },
                timeout=(10, 30),  # per read; the runner bounds the whole call
                hooks={"response": answer_hook()},  # a token answer is a few KB
            )
            if response.status_code >= 400:
                raise requests.HTTPError(
                    f"{response.status_code}: {_oauth_error(response)}", response=response
                )
            return response.json()

    login: Callable[[], Any] | None = None
    what = ""
    if user and password:
        what = "PASQAL_USERNAME / PASQAL_PASSWORD"
        conf = endpoints.TokenProviderConf(
            token_endpoint=url,
            public_client_id=endpoints.PUBLIC_CLIENT_ID,
            audience=endpoints.AUDIENCE,
            realm=endpoints.REALM,
            grant_type=endpoints.AUTH0_TOKEN_PROVIDER_GRANT_TYPE,
        )

        def login() -> Any:  # its constructor already fetches the first token
            return authentication.PasswordGrantTokenProvider(user, password, conf)

    elif client_id and secret:
        what = "the *_QRMI_PASQAL_CLOUD_CLIENT_ID / _CLIENT_SECRET service account"
        login = _ClientCredentials
    static = settings.get("AUTH_TOKEN")

    class QrmiTokenProvider(authentication.TokenProvider):
        """The static token while usable, then the login (created on first need)."""

        def __init__(self) -> None:
            self._login: Any = None

        def get_token(self) -> str:
            if static and (login is None or token_usable(static)):
                return static
            if login is None:
                raise AuthenticationError("no Pasqal Cloud credential is configured")
            try:
                if self._login is None:
                    self._login = login()
                token = self._login.get_token()
            except (authentication.TokenProviderError, requests.HTTPError) as exc:
                response = getattr(exc.args[0] if exc.args else None, "response", None)
                response = response if response is not None else getattr(exc, "response", None)
                status = getattr(response, "status_code", None)
                detail = " ".join(str(exc).split())[:300]
                raise AuthenticationError(
                    f"authentication failed: the Pasqal Cloud login at {url} refused {what} "
                    f"(HTTP {status}: {detail})"
                ) from None
            except (requests.RequestException, ValueError) as exc:  # no answer, or not JSON
                raise ProviderError(
                    f"Pasqal Cloud: cannot log in at {url}: {type(exc).__name__}"
                ) from None
            SECRETS.add([token])
            return token

    return QrmiTokenProvider()


def _oauth_error(response: Any) -> str:
    """An OAuth error body's ``error_description`` or ``error`` (RFC 6749 5.2), one line."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:200]
    if isinstance(body, dict):
        return str(body.get("error_description") or body.get("error") or body)[:200]
    return str(body)[:200]
