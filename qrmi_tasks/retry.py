"""The one retry policy: which failures are transient, how long to wait, when to give up.

Every provider decides with these, so a status code, a ``Retry-After`` header or a
service's error body means the same thing everywhere, and so does the runner when it
rides out a provider outage after submission:

* :data:`TRANSIENT_STATUSES` and :func:`is_transient`: what another attempt may cure;
* :func:`retry_after_seconds`: ``Retry-After`` as delay-seconds or HTTP-date (a malformed
  header is ignored, never an error);
* :class:`Backoff`: capped exponential waits with jitter;
* :func:`with_retries`: the loop — classify a failure, wait (cancellably: the ``pause``
  callable raises :class:`~qrmi_tasks.errors.Interrupted` on a signal), try again, give up
  with a :class:`~qrmi_tasks.errors.TransientError` naming the last reason;
* :func:`error_text`: a service's error body as one line, whatever shape it has.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from qrmi_tasks.errors import TransientError

T = TypeVar("T")
log = logging.getLogger("qrmi_tasks.retry")

#: HTTP statuses another attempt may cure (429 throttling, 5xx, Cloudflare's 52x).
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 524})
#: The longest ``Retry-After`` honoured; a larger one is capped, not obeyed blindly.
MAX_RETRY_AFTER = 300.0
MAX_MESSAGE = 500


def retry_after_seconds(value: str | None, cap: float = MAX_RETRY_AFTER) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP-date).

    None when absent or neither form (a malformed header is ignored, never an error).
    """
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(text).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if seconds != seconds:  # NaN
        return None
    return min(cap, max(0.0, seconds))


def is_transient(status: int | None) -> bool:
    """Whether a failure with this HTTP status (None: no answer at all) may be retried."""
    return status is None or status in TRANSIENT_STATUSES


@dataclass(frozen=True)
class Backoff:
    """Waits of ``initial * factor**(n-1)`` seconds, capped, each varied by +/- ``jitter``
    (a fraction) so that many jobs of one array do not retry in step."""

    initial: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.25

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.cap, self.initial * self.factor ** max(0, attempt - 1))
        return base * (1 + random.uniform(-self.jitter, self.jitter))


#: Transient failures of one request: about 15 s over 6 attempts.
REQUEST_BACKOFF = Backoff(initial=0.5, factor=2.0, cap=8.0)
#: Throttling (429, 423) without Retry-After: up to a minute between attempts.
THROTTLE_BACKOFF = Backoff(initial=1.0, factor=2.0, cap=60.0)


@dataclass(frozen=True)
class Retry:
    """A failure worth another attempt: why, and how long the service asked us to wait.

    ``throttled`` failures (the service is busy, not broken) are retried until the
    caller's deadline rather than a number of attempts.
    """

    reason: str
    after: float | None = None
    throttled: bool = False


def with_retries(
    action: Callable[[], T],
    *,
    what: str,
    classify: Callable[[Exception], Retry | None],
    pause: Callable[[float], None],
    attempts: int | None = 6,
    until: float | None = None,
    backoff: Backoff = REQUEST_BACKOFF,
    throttle_backoff: Backoff = THROTTLE_BACKOFF,
    level: int = logging.INFO,
) -> T:
    """Call ``action`` until it succeeds, a failure is not retryable, or we give up.

    ``classify(exc)`` returns a :class:`Retry` for a failure worth repeating, else None
    (then ``exc`` propagates as is). Gives up with :class:`TransientError` after
    ``attempts`` non-throttled failures (None: no limit) or once monotonic ``until`` has
    passed. ``pause(seconds)`` waits between attempts; it raises Interrupted on a signal.
    """
    failures = 0
    while True:
        try:
            return action()
        except Exception as exc:
            retry = classify(exc)
            if retry is None:
                raise
        if not retry.throttled:
            failures += 1
        out_of_attempts = attempts is not None and failures >= attempts
        if out_of_attempts or (until is not None and time.monotonic() >= until):
            raise TransientError(f"{what}: {retry.reason}") from None
        if retry.after is not None:
            delay = retry.after
        else:
            delay = (throttle_backoff if retry.throttled else backoff).delay(max(failures, 1))
        if until is not None:
            delay = max(0.0, min(delay, until - time.monotonic()))
        log.log(level, "cannot %s (%s); retrying in %.1f s", what, retry.reason, delay)
        pause(delay)


def one_line(text: Any, limit: int = MAX_MESSAGE) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_text(body: Any, fallback: str = "") -> str:
    """A service's error answer as one line, whatever its shape.

    Knows IBM's ``{"errors": [{"message"}]}`` and ``{"error": {"message"}}``, IAM's
    ``errorCode``/``errorMessage``, FastAPI's ``{"detail": str | [{"msg"}]}``, Pasqal's
    JSend ``{"message", "data": {"description": [{"msg"}]}}`` and plain ``message`` /
    ``title`` / ``error`` fields; anything else is shown as given (shortened).
    """
    if isinstance(body, dict):
        parts: list[str] = []
        errors = body.get("errors")
        if isinstance(errors, list):
            parts += [str(e["message"]) for e in errors if isinstance(e, dict) and e.get("message")]
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            parts.append(str(error["message"]))
        if body.get("errorMessage"):
            code = f"{body['errorCode']}: " if body.get("errorCode") else ""
            parts.append(f"{code}{body['errorMessage']}")
        parts += _details(body.get("detail"))
        data = body.get("data")
        if isinstance(data, dict):
            parts += _details(data.get("description"))
        if not parts:
            for key in ("message", "title", "error", "reason"):
                if isinstance(body.get(key), str) and body[key].strip():
                    parts.append(body[key])
                    break
        elif isinstance(body.get("message"), str) and body["message"] not in parts:
            parts.insert(0, body["message"])
        if parts:
            return one_line("; ".join(parts))
        return one_line(body, 300)
    if isinstance(body, list) and body:
        return one_line("; ".join(_details(body)) or body, 300)
    if isinstance(body, str) and body.strip():
        return one_line(body, 300)
    return one_line(fallback, 300) or "no details"


def _details(value: Any) -> list[str]:
    """FastAPI/Pydantic validation details: a string, or ``[{"loc", "msg"}]``."""
    if isinstance(value, str) and value.strip():
        return [value]
    found = []
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item.get("msg"):
                where = ".".join(str(p) for p in item.get("loc") or [] if p != "body")
                found.append(f"{where}: {item['msg']}" if where else str(item["msg"]))
            elif isinstance(item, str):
                found.append(item)
    return found
