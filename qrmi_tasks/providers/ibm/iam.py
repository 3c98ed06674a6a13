"""IBM Cloud IAM access tokens for an API key: the one wrapper both IBM providers use.

Built on ibm-cloud-sdk-core's ``IAMTokenManager`` (it caches the token and refreshes it
before expiry), with what that class lacks for a batch runner:

* the configured IAM URL, and connect/read timeouts (the SDK's default is one 60 s
  timeout for each);
* a failure is one :class:`IamError` (status, IAM's own reason), whatever went wrong:
  an HTTP error answer, no answer, or an answer that is no token;
* after a failed request the SDK's pacing mark is cleared: ``paced_request_token`` never
  clears it when the request raises, so the next attempt would wait 60 s for a request
  long dead;
* every token obtained is registered with the log masker;
* redirects are not followed: a 3xx from the IAM URL would re-send the API key to
  wherever it points (requests keeps the form body on a 307/308, to any host). The
  answer is a configuration error naming the place it pointed to;
* an answer larger than :data:`qrmi_tasks.answers.MAX_ANSWER_BYTES` is not read further.
"""

from __future__ import annotations

from typing import Any

from qrmi_tasks.answers import AnswerTooLarge, answer_hook, error_body
from qrmi_tasks.errors import ConfigError, first_line
from qrmi_tasks.logsetup import SECRETS
from qrmi_tasks.retry import error_text

#: per socket operation (connect, read); the runner bounds each whole call
TIMEOUTS = (10.0, 30.0)


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


def iam_reason(exc: Any) -> str:
    """IAM's own reason for a failed token request (``errorCode: errorMessage``), from
    ibm-cloud-sdk-core's ``ApiException``."""
    body = error_body(getattr(exc, "http_response", None))
    return error_text(body, getattr(exc, "message", "") or str(exc))


def _redirected(endpoint: str, exc: Any) -> ConfigError:
    """IAM's redirect, refused: the key is sent to the configured URL only."""
    response = getattr(exc, "http_response", None)
    location = response.headers.get("Location", "") if response is not None else ""
    return ConfigError(
        f"IAM at {endpoint} answered HTTP {exc.status_code}, a redirect to "
        f"{location[:200] or '(no Location)'}: redirects are not followed (the API key would "
        "go there too); set the resource's *_IAM_ENDPOINT to the final address if you trust it"
    )


class IamTokens:
    """Access tokens for ``apikey`` from the IAM service at ``iam_endpoint``."""

    def __init__(self, iam_endpoint: str, apikey: str) -> None:
        from ibm_cloud_sdk_core import IAMTokenManager

        self.endpoint = iam_endpoint.rstrip("/")
        self._manager = IAMTokenManager(apikey, url=self.endpoint)
        # documented attribute, passed to every requests.request of the manager
        self._manager.http_config = {
            "timeout": TIMEOUTS,
            "allow_redirects": False,
            "hooks": {"response": [answer_hook()]},  # a token answer is a few KB
        }

    def token(self) -> str:
        """A valid access token (fetched, or refreshed before it expires); IamError if not."""
        import requests
        from ibm_cloud_sdk_core import ApiException

        try:
            token = self._manager.get_token()
        except ApiException as exc:
            if 300 <= exc.status_code < 400:
                raise _redirected(self.endpoint, exc) from None
            raise IamError(exc.status_code, iam_reason(exc)) from None
        except AnswerTooLarge:
            raise  # a protocol error of its own, not a token to retry for
        except requests.RequestException as exc:
            raise IamError(None, f"{type(exc).__name__}: {first_line(exc)[:300]}") from None
        except Exception as exc:  # not JSON, not a JWT, no expiry
            detail = f"unexpected token answer ({type(exc).__name__}: {first_line(exc)[:200]})"
            raise IamError(None, detail, malformed=True) from None
        finally:
            self._manager.request_time = 0  # see the module's docstring
        SECRETS.add([token])
        return token

    def invalidate(self) -> None:
        """Forget the current token: the next call exchanges the key again."""
        self._manager.expire_time = 0
        self._manager.refresh_time = 0
        self._manager.request_time = 0
