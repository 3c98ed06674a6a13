"""HTTP client of the IBM Direct Access API (v1): IAM bearer tokens, retries, error bodies.

Retry policy (tenacity):
* 429 (concurrent-job limit) and 423 (backend reserved): retried until the caller's
  deadline, exponential back-off 1 s -> 60 s with jitter, ``Retry-After`` honoured;
* 5xx, 408 and connection errors: retried a bounded number of times;
* 401: the IAM token is refreshed once and the request repeated;
* any other 4xx: fails at once with the server's ``errors[].message``.
Every wait goes through the run's cancellable sleep, so a signal is never delayed.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from typing import Any

import requests
import tenacity

from qrmi_tasks.errors import AuthenticationError, Interrupted, ProviderError
from qrmi_tasks.logsetup import SECRETS

log = logging.getLogger("qrmi_tasks.direct_access")

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
MAX_TRANSIENT_ATTEMPTS = 6
THROTTLE_STATUSES = (423, 429)
TRANSIENT_STATUSES = (408, 500, 502, 503, 504)


class _Retry(Exception):
    """A response or failure worth another attempt."""

    def __init__(self, reason: str, throttled: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.throttled = throttled
        self.retry_after = retry_after


def error_message(response: requests.Response) -> str:
    """The server's ``errors[].message`` (or its plain-text body), one line."""
    try:
        body = response.json()
    except ValueError:
        text = " ".join(response.text.split())[:300]
        return text or response.reason or "no details"
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list):
            messages = [
                str(e.get("message")) for e in errors if isinstance(e, dict) and e.get("message")
            ]
            if messages:
                return "; ".join(messages)[:500]
        for key in ("message", "title", "error"):
            if body.get(key):
                return str(body[key])[:500]
    return str(body)[:300]


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


class IamTokens:
    """IAM access tokens for an API key, through ibm-cloud-sdk-core's IAMAuthenticator."""

    def __init__(self, iam_endpoint: str, apikey: str) -> None:
        from ibm_cloud_sdk_core.authenticators import IAMAuthenticator

        self._authenticator = IAMAuthenticator(apikey, url=iam_endpoint.rstrip("/"))
        self._manager = self._authenticator.token_manager
        self._endpoint = iam_endpoint

    def token(self) -> str:
        """A valid access token (fetched or refreshed by the SDK before it expires)."""
        from ibm_cloud_sdk_core import ApiException

        try:
            token = self._manager.get_token()
        except ApiException as exc:
            if exc.code in (400, 401, 403):
                raise AuthenticationError(
                    f"authentication failed: IAM at {self._endpoint} rejected the API key "
                    f"(HTTP {exc.code}); check the *_IAM_APIKEY variable"
                ) from None
            raise _Retry(f"IAM answered HTTP {exc.code}", throttled=False) from None
        except requests.RequestException as exc:
            raise _Retry(
                f"cannot reach IAM at {self._endpoint} ({type(exc).__name__})", throttled=False
            ) from None
        except Exception as exc:  # a malformed token response (not a JWT, no exp)
            raise AuthenticationError(
                f"authentication failed: bad IAM token response ({exc})"
            ) from None
        finally:
            # the SDK paces token requests for 60 s after one that did not complete
            self._manager.request_time = 0
        SECRETS.add([token])
        return token

    def invalidate(self) -> None:
        """Forget the current token: the next call fetches a new one."""
        self._manager.expire_time = 0
        self._manager.refresh_time = 0


class DirectAccessClient:
    """Requests to one Direct Access endpoint with the retry policy above."""

    def __init__(
        self,
        endpoint: str,
        service_crn: str,
        tokens: IamTokens,
        sleep: Callable[[float], bool],
        api_version: str | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.service_crn = service_crn
        self.tokens = tokens
        self._sleep = sleep
        self.api_version = api_version
        self.session = requests.Session()

    def _headers(self) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.tokens.token()}",
            "Service-CRN": self.service_crn,
            "Accept": "application/json",
        }
        if self.api_version:
            headers["IBM-API-Version"] = self.api_version
        return headers

    def _cancellable_sleep(self, seconds: float) -> None:
        if self._sleep(seconds):
            raise Interrupted

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        ok: tuple[int, ...] = (200,),
        accept: tuple[int, ...] = (),
        deadline: float | None = None,
    ) -> requests.Response:
        """Send a request; return the response if its status is in ``ok`` or ``accept``.

        ``deadline`` (a ``time.monotonic()`` value) bounds retries of 429/423.
        """
        refreshed = [False]
        transient = [0]

        def attempt() -> requests.Response:
            try:
                headers = self._headers()
            except _Retry:
                transient[0] += 1  # IAM unreachable or 5xx: bounded like any transient error
                raise
            try:
                response = self.session.request(
                    method,
                    self.endpoint + path,
                    json=json,
                    headers=headers,
                    timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                transient[0] += 1
                raise _Retry(f"{type(exc).__name__} from {self.endpoint}", False) from None
            status = response.status_code
            if status in ok or status in accept:
                return response
            if status == 401 and not refreshed[0]:
                refreshed[0] = True
                self.tokens.invalidate()
                raise _Retry("token rejected (401), refreshed", False, retry_after=0)
            if status in THROTTLE_STATUSES:
                reason = "backend reserved (423)" if status == 423 else "too many jobs (429)"
                raise _Retry(f"{reason}: {error_message(response)}", True, _retry_after(response))
            if status in TRANSIENT_STATUSES:
                transient[0] += 1
                raise _Retry(
                    f"HTTP {status}: {error_message(response)}", False, _retry_after(response)
                )
            if status in (401, 403):
                raise AuthenticationError(
                    f"authentication failed: Direct Access rejected the token "
                    f"for {method} {path}: {error_message(response)}"
                )
            raise ProviderError(
                f"Direct Access {method} {path} failed: HTTP {status}: {error_message(response)}"
            )

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception()
            if error.retry_after is not None:
                return min(error.retry_after, 300.0)
            if error.throttled:
                return tenacity.wait_exponential_jitter(initial=1, max=60)(state)
            return tenacity.wait_exponential_jitter(initial=0.5, max=8, jitter=0.5)(state)

        def stop(state: tenacity.RetryCallState) -> bool:
            error = state.outcome.exception()
            if not error.throttled:
                return transient[0] >= MAX_TRANSIENT_ATTEMPTS
            return deadline is not None and time.monotonic() >= deadline

        def before_sleep(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception()
            level = logging.INFO if error.throttled or transient[0] > 1 else logging.DEBUG
            log.log(
                level,
                "%s %s: %s; retrying in %.1fs",
                method,
                path,
                error.reason,
                state.next_action.sleep if state.next_action else 0,
            )

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retry),
            wait=wait,
            stop=stop,
            sleep=self._cancellable_sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Retry as exc:
            raise ProviderError(
                f"Direct Access {method} {path} failed after retries: {exc.reason}"
            ) from None

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """``request`` and decode the JSON body (ProviderError if it is not JSON)."""
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise ProviderError(f"Direct Access {method} {path}: response is not JSON") from None
