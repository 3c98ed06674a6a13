"""IBM Cloud IAM access tokens for an API key: the one wrapper both IBM providers use.

The exchange is IAM's documented one ("Getting an IAM token from an API key",
https://cloud.ibm.com/docs/account?topic=account-iamtoken_from_apikey; the same request
as ibm-cloud-sdk-core 3.x's ``IAMTokenManager.request_token``): ``POST {url}/identity/token``
with the form ``grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=KEY``, answered
by ``access_token``, ``expires_in`` (seconds) and ``expiration`` (epoch seconds). It is
made here with requests directly: the SDK (with PyJWT and cryptography, which it loads
to read the token's expiry) cost every Direct Access run ~70 ms of CPU and ~13 MiB.

What this wrapper guarantees:

* the configured IAM URL (a trailing ``/identity/token`` is dropped, as the SDK does),
  and connect/read timeouts (:data:`TIMEOUTS`; the SDK's default is one 60 s timeout);
* a failure is one :class:`IamError` (status, IAM's own reason ``errorCode:
  errorMessage``), whatever went wrong: an HTTP error answer, no answer, or an answer
  that is no token;
* redirects are not followed: a 3xx from the IAM URL would re-send the API key to
  wherever it points. The answer is a configuration error naming the place it pointed to;
* an answer larger than :data:`qrmi_tasks.answers.MAX_ANSWER_BYTES` is not read further;
* every token obtained (asked for, or read from the shared cache) is registered with the
  log masker, and none is logged;
* refresh before expiry, by the SDK's rule: a token is replaced once 80 % of its
  lifetime has passed (``JWTTokenManager._save_token_info``: refresh at
  ``exp - 0.2 * (exp - iat)``). The lifetime is IAM's ``expires_in`` counted from the
  answer's arrival on this node's clock, so a skewed clock does not shorten it. If the
  refresh fails while the token is still valid (beyond the SDK's 10 s expiry window,
  ``IAM_EXPIRATION_WINDOW``), the token is used and the refresh tried again 60 s later
  (the SDK's pacing);
* with ``shared``: the token is shared by the user's runners on the node
  (:mod:`qrmi_tasks.token_cache`): N runners starting together make one token request.
  :meth:`IamTokens.invalidate` (an API answered 401) drops the shared token only if it
  is still the one that failed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import requests

from qrmi_tasks import __version__, token_cache
from qrmi_tasks.answers import AnswerTooLarge, read_capped
from qrmi_tasks.errors import ConfigError, first_line
from qrmi_tasks.logsetup import SECRETS
from qrmi_tasks.retry import error_text
from qrmi_tasks.token_cache import SharedToken, Token

log = logging.getLogger("qrmi_tasks.runner")

#: per socket operation (connect, read); the runner bounds each whole call
TIMEOUTS = (10.0, 30.0)
OPERATION_PATH = "/identity/token"
GRANT_TYPE = "urn:ibm:params:oauth:grant-type:apikey"
#: the share of a token's lifetime after which it is replaced (ibm-cloud-sdk-core's 80 %)
REFRESH_FRACTION = 0.8
#: a token this close to its expiry is not used any more (the SDK's IAM_EXPIRATION_WINDOW)
EXPIRY_WINDOW_SECONDS = 10.0
#: after a failed refresh of a still valid token, the next attempt (the SDK's pacing)
REFRESH_RETRY_SECONDS = 60.0


class IamError(Exception):
    """The IAM token exchange failed.

    ``status`` is IAM's HTTP status (None: no answer, or an answer that is not a token);
    ``malformed``: IAM answered 200 with something that is not a token.
    """

    def __init__(self, status: int | None, detail: str, malformed: bool = False) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.malformed = malformed

    @property
    def refused(self) -> bool:
        """IAM answered and refused the key (retrying cannot help)."""
        return self.status is not None and 400 <= self.status < 500 and self.status != 429


def _redirected(endpoint: str, status: int, location: str) -> ConfigError:
    """IAM's redirect, refused: the key is sent to the configured URL only."""
    return ConfigError(
        f"IAM at {endpoint} answered HTTP {status}, a redirect to "
        f"{location[:200] or '(no Location)'}: redirects are not followed (the API key would "
        "go there too); set the resource's *_IAM_ENDPOINT to the final address if you trust it"
    )


def _decoded(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", errors="replace")


def _token_from(data: Any, received: float) -> Token:
    """The token of IAM's answer ``data`` (ValueError if it holds none)."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    value = data.get("access_token")
    if not isinstance(value, str) or not value:
        raise ValueError("no access_token")
    lifetime = data.get("expires_in")
    if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
        # expires_in is documented; an absolute expiration alone is on IAM's clock
        expiration = data.get("expiration")
        if not isinstance(expiration, int | float) or isinstance(expiration, bool):
            raise ValueError("neither expires_in nor expiration")
        lifetime = expiration - received
        if lifetime <= 0:
            raise ValueError("expiration already past")
    expires_at = received + float(lifetime)
    return Token(value, expires_at, expires_at - (1 - REFRESH_FRACTION) * float(lifetime))


class IamTokens:
    """Access tokens for ``apikey`` from the IAM service at ``iam_endpoint``.

    ``shared``: the token cache's directory (:func:`qrmi_tasks.token_cache.directory`);
    None keeps tokens in this object only.
    """

    def __init__(self, iam_endpoint: str, apikey: str, shared: Path | None = None) -> None:
        endpoint = iam_endpoint.rstrip("/")
        if endpoint.endswith(OPERATION_PATH):
            endpoint = endpoint[: -len(OPERATION_PATH)]
        self.endpoint = endpoint
        self._apikey = apikey
        self._current: Token | None = None
        self._lock = threading.Lock()
        self._shared = (
            None
            if shared is None
            else SharedToken(shared, self.endpoint, hashlib.sha256(apikey.encode()).hexdigest())
        )

    def token(self) -> str:
        """A valid access token (fetched, or refreshed before it expires); IamError if not."""
        current = self._current
        if current is not None and time.time() < current.refresh_at:
            return current.value
        usable = current is not None and time.time() < current.expires_at - EXPIRY_WINDOW_SECONDS
        # while another thread renews the token, a still valid one serves this thread (the
        # cancel path must not wait for a refresh in flight)
        if not self._lock.acquire(blocking=not usable):
            assert current is not None
            return current.value
        try:
            if self._current is None or time.time() >= self._current.refresh_at:
                self._current = self._renewed()
                SECRETS.add([self._current.value])
            return self._current.value
        finally:
            self._lock.release()

    def _renewed(self) -> Token:
        shared = self._shared
        if shared is None:
            return self._asked(self._current)
        cached = shared.read()
        if cached is not None and time.time() < cached.refresh_at:
            return cached
        # one runner of the node asks IAM; the others wait for its answer (bounded)
        with shared.locked(token_cache.LOCK_WAIT_SECONDS) as held:
            if held:
                cached = shared.read()
                if cached is not None and time.time() < cached.refresh_at:
                    return cached
            # a kept token is written back too: its next refresh is paced for all runners
            fresh = self._asked(self._current or cached)
            shared.write(fresh)
            return fresh

    def _asked(self, held: Token | None) -> Token:
        """A new token from IAM; ``held`` instead, for a while, if IAM fails and it is
        still valid."""
        try:
            return self._request()
        except IamError as exc:
            now = time.time()
            if held is None or now >= held.expires_at - EXPIRY_WINDOW_SECONDS:
                raise
            log.debug("IAM token refresh failed (%s); the current token is still valid", exc)
            return replace(held, refresh_at=min(now + REFRESH_RETRY_SECONDS, held.expires_at))

    def _request(self) -> Token:
        """``POST /identity/token``: the exchange of the API key for a token."""
        url = self.endpoint + OPERATION_PATH
        try:
            response = requests.post(
                url,
                data={"grant_type": GRANT_TYPE, "apikey": self._apikey},
                headers={
                    "Accept": "application/json",
                    "Content-Type": "application/x-www-form-urlencoded",
                    "User-Agent": f"qrmi-tasks/{__version__}",
                },
                timeout=TIMEOUTS,
                allow_redirects=False,
                stream=True,  # read below, within the cap
            )
            with response:
                body = read_capped(response.iter_content(1 << 16), url)
        except AnswerTooLarge:
            raise  # a protocol error of its own, not a token to retry for
        except requests.RequestException as exc:
            raise IamError(None, f"{type(exc).__name__}: {first_line(exc)[:300]}") from None
        received = time.time()
        status = response.status_code
        if 300 <= status < 400:
            raise _redirected(self.endpoint, status, response.headers.get("Location", ""))
        if status != 200:
            raise IamError(status, error_text(_decoded(body), response.reason or ""))
        try:
            return _token_from(json.loads(body), received)
        except ValueError as exc:  # not JSON, or no token in it
            raise IamError(
                None, f"unexpected token answer ({first_line(exc)[:200]})", malformed=True
            ) from None

    def invalidate(self) -> None:
        """Forget the current token (an API refused it): the next call gets another one.
        The shared token goes too, if it is still the one that failed."""
        with self._lock:
            failed, self._current = self._current, None
        if failed is not None and self._shared is not None:
            self._shared.discard(failed.value)
