"""HTTP client of the IBM Direct Access API (v1): IAM bearer tokens, retries, error bodies.

Retry policy (:func:`qrmi_tasks.retry.with_retries`, the one shared by every provider):
* 429 (concurrent-job limit) and 423 (backend reserved): retried until the caller's
  deadline, exponential back-off 1 s -> 60 s with jitter, ``Retry-After`` honoured;
* 5xx, 408 and connection errors: retried a bounded number of times;
* 401: the IAM token is refreshed once and the request repeated;
* any other 4xx: fails at once with the server's error text (:func:`qrmi_tasks.retry.error_text`:
  ``errors[].message``, FastAPI's ``detail``, or the plain-text body);
* an answer that is not the JSON object expected (HTML with 200, truncated JSON, a list)
  or larger than ``MAX_BODY``: a protocol error, retried like a transient one.
Every wait goes through the run's cancellable ``pause``, so a signal is never delayed.
``once=True`` (the cancel path) makes one attempt on a connection of its own and raises
:class:`~qrmi_tasks.errors.TransientError` when another attempt may help.
"""

from __future__ import annotations

import json as jsonlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from qrmi_tasks.answers import MAX_ANSWER_BYTES, error_body
from qrmi_tasks.errors import AuthenticationError, ProviderError, TransientError
from qrmi_tasks.providers.ibm.iam import IamError, IamTokens
from qrmi_tasks.retry import (
    REQUEST_BACKOFF,
    THROTTLE_BACKOFF,
    TRANSIENT_STATUSES,
    Retry,
    error_text,
    retry_after_seconds,
    with_retries,
)

log = logging.getLogger("qrmi_tasks.direct_access")

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0  # per socket read; the whole answer is bounded by BODY_SECONDS
BODY_SECONDS = 120.0
MAX_BODY = MAX_ANSWER_BYTES  # the one cap on API answers (qrmi_tasks.answers)
MAX_TRANSIENT_ATTEMPTS = 6
THROTTLE_STATUSES = (423, 429)
_CHUNK = 1 << 16


@dataclass
class Answer:
    """A complete, size-checked HTTP answer (the body is read before it is returned)."""

    status_code: int
    content: bytes
    reason: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    data: Any = None  # the decoded JSON object, when the request asked for one

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body decoded as JSON (ValueError if it is not)."""
        return jsonlib.loads(self.content)


class _Retry(Exception):
    """A response or failure worth another attempt."""

    def __init__(
        self,
        reason: str,
        throttled: bool,
        retry_after: float | None = None,
        protocol: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.throttled = throttled
        self.retry_after = retry_after
        # an answer that is not what the API promises: worth a few more attempts, but not
        # an outage to wait out (the runner rides out TransientError only)
        self.protocol = protocol


def error_message(response: Answer) -> str:
    """The server's error text for ``response``, one line (see :func:`retry.error_text`)."""
    return error_text(error_body(response), response.reason)


def _read(response: requests.Response, started: float) -> bytes:
    """The whole body of a streamed response, refusing oversize or endless answers."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(_CHUNK):
            size += len(chunk)
            if size > MAX_BODY:
                raise _Retry(
                    f"protocol error: answer larger than {MAX_BODY >> 20} MiB", False, None, True
                )
            if time.monotonic() - started > BODY_SECONDS:
                raise _Retry(f"answer not complete after {BODY_SECONDS:.0f} s", throttled=False)
            chunks.append(chunk)
    except requests.RequestException as exc:
        raise _Retry(f"answer cut off ({type(exc).__name__})", throttled=False) from None
    finally:
        response.close()
    return b"".join(chunks)


class DirectAccessClient:
    """Requests to one Direct Access endpoint with the retry policy above."""

    def __init__(
        self,
        endpoint: str,
        service_crn: str,
        tokens: IamTokens,
        pause: Callable[[float], None],
        api_version: str | None = None,
        session_factory: Callable[[], requests.Session] = requests.Session,
    ) -> None:
        """``pause(seconds)`` waits between attempts; it raises Interrupted on a signal
        (the run context's ``pause``). ``session_factory`` makes the HTTP sessions (the
        client's own, and a fresh one per ``once`` request): tests hand one whose
        transport they control."""
        self.endpoint = endpoint.rstrip("/")
        self.service_crn = service_crn
        self.tokens = tokens
        self._pause = pause
        self.api_version = api_version
        self._new_session = session_factory
        self.session = session_factory()

    def _token(self) -> str:
        """An IAM token; an authentication error when IAM refuses the key, else _Retry."""
        try:
            return self.tokens.token()
        except IamError as exc:
            where = self.tokens.endpoint
            if exc.status in (400, 401, 403):
                raise AuthenticationError(
                    f"authentication failed: IAM at {where} rejected the API key "
                    f"(HTTP {exc.status}: {exc.detail}); check the *_IAM_APIKEY variable"
                ) from None
            if exc.malformed:
                raise AuthenticationError(
                    f"authentication failed: bad IAM token response ({exc.detail})"
                ) from None
            if exc.status is not None:
                raise _Retry(f"IAM answered HTTP {exc.status}", throttled=False) from None
            raise _Retry(f"cannot reach IAM at {where} ({exc.detail})", throttled=False) from None

    def _headers(self) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self._token()}",
            "Service-CRN": self.service_crn,
            "Accept": "application/json",
        }
        if self.api_version:
            headers["IBM-API-Version"] = self.api_version
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        ok: tuple[int, ...] = (200,),
        accept: tuple[int, ...] = (),
        deadline: float | None = None,
        want_json: bool = False,
        once: bool = False,
    ) -> Answer:
        """Send a request; return the answer if its status is in ``ok`` or ``accept``.

        ``deadline`` (a ``time.monotonic()`` value) bounds retries of 429/423.
        ``want_json``: an ``ok`` answer must be a JSON object (then in ``Answer.data``).
        ``once``: one attempt on a fresh connection, TransientError if it may be repeated.
        """
        refreshed = [False]
        session = self._new_session() if once else self.session

        def attempt() -> Answer:
            headers = self._headers()  # _Retry when IAM is unreachable or answers 5xx
            started = time.monotonic()
            try:
                response = session.request(
                    method,
                    self.endpoint + path,
                    json=json,
                    headers=headers,
                    timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                    stream=True,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise _Retry(f"{type(exc).__name__} from {self.endpoint}", False) from None
            answer = Answer(
                response.status_code,
                _read(response, started),
                response.reason or "",
                dict(response.headers),
            )
            status = answer.status_code
            if status in ok and want_json:
                answer.data = self._decode(method, path, answer)
            if status in ok or status in accept:
                return answer
            if status == 401 and not refreshed[0]:
                refreshed[0] = True
                self.tokens.invalidate()
                raise _Retry("token rejected (401), refreshed", False, retry_after=0)
            retry_after = retry_after_seconds(answer.headers.get("Retry-After"))
            if status in THROTTLE_STATUSES:
                reason = "backend reserved (423)" if status == 423 else "too many jobs (429)"
                raise _Retry(f"{reason}: {error_message(answer)}", True, retry_after)
            if status in TRANSIENT_STATUSES:
                raise _Retry(f"HTTP {status}: {error_message(answer)}", False, retry_after)
            if status in (401, 403):
                raise AuthenticationError(
                    f"authentication failed: Direct Access rejected the token "
                    f"for {method} {path}: {error_message(answer)}"
                )
            raise ProviderError(
                f"Direct Access {method} {path} failed: HTTP {status}: {error_message(answer)}"
            )

        if once:
            try:
                return attempt()
            except _Retry as exc:
                error = ProviderError if exc.protocol else TransientError
                raise error(f"Direct Access {method} {path}: {exc.reason}") from None
            finally:
                session.close()

        last: list[_Retry] = []

        def classify(exc: Exception) -> Retry | None:
            if not isinstance(exc, _Retry):
                return None  # a final answer (4xx, authentication): no second attempt
            last[:] = [exc]
            return Retry(exc.reason, exc.retry_after, exc.throttled)

        try:
            return with_retries(
                attempt,
                what=f"{method} {path} on Direct Access",
                classify=classify,
                pause=self._pause,
                attempts=MAX_TRANSIENT_ATTEMPTS,
                until=deadline,
                backoff=REQUEST_BACKOFF,
                throttle_backoff=THROTTLE_BACKOFF,
            )
        except TransientError as exc:
            if last and last[0].protocol:  # not an outage: the runner must not wait it out
                raise ProviderError(exc.message) from None
            raise

    @staticmethod
    def _decode(method: str, path: str, answer: Answer) -> Any:
        try:
            data = answer.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            return data
        kind = "JSON but not an object" if data is not None else "not JSON"
        if data is None and answer.content.lstrip()[:1] == b"<":
            kind = "HTML, not JSON"
        raise _Retry(f"protocol error: the answer to {method} {path} is {kind}", False, None, True)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """``request`` and return the decoded JSON object (retried if it is not one)."""
        return self.request(method, path, want_json=True, **kwargs).data
