"""The one HTTP client of IBM's REST APIs (Direct Access v1 and Qiskit Runtime v1).

Both services take the same credentials (``Authorization: Bearer <IAM token>`` and
``Service-CRN``) and answer errors in the same shape, so the rules live here once:

* 429 (too many jobs / requests) and 423 (backend reserved): retried until the caller's
  deadline, exponential back-off 1 s -> 60 s with jitter, ``Retry-After`` honoured;
* 5xx, 408 and connection errors: retried a bounded number of times; with
  ``repost=False`` (a request that must not run twice, e.g. Qiskit Runtime's ``POST /jobs``,
  whose server picks the job id) only what certainly did not reach the server or was
  refused with a status IBM documents as safe to repeat (qiskit-ibm-runtime's
  ``STATUS_FORCELIST``) is repeated;
* 401: the IAM token is refreshed once and the request repeated;
* any other status: a final :class:`ApiError` with the server's error text
  (:func:`qrmi_tasks.retry.error_text`);
* an answer that is not the JSON object expected (HTML with 200, truncated JSON, a list),
  larger than ``MAX_BODY`` (not read further: :func:`qrmi_tasks.answers.too_large`) or
  slower than ``BODY_SECONDS``: retried a few times like a transient failure, but a
  protocol error is never taken for an outage.

Retries go through :func:`qrmi_tasks.retry.with_retries` with the run's cancellable
``pause``, so a signal is never delayed. ``once=True`` (the cancel path) makes one attempt
on a connection of its own. What is given up on is raised as :class:`Unavailable`
(transient, or protocol), :class:`ApiError` (the service's final answer) or
:class:`~qrmi_tasks.providers.ibm.iam.IamError` (IAM refused the key): each service
words them for its users (``da_client``, ``ibm.RUNTIME_ERRORS``).
"""

from __future__ import annotations

import json as jsonlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TypeVar

import requests

from qrmi_tasks.answers import MAX_ANSWER_BYTES, error_body, too_large
from qrmi_tasks.errors import TransientError
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

T = TypeVar("T")
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0  # per socket read; a whole answer read in memory is bounded by BODY_SECONDS
BODY_SECONDS = 120.0
MAX_BODY = MAX_ANSWER_BYTES  # the one cap on API answers (qrmi_tasks.answers)
MAX_TRANSIENT_ATTEMPTS = 6
THROTTLE_STATUSES = (423, 429)
#: statuses IBM guarantees a re-posted request is safe after (qiskit-ibm-runtime 0.51,
#: ``api/session.py`` ``STATUS_FORCELIST`` / ``PostForcelistRetry``)
REPOST_SAFE_STATUSES = frozenset({500, 502, 503, 504, 520, 521, 522, 524})
_CHUNK = 1 << 16


@dataclass
class Answer:
    """A complete, size-checked HTTP answer (the body is read before it is returned)."""

    status_code: int
    content: bytes
    reason: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    data: Any = None  # the decoded JSON object, when the request asked for one
    size: int = 0  # bytes written to the caller's file (``into``), else 0

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body decoded as JSON (ValueError if it is not)."""
        return jsonlib.loads(self.content)


class ApiError(Exception):
    """The service's final answer to a request: a status that another attempt cannot cure
    (or a transient one the caller asked not to repeat). ``detail``: its error text."""

    def __init__(
        self,
        status: int,
        detail: str,
        method: str,
        path: str,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail
        self.method = method
        self.path = path
        self.retry_after = retry_after


class Unavailable(Exception):
    """No usable answer after the attempts allowed: ``reason`` names the last failure.

    ``status``: the last HTTP status (None: no answer at all); ``protocol``: the answers
    were not what the API promises (:class:`ProtocolError`); ``cause``: the last failure
    of the transport (a ``requests`` exception) or of the IAM token exchange (``iam``).
    """

    def __init__(
        self,
        reason: str,
        status: int | None = None,
        protocol: bool = False,
        retry_after: float | None = None,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.protocol = protocol
        self.retry_after = retry_after
        self.cause = cause

    @property
    def iam(self) -> bool:
        """Whether the last failure was the IAM token exchange."""
        return isinstance(self.cause, IamError)

    @property
    def connection_detail(self) -> str:
        """Why no answer came, in a few words (``[Errno 111] Connection refused``)."""
        text = str(self.cause) if self.cause is not None else ""
        errno = re.search(r"\[Errno -?\d+\] [^\"')]+", text)
        return errno.group(0).strip() if errno else self.reason


class ProtocolError(Unavailable):
    """The answers were not what the API promises (not JSON, too large): a fault of the
    service or of what stands in front of it, not an outage to wait out."""


class _Retry(Exception):
    """A response or failure worth another attempt."""

    def __init__(
        self,
        reason: str,
        throttled: bool,
        retry_after: float | None = None,
        protocol: bool = False,
        status: int | None = None,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.throttled = throttled
        self.retry_after = retry_after
        self.protocol = protocol
        self.status = status
        self.cause = cause

    def unavailable(self) -> Unavailable:
        kind = ProtocolError if self.protocol else Unavailable
        return kind(self.reason, self.status, self.protocol, self.retry_after, self.cause)


def error_message(response: Answer) -> str:
    """The server's error text for ``response``, one line (see :func:`retry.error_text`)."""
    return error_text(error_body(response), response.reason)


def _never_sent(exc: requests.RequestException) -> bool:
    """Whether a failed request certainly did not reach the server (no connection made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return type(reason).__name__ == "NewConnectionError"


def _read(response: requests.Response, started: float, into: BinaryIO | None) -> tuple[bytes, int]:
    """The body of a streamed response: whole in memory (capped in size and time), or
    copied into ``into`` (a result of any size; each socket read has its timeout)."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(_CHUNK):
            size += len(chunk)
            if into is not None:
                into.write(chunk)
                continue
            if size > MAX_BODY:
                raise _Retry(str(too_large(response.url, MAX_BODY)), False, None, True)
            if time.monotonic() - started > BODY_SECONDS:
                raise _Retry(f"answer not complete after {BODY_SECONDS:.0f} s", throttled=False)
            chunks.append(chunk)
    except requests.RequestException as exc:
        raise _Retry(f"answer cut off ({type(exc).__name__})", throttled=False) from None
    finally:
        response.close()
    return b"".join(chunks), size if into is not None else 0


class IbmRestClient:
    """Requests to one IBM API endpoint with the rules above."""

    #: the service's name in retry log lines
    service = "IBM API"
    #: the level of the "retrying in N s" log lines
    retry_level = logging.INFO

    def __init__(
        self,
        endpoint: str,
        service_crn: str,
        tokens: IamTokens,
        pause: Callable[[float], None],
        api_version: str | None = None,
        session_factory: Callable[[], requests.Session] = requests.Session,
        headers: dict[str, str] | None = None,
    ) -> None:
        """``pause(seconds)`` waits between attempts; it raises Interrupted on a signal
        (the run context's ``pause``). ``session_factory`` makes the HTTP sessions (the
        client's own, and a fresh one per ``once`` request): tests hand one whose
        transport they control. ``headers`` go with every request."""
        self.endpoint = endpoint.rstrip("/")
        self.service_crn = service_crn
        self.tokens = tokens
        self._pause = pause
        self.api_version = api_version
        self.extra_headers = dict(headers or {})
        self._new_session = session_factory
        self.session = session_factory()

    def _token(self) -> str:
        """An IAM token; IamError when IAM refuses the key or answers nonsense, else _Retry."""
        try:
            return self.tokens.token()
        except IamError as exc:
            if exc.refused or exc.malformed:
                raise
            where = self.tokens.endpoint
            reason = (
                f"IAM answered HTTP {exc.status}"
                if exc.status is not None
                else f"cannot reach IAM at {where} ({exc.detail})"
            )
            raise _Retry(reason, False, status=0, cause=exc) from None

    def _headers(self, body: bool) -> dict[str, str]:
        headers = {
            **self.extra_headers,
            "Authorization": f"Bearer {self._token()}",
            "Service-CRN": self.service_crn,
            "Accept": "application/json",
        }
        if body:
            headers["Content-Type"] = "application/json"
        if self.api_version:
            headers["IBM-API-Version"] = self.api_version
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        ok: tuple[int, ...] = (200,),
        accept: tuple[int, ...] = (),
        deadline: float | None = None,
        want_json: bool = False,
        once: bool = False,
        repost: bool = True,
        into: BinaryIO | None = None,
    ) -> Answer:
        """Send a request; return the answer if its status is in ``ok`` or ``accept``.

        ``deadline`` (a ``time.monotonic()`` value) bounds retries of 429/423.
        ``want_json``: an ``ok`` answer must be a JSON object (then in ``Answer.data``).
        ``once``: one attempt on a fresh connection. ``repost=False``: see the module's
        rules. ``into``: an ``ok`` answer's body is written there (rewound per attempt).
        """
        refreshed = [False]
        session = self._new_session() if once else self.session
        body = None if json is None else jsonlib.dumps(json).encode()

        def attempt() -> Answer:
            headers = self._headers(body is not None)  # _Retry when IAM is unreachable
            started = time.monotonic()
            try:
                response = session.request(
                    method,
                    self.endpoint + path,
                    params=params,
                    data=body,
                    headers=headers,
                    timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                    stream=True,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                reason = f"{type(exc).__name__} from {self.endpoint}"
                failure = _Retry(reason, False, cause=exc)
                if not repost and not _never_sent(exc):
                    # the request may have been served: another one could act twice
                    raise failure.unavailable() from None
                raise failure from None
            status = response.status_code
            target = into if into is not None and status in ok else None
            if target is not None:
                target.seek(0)
                target.truncate()  # a cut transfer starts over
            content, size = _read(response, started, target)
            answer = Answer(status, content, response.reason or "", dict(response.headers))
            answer.size = size
            if status in ok and want_json:
                answer.data = self._decode(method, path, answer)
            if status in ok or status in accept:
                return answer
            if status == 401 and not refreshed[0]:
                refreshed[0] = True
                self.tokens.invalidate()
                raise _Retry("token rejected (401), refreshed", False, retry_after=0, status=401)
            retry_after = retry_after_seconds(answer.headers.get("Retry-After"))
            detail = error_message(answer)
            if status in THROTTLE_STATUSES:
                reason = "backend reserved (423)" if status == 423 else "too many jobs (429)"
                raise _Retry(f"{reason}: {detail}", True, retry_after, status=status)
            if status in TRANSIENT_STATUSES and (repost or status in REPOST_SAFE_STATUSES):
                raise _Retry(f"HTTP {status}: {detail}", False, retry_after, status=status)
            raise ApiError(status, detail, method, path, retry_after)

        if once:
            try:
                return attempt()
            except _Retry as exc:
                raise exc.unavailable() from None
            finally:
                session.close()
        return self._retrying(f"{method} {path}", attempt, deadline)

    def authenticate(self) -> None:
        """Get an IAM token now (IAM outages retried as any request's are)."""
        self._retrying("get an IAM token", self._token, None)

    def _retrying(self, what: str, attempt: Callable[[], T], deadline: float | None) -> T:
        """``attempt`` under the retry rules; the last failure raised as Unavailable."""
        last: list[_Retry] = []

        def classify(exc: Exception) -> Retry | None:
            if not isinstance(exc, _Retry):
                return None  # a final answer: no second attempt
            last[:] = [exc]
            return Retry(exc.reason, exc.retry_after, exc.throttled)

        try:
            return with_retries(
                attempt,
                what=f"{what} on {self.service}",
                classify=classify,
                pause=self._pause,
                attempts=MAX_TRANSIENT_ATTEMPTS,
                until=deadline,
                backoff=REQUEST_BACKOFF,
                throttle_backoff=THROTTLE_BACKOFF,
                level=self.retry_level,
            )
        except TransientError:
            raise last[0].unavailable() from None

    def _decode(self, method: str, path: str, answer: Answer) -> Any:
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

    def close(self) -> None:
        """Close the client's own connections."""
        self.session.close()
