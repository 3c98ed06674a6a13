"""The interface every provider implements, and the statuses the runner understands.

The runner drives a provider through one task's life:
``submit`` -> ``status`` (polled) -> ``fetch_result`` -> ``cleanup``, or ``cancel`` when
a signal arrives. Providers raise :class:`~qrmi_tasks.errors.ProviderError` for transport
or protocol failures (after their own retries; :class:`~qrmi_tasks.errors.TransientError`
where another attempt may help) and never exit the process.

Threads: for a ``remote`` provider the runner makes every call in a worker thread and
may abandon one that a signal or its deadline overtook; ``cancel`` (and
``cancel_submission``, ``cleanup`` after a cancel) can then run while the abandoned call
still holds its connection, so they must not depend on it.
"""

from __future__ import annotations

import enum
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, ClassVar

from qrmi_tasks.config import Resource
from qrmi_tasks.errors import Interrupted, PayloadError
from qrmi_tasks.payload import CheckedPayload


class TaskStatus(enum.Enum):
    """Provider-neutral task status."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)


@dataclass(frozen=True)
class StatusReport:
    """What the provider knows about a task right now.

    ``message`` explains a failure in one line; ``details`` holds extra facts worth
    logging at the end (usage, reason codes).
    """

    status: TaskStatus
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PollPolicy:
    """When to ask for a task's status again.

    Often while the task is young (``initial`` seconds, times ``factor`` per poll, up to
    ``cap``), so a short job's result is picked up within about a second; after
    ``late_after`` seconds the waits grow to ``late_cap``, which bounds how late any job's
    completion is noticed while keeping requests few (about 760 for an hour-long job).
    The clock restarts when the task leaves the queue (:class:`PollSchedule`).
    Each wait is shortened by up to ``jitter`` (a fraction), never lengthened: array jobs
    do not poll in step, and the caps stay promises.

    When the runner knows when tasks like this one ended before (``learns``:
    :mod:`qrmi_tasks.durations`), it waits until shortly before that moment (at most
    ``late_cap`` at a time) and polls every ``window_step`` seconds or so around it: the
    result of a job array's next task is picked up within a fraction of a second for
    fewer requests than the ordinary schedule makes. ``bench/bench_polling.py`` prints
    the resulting latencies and request counts.
    """

    initial: float = 0.25
    factor: float = 1.35
    cap: float = 1.6
    late_after: float = 60.0
    late_cap: float = 4.85
    jitter: float = 0.05
    #: whether polls are costly enough to be worth placing by what earlier tasks took
    learns: bool = True
    window_step: float = 0.1
    #: the most polls spent inside one expected-end window
    window_polls: int = 6

    def next_interval(self, interval: float, elapsed: float) -> float:
        """The interval after ``interval``, ``elapsed`` seconds into the task."""
        cap = self.cap if elapsed < self.late_after else self.late_cap
        return min(cap, interval * self.factor)

    def wait(self, interval: float) -> float:
        """The actual wait for ``interval``, with jitter."""
        return interval * (1 - random.uniform(0, self.jitter))

    def schedule(self, expected: tuple[float, float] | None = None) -> PollSchedule:
        """A clock for one task's polls; ``expected``: the window (seconds after the task
        started running) in which tasks like it ended before."""
        return PollSchedule(self, expected if self.learns else None)


class PollSchedule:
    """One task's polling clock under a :class:`PollPolicy`.

    The clock starts at the first status and starts again when the task leaves the queue:
    a job's running time, not its queue time, says how soon it may end, so a short job
    that waited an hour in the queue is still picked up within about a second.

    With an ``expected`` window ``(start, end)`` on that clock: the next poll is one
    ``window_step`` before ``start`` (in waits of at most ``late_cap``, the promise for
    any task); inside the window, polls are ``window_step`` apart (wider for a wide
    window: at most ``window_polls`` of them); a task still running after ``end`` is
    polled by the ordinary schedule from there, as a young task is.
    """

    def __init__(self, policy: PollPolicy, expected: tuple[float, float] | None = None) -> None:
        self.policy = policy
        self.interval = policy.initial
        #: when the task started running (or was first seen): the clock of ``expected``
        self.since: float | None = None
        self.status: TaskStatus | None = None
        self.expected = expected
        self._clock: float | None = None  # the ordinary schedule's clock
        self._polled: float | None = None

    def next_wait(self, status: TaskStatus, now: float) -> float:
        """Seconds to wait before the next poll, after a poll at ``now`` said ``status``."""
        self._polled = now
        started_running = status is TaskStatus.RUNNING and self.status is TaskStatus.QUEUED
        if self.since is None or started_running:
            self.since = self._clock = now
            self.interval = self.policy.initial
        else:
            assert self._clock is not None
            self.interval = self.policy.next_interval(self.interval, now - self._clock)
        self.status = status
        if self.expected is not None and status is not TaskStatus.QUEUED:
            wait = self._towards_window(now - self.since)
            if wait is not None:
                return wait
        return self.policy.wait(self.interval)

    def _towards_window(self, elapsed: float) -> float | None:
        """The wait under the expected window; None once the task has outlived it."""
        assert self.expected is not None
        start, end = self.expected
        policy = self.policy
        self.interval = policy.initial  # should the task outlive the window: watched closely
        # straight to one step before the window's start (a task that ends right at the
        # start is still bracketed closely), never more than the late cap at a time
        first = max(0.0, start - policy.window_step)
        if first - elapsed > 1e-3:  # (not a rounding error's worth of wait)
            return min(policy.late_cap, first - elapsed)
        if elapsed < end:
            return max(policy.window_step, (end - start) / policy.window_polls)
        self.expected = None  # outlived: the ordinary schedule, as for a young task
        self._clock = self._polled
        return None

    def ended_between(self, now: float) -> tuple[float, float] | None:
        """When the task ended, on the running clock, given that the poll at ``now`` saw it
        done: after the poll before, by this one. None if that cannot be told: no earlier
        poll, or the earlier one saw the task queued."""
        if self._polled is None or self.since is None or self.status is not TaskStatus.RUNNING:
            return None
        return self._polled - self.since, now - self.since


@dataclass(frozen=True)
class RunContext:
    """Facts the runner hands every provider.

    ``request_id`` is stable across a Slurm requeue of the same step and payload, so a
    provider that lets the client choose the task id can reattach instead of
    submitting twice.
    """

    request_id: str
    deterministic_id: bool = False
    #: sleep up to N seconds; returns True (at once) if the run is being cancelled.
    #: Providers use it for every back-off wait and raise errors.Interrupted on True.
    sleep: Callable[[float], bool] = field(default=lambda s: bool(time.sleep(s)))
    #: True once a cancel signal has arrived
    interrupted: Callable[[], bool] = field(default=lambda: False)
    #: the payload's SHA-256 (hex): a task of ours carries it where the service keeps
    #: something of ours (:mod:`qrmi_tasks.binding`), so a rerun attaches to no other
    payload_digest: str = ""
    #: the caller (the Python API) lets a provider that can compute in this process do so
    #: (``local``: Qiskit payloads on Aer) instead of starting a worker
    in_process: bool = False

    def pause(self, seconds: float) -> None:
        """Wait up to ``seconds``; raise :class:`Interrupted` at once on a cancel signal.

        The ``pause`` to hand :func:`qrmi_tasks.retry.with_retries`.
        """
        if self.sleep(seconds):
            raise Interrupted


class Provider(ABC):
    """One resource type's client, behind the runner's small interface."""

    #: payload kinds this resource type runs ("qiskit", "pulser")
    payload_kinds: ClassVar[frozenset[str]]
    poll_policy: ClassVar[PollPolicy] = PollPolicy()
    #: whether fetch_logs can return anything
    has_logs: ClassVar[bool] = False
    #: whether a rerun with the same ``RunContext.request_id`` attaches to the task this
    #: run submitted, found by a label of the request id (then a Slurm requeue keeps the
    #: task instead of cancelling it)
    can_reattach: ClassVar[bool] = False
    #: the service lets nothing of ours find a task again, but :meth:`reattach` can take
    #: one by its id: the runner keeps each deterministic request's task id in its journal
    #: (:mod:`qrmi_tasks.journal`), and a rerun (a requeue) attaches through it
    journaled: ClassVar[bool] = False
    #: the task runs on a service: calls may block on the network (the runner makes them
    #: in worker threads) and a task can outlive this process. False for ``local``.
    remote: ClassVar[bool] = True

    def __init__(self, resource: Resource, settings: dict[str, Any], context: RunContext) -> None:
        self.resource = resource
        self.settings = settings
        self.context = context
        #: ``submit`` sets it when it attached to a task an earlier run of this request
        #: created (a Slurm requeue or rerun) instead of submitting a new one
        self.attached = False
        #: with ``attached``: the payload digest (or its labelled prefix) the task found
        #: carries, None when it carries none; the runner refuses a task of another
        #: payload before taking it over (:func:`qrmi_tasks.binding.check`)
        self.attached_digest: str | None = None

    @classmethod
    def check_kind(cls, payload: CheckedPayload, runner: str) -> None:
        """Reject a payload kind this resource type cannot run (``runner`` names it)."""
        if payload.kind not in cls.payload_kinds:
            *others, last = sorted(cls.payload_kinds)
            accepted = f"{', '.join(others)} or {last}" if others else last
            raise PayloadError(
                f"{payload.source} is a {payload.kind} payload but {runner} runs "
                f"{accepted} payloads"
            )

    @classmethod
    def check_settings(cls, resource: Resource, settings: dict[str, Any]) -> None:
        """Reject, without network, settings that are wrong together (raise ConfigError).

        A rule about one setting belongs to its ``Setting(parse=...)`` in the vendor
        package's declaration; this is for what
        none of them can say alone (one credential out of several, the resource name).
        """

    def backend_documents(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The backend's configuration and properties JSON documents (qiskit's
        BackendConfiguration and BackendProperties), from which ``qrmi-gen --resource``
        builds a transpiler target; qrmi's ``QuantumResource.target()`` answers the same.

        Only for types whose declaration has ``target_settings``; the instance may have
        been built with only those settings resolved (``open_provider(purpose="target")``).
        """
        raise NotImplementedError(f"{type(self).__name__} has no backend target")

    @abstractmethod
    def submit(self, payload: CheckedPayload) -> str:
        """Start the task and return its id (reattaching to an existing one is allowed)."""

    @abstractmethod
    def status(self, task_id: str) -> StatusReport:
        """Return the task's current status."""

    @abstractmethod
    def fetch_result(self, task_id: str, into: BinaryIO) -> None:
        """Write the completed task's result, as raw bytes, into ``into`` (streamed)."""

    @abstractmethod
    def cancel(self, task_id: str) -> None:
        """Ask the provider to stop the task: one attempt, on a connection of its own.

        Raise :class:`~qrmi_tasks.errors.TransientError` when another attempt may land
        (5xx, 429, connection errors): the runner retries within its cancel budget.
        """

    def reattach(self, task_id: str) -> bool:
        """Take over ``task_id``, which an earlier run of this request submitted (the
        journal says so; only for :attr:`journaled` types). True when it can still
        deliver a result (queued, running or completed); False when it is gone, failed or
        cancelled: the run then submits anew."""
        return False

    def cancel_submission(self) -> list[str]:
        """A signal came while ``submit`` was still in flight: stop what it may have made.

        Best effort and quick (one attempt, a connection of its own): find tasks this
        run's request may have created (by the id or tag the provider chose) and cancel
        them. Returns their ids.
        """
        return []

    def cleanup(self, task_id: str) -> None:
        """Release remote resources of a finished task (after its result is safe)."""

    def fetch_logs(self, task_id: str, into: BinaryIO) -> bool:
        """Write the task's logs into ``into``; return False when there are none."""
        return False

    def close(self) -> None:
        """Release local resources (sessions, child processes)."""
