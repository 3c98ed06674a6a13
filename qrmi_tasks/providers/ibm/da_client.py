"""HTTP client of the IBM Direct Access API (v1): the shared IBM REST rules
(:mod:`qrmi_tasks.providers.ibm.rest`: IAM bearer tokens, retries, capped answers, the
cancel path's single attempts) with Direct Access's wording of what is given up on:

* IAM refusing the key: :class:`~qrmi_tasks.errors.AuthenticationError` naming the
  ``*_IAM_APIKEY`` variable; 401 after a token refresh, or 403: AuthenticationError;
* any other final status: :class:`~qrmi_tasks.errors.ProviderError` with the server's text;
* transient failures after the attempts allowed: :class:`~qrmi_tasks.errors.TransientError`
  (a protocol error is a ProviderError: the runner must not wait it out).
"""

from __future__ import annotations

import logging
from typing import Any

from qrmi_tasks.errors import AuthenticationError, ProviderError, TransientError
from qrmi_tasks.providers.ibm.iam import IamError
from qrmi_tasks.providers.ibm.rest import (
    Answer,
    ApiError,
    IbmRestClient,
    Unavailable,
    error_message,
)

__all__ = ["Answer", "DirectAccessClient", "error_message"]

log = logging.getLogger("qrmi_tasks.direct_access")


class DirectAccessClient(IbmRestClient):
    """Requests to one Direct Access endpoint with the shared IBM rules."""

    service = "Direct Access"

    def request(self, method: str, path: str, **kwargs: Any) -> Answer:
        """:meth:`IbmRestClient.request`, its failures as our one-line errors."""
        try:
            return super().request(method, path, **kwargs)
        except IamError as exc:
            if exc.malformed:
                raise AuthenticationError(
                    f"authentication failed: bad IAM token response ({exc.detail})"
                ) from None
            raise AuthenticationError(
                f"authentication failed: IAM at {self.tokens.endpoint} rejected the API key "
                f"(HTTP {exc.status}: {exc.detail}); check the *_IAM_APIKEY variable"
            ) from None
        except ApiError as exc:
            if exc.status in (401, 403):
                raise AuthenticationError(
                    f"authentication failed: Direct Access rejected the token "
                    f"for {method} {path}: {exc.detail}"
                ) from None
            raise ProviderError(
                f"Direct Access {method} {path} failed: HTTP {exc.status}: {exc.detail}"
            ) from None
        except Unavailable as exc:
            if kwargs.get("once"):
                text = f"Direct Access {method} {path}: {exc.reason}"
            else:  # as with_retries words giving up
                text = f"{method} {path} on Direct Access: {exc.reason}"
            raise (ProviderError if exc.protocol else TransientError)(text) from None
