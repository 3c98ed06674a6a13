"""A scripted provider for in-process tests of the runner's lifecycle rules.

The runner's rules (cancel once, ride out an outage, exit code per failure, requeue,
output errors) do not depend on any provider's protocol, so tests check them by driving
the real CLI command in the test process against this provider instead of spawning a
runner against an HTTP fake. The provider tests (tests/fakes/*) still drive the real
client libraries; the end-to-end process tests still prove the CLI, signals and Slurm.

A test fills a :class:`Script` (what each call answers, in order), and the ``scripted``
fixture (conftest.py) lets the registry find the ``scripted`` resource type's vendor
package (tests/vendors) for the test, so the runner resolves it as any other (no patched
runner code). Class
flags (``has_logs``, ``can_reattach``) are set per test with ``monkeypatch.setattr``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, ClassVar

from qrmi_tasks.errors import Interrupted
from qrmi_tasks.providers.base import PollPolicy, Provider, StatusReport, TaskStatus

RESOURCE = "scripted_qpu"
TYPE = "scripted"  # declared by tests/vendors/scripted_vendor
RESULT = b'{"counts": {"00": 512, "11": 512}}'

# One answer of a scripted call: a value (a TaskStatus, a StatusReport, a task id, None),
# an exception instance to raise, or a callable returning one of those (it may also act,
# e.g. send the test process a signal, as a slow service would let one arrive).
Step = Any


@dataclass
class Script:
    """What each provider call answers, in order; the last answer repeats."""

    submit: list[Step] = field(default_factory=lambda: ["task-1"])
    status: list[Step] = field(default_factory=lambda: [TaskStatus.RUNNING, TaskStatus.COMPLETED])
    result: list[Step] = field(default_factory=lambda: [RESULT])
    cancel: list[Step] = field(default_factory=lambda: [None])
    cleanup: list[Step] = field(default_factory=lambda: [None])
    logs: list[Step] = field(default_factory=lambda: [b"log line\n"])
    cancel_submission: list[Step] = field(default_factory=lambda: [[]])
    reattach: list[Step] = field(default_factory=lambda: [True])
    #: every call made, in order: (method, argument)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self, method: str, argument: Any = None) -> Any:
        """Record the call and play its next answer."""
        with self.lock:
            answers: list[Step] = getattr(self, method)
            step = answers.pop(0) if len(answers) > 1 else answers[0]
            self.calls.append((method, argument))
        if callable(step) and not isinstance(step, type):
            step = step()
        if isinstance(step, BaseException):
            raise step
        return step

    def count(self, method: str) -> int:
        """How many times ``method`` was called."""
        return sum(1 for name, _ in self.calls if name == method)


@dataclass(frozen=True)
class Attached:
    """A ``submit`` answer: the provider found task ``task_id`` of an earlier run, which
    carries payload digest ``digest`` (None: none)."""

    task_id: str
    digest: str | None


#: the script of the running test (set by the ``scripted`` fixture)
current = Script()


def signal_self(signum: int, then: Step = None) -> Callable[[], Any]:
    """A step that sends this process ``signum`` (as scancel would) and answers ``then``."""

    def step() -> Any:
        os.kill(os.getpid(), signum)
        return then() if callable(then) else then

    return step


def hang(until: threading.Event, then: Step = None) -> Callable[[], Any]:
    """A step that blocks until ``until`` is set (a hung read), then answers ``then``."""

    def step() -> Any:
        until.wait(30)
        return then

    return step


class ScriptedProvider(Provider):
    """Plays :data:`current`; a remote provider, so calls run in worker threads as usual."""

    payload_kinds: ClassVar[frozenset[str]] = frozenset({"qiskit", "pulser"})
    # short polls: the rules under test do not depend on the schedule
    poll_policy: ClassVar[PollPolicy] = PollPolicy(initial=0.01, cap=0.02, jitter=0.0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.script = current

    def submit(self, payload: Any) -> str:
        task_id = self.script.next("submit", payload.digest)
        if isinstance(task_id, Interrupted):
            raise task_id
        if isinstance(task_id, Attached):
            self.attached, self.attached_digest = True, task_id.digest
            return task_id.task_id
        return task_id

    def status(self, task_id: str) -> StatusReport:
        answer = self.script.next("status", task_id)
        return answer if isinstance(answer, StatusReport) else StatusReport(answer)

    def fetch_result(self, task_id: str, into: BinaryIO) -> None:
        into.write(self.script.next("result", task_id))

    def cancel(self, task_id: str) -> None:
        self.script.next("cancel", task_id)

    def cancel_submission(self) -> list[str]:
        return self.script.next("cancel_submission")

    def reattach(self, task_id: str) -> bool:
        return self.script.next("reattach", task_id)

    def cleanup(self, task_id: str) -> None:
        self.script.next("cleanup", task_id)

    def fetch_logs(self, task_id: str, into: BinaryIO) -> bool:
        into.write(self.script.next("logs", task_id))
        return True

    def close(self) -> None:
        self.script.calls.append(("close", None))
