"""The polling clock: prompt while a task is young, sparse later, restarted on leaving the queue."""

from __future__ import annotations

import itertools

from qrmi_tasks.providers.base import PollPolicy, TaskStatus

POLICY = PollPolicy(jitter=0.0)


def waits(statuses: list[TaskStatus], policy: PollPolicy = POLICY) -> list[float]:
    """The waits a schedule hands out for polls that said ``statuses`` in turn."""
    schedule, now, out = policy.schedule(), 0.0, []
    for status in statuses:
        wait = schedule.next_wait(status, now)
        out.append(wait)
        now += wait
    return out


def test_waits_grow_to_the_cap_then_to_the_late_cap():
    got = waits([TaskStatus.RUNNING] * 200)
    assert got[0] == POLICY.initial
    assert all(b >= a for a, b in itertools.pairwise(got))
    elapsed = 0.0
    for wait in got:
        assert wait <= (POLICY.cap if elapsed < POLICY.late_after else POLICY.late_cap)
        elapsed += wait
    assert got[-1] == POLICY.late_cap


def test_leaving_the_queue_restarts_the_clock():
    queued = [TaskStatus.QUEUED] * 100
    got = waits([*queued, TaskStatus.RUNNING, TaskStatus.RUNNING])
    assert got[99] == POLICY.late_cap  # an hour in the queue polls sparsely...
    assert got[100] == POLICY.initial  # ...but a job that starts running is watched closely
    assert got[101] == POLICY.initial * POLICY.factor


def test_jitter_only_shortens():
    policy = PollPolicy(jitter=0.2)
    plain = waits([TaskStatus.RUNNING] * 50)
    jittered = waits([TaskStatus.RUNNING] * 50, policy)
    assert all(j <= p for j, p in zip(jittered, plain, strict=True))
    assert any(j < p for j, p in zip(jittered, plain, strict=True))
