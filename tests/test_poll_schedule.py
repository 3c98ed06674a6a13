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


def poll_times(schedule, end: float, queued: float = 0.0) -> list[float]:
    """The times of the polls of a task that queues ``queued`` s, then runs until ``end``
    (on the clock of its first poll), up to and including the poll that sees it done."""
    now, times = 0.0, [0.0]
    while now < queued + end:
        status = TaskStatus.QUEUED if now < queued else TaskStatus.RUNNING
        now += schedule.next_wait(status, now)
        times.append(now)
    return times


def test_an_expected_end_is_polled_closely_and_costs_fewer_requests():
    blind = poll_times(POLICY.schedule(), 20.0)
    times = poll_times(POLICY.schedule(expected=(19.8, 20.2)), 20.0)
    assert len(times) < len(blind)
    assert times[-1] - 20.0 <= POLICY.window_step + 1e-9  # seen within one window step
    assert blind[-1] - 20.0 > POLICY.window_step  # where the ordinary schedule is late
    assert 19.7 in [round(t, 6) for t in times]  # one step before the window's start
    assert max(b - a for a, b in itertools.pairwise(times)) <= POLICY.late_cap


def test_a_task_outliving_its_window_is_watched_as_a_young_one():
    times = poll_times(POLICY.schedule(expected=(1.8, 2.2)), 30.0)
    gaps = [b - a for a, b in itertools.pairwise(times) if a >= 2.2]
    assert gaps[0] == POLICY.initial
    assert max(gaps) <= POLICY.cap + 1e-9  # within a minute of its start: the ordinary caps


def test_the_window_counts_from_leaving_the_queue():
    schedule = POLICY.schedule(expected=(4.8, 5.2))
    now = 0.0
    while now < 100.0:  # an hour... a hundred seconds in the queue
        now += schedule.next_wait(TaskStatus.QUEUED, now)
    started, times = now, []
    while now < started + 5.0:  # then five seconds of running, from the poll that saw it
        now += schedule.next_wait(TaskStatus.RUNNING, now)
        times.append(now - started)
    assert 4.7 in [round(t, 6) for t in times]
    assert times[-1] - 5.0 <= POLICY.window_step + 1e-9


def test_where_the_task_ended_is_told_from_the_last_two_polls():
    schedule = POLICY.schedule()
    assert schedule.ended_between(0.0) is None  # no poll before: nothing known
    schedule.next_wait(TaskStatus.QUEUED, 0.0)
    assert schedule.ended_between(1.0) is None  # it was queued: the running clock is unknown
    schedule.next_wait(TaskStatus.RUNNING, 3.0)
    schedule.next_wait(TaskStatus.RUNNING, 4.0)
    assert schedule.ended_between(4.5) == (1.0, 1.5)


def test_a_policy_that_does_not_learn_ignores_the_window():
    policy = PollPolicy(jitter=0.0, learns=False)
    assert policy.schedule(expected=(1.0, 1.2)).expected is None
