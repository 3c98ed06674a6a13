"""The shared retry policy (qrmi_tasks.retry), in-process."""

from __future__ import annotations

import email.utils
import time

import pytest

from qrmi_tasks.errors import Interrupted, TransientError
from qrmi_tasks.retry import (
    Backoff,
    Retry,
    error_text,
    is_transient,
    retry_after_seconds,
    with_retries,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("soon", None),
        ("nan", None),
        ("Mon, 99 Foo 2026 25:61:00 GMT", None),
        ("100000", 300.0),
    ],
)
def test_retry_after_forms(header, expected):
    assert retry_after_seconds(header) == expected


def test_retry_after_http_date():
    later = email.utils.formatdate(time.time() + 20, usegmt=True)
    assert 17 <= retry_after_seconds(later) <= 20


def test_transient_statuses():
    assert is_transient(None) and is_transient(503) and is_transient(429)
    assert not is_transient(400) and not is_transient(404) and not is_transient(422)


def test_backoff_is_capped_and_jittered():
    b = Backoff(initial=1, factor=2, cap=8, jitter=0.25)
    assert all(0.75 <= b.delay(1) <= 1.25 for _ in range(50))
    assert all(6 <= b.delay(10) <= 10 for _ in range(50))


class Flaky:
    def __init__(self, failures: int, exc: Exception) -> None:
        self.failures, self.exc, self.calls = failures, exc, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc
        return "ok"


def _transient(exc: Exception) -> Retry | None:
    return Retry(str(exc)) if isinstance(exc, ConnectionError) else None


def test_retries_until_success_with_the_policy_waits():
    waits: list[float] = []
    action = Flaky(3, ConnectionError("refused"))
    got = with_retries(
        action,
        what="x",
        classify=_transient,
        pause=waits.append,
        backoff=Backoff(initial=1, factor=2, cap=3, jitter=0),
    )
    assert got == "ok" and action.calls == 4 and waits == [1, 2, 3]


def test_gives_up_after_attempts_with_the_last_reason():
    action = Flaky(10, ConnectionError("refused"))
    with pytest.raises(TransientError, match="get the status: refused"):
        with_retries(
            action, what="get the status", classify=_transient, pause=lambda s: None, attempts=3
        )
    assert action.calls == 3


def test_non_retryable_failures_propagate_unchanged():
    action = Flaky(1, ValueError("bad"))
    with pytest.raises(ValueError, match="bad"):
        with_retries(action, what="x", classify=_transient, pause=lambda s: None)
    assert action.calls == 1


def test_retry_after_wins_and_throttling_is_bounded_by_the_deadline():
    waits: list[float] = []
    action = Flaky(100, ConnectionError("busy"))

    def throttled(exc: Exception) -> Retry:
        return Retry("busy", after=0.01, throttled=True)

    with pytest.raises(TransientError):
        with_retries(
            action,
            what="x",
            classify=throttled,
            pause=lambda s: (waits.append(s), time.sleep(s)),
            attempts=2,
            until=time.monotonic() + 0.2,
        )
    assert action.calls > 2  # throttling does not use up attempts
    assert all(w <= 0.01 for w in waits)


def test_a_signal_during_the_wait_stops_at_once():
    def pause(_s: float) -> None:
        raise Interrupted

    action = Flaky(5, ConnectionError("x"))
    with pytest.raises(Interrupted):
        with_retries(action, what="x", classify=_transient, pause=pause)
    assert action.calls == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"errors": [{"message": "Job not found", "code": 1291}]}, "Job not found"),
        ({"error": {"message": "bad token"}}, "bad token"),
        (
            {"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found"},
            "BXNIM0415E: Provided API key could not be found",
        ),
        ({"detail": "Job id already exists"}, "Job id already exists"),
        (
            {"detail": [{"loc": ["body", "timeout_secs"], "msg": "must be > 0"}]},
            "timeout_secs: must be > 0",
        ),
        (
            {
                "status": "fail",
                "message": "Unprocessable Entity",
                "data": {"description": [{"loc": ["jobs", 0, "runs"], "msg": "too many runs"}]},
            },
            "Unprocessable Entity; jobs.0.runs: too many runs",
        ),
        ({"title": "Conflict"}, "Conflict"),
        ("  plain\n text ", "plain text"),
        (None, "no details"),
    ],
)
def test_error_text_shapes(body, expected):
    assert error_text(body) == expected
