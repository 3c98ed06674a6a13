"""Provider calls off the main thread, so a signal is acted on whatever a call waits for.

A call runs in a daemon worker thread; the main thread waits for its end, a signal, or
its overall deadline, whichever comes first. A call still running when the main thread
stops waiting is *abandoned*: it keeps its connection (the next call, and the cancel,
open fresh ones) and dies with the process. This is what bounds hung reads and
slow-drip answers that per-read socket timeouts cannot, inside libraries that offer no
deadline of their own (qiskit-ibm-runtime, pasqal-cloud).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from qrmi_tasks.errors import CallTimeout, Interrupted
from qrmi_tasks.signals import SignalWatch

T = TypeVar("T")

_abandoned: list[threading.Thread] = []


class Call(Generic[T]):
    """One provider call running in its own worker thread."""

    def __init__(self, what: str, action: Callable[[], T], watch: SignalWatch | None) -> None:
        self.what = what
        self._action = action
        self._watch = watch
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"qrmi: {what}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self._value = self._action()
        except BaseException as exc:  # handed to the waiting thread, whatever it is
            self._error = exc
        finally:
            self._done.set()
            if self._watch is not None:
                self._watch.wake()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def join(self, until: float) -> bool:
        """Wait (to monotonic ``until``) for the call to end; True if it has."""
        return self._done.wait(max(0.0, until - time.monotonic()))

    def outcome(self) -> T:
        """The call's value, or raise its exception (only once :attr:`done`)."""
        if self._error is not None:
            raise self._error
        return self._value

    def abandon(self) -> None:
        """Stop caring about this call; it ends with the process if not before."""
        if not self.done:
            _abandoned.append(self.thread)


def call(watch: SignalWatch, what: str, action: Callable[[], T], timeout: float | None) -> T:
    """Run ``action`` in a worker thread while the main thread watches for signals.

    Returns its value or raises its exception. Raises :class:`Interrupted` (with the
    still-running call as ``pending``) as soon as a watched signal arrives, and
    :class:`CallTimeout` if it has not finished after ``timeout`` seconds.
    """
    running = Call(what, action, watch)
    deadline = None if timeout is None else time.monotonic() + timeout
    while not running.done:
        if watch.triggered:
            raise Interrupted(pending=running)
        left = 1.0 if deadline is None else deadline - time.monotonic()
        if left <= 0:
            running.abandon()
            raise CallTimeout(
                f"the provider did not answer completely within {timeout:.0f} s while trying "
                f"to {what} (a hung or very slow connection)"
            )
        watch.wait(min(left, 1.0))
    return running.outcome()


def bounded(what: str, action: Callable[[], T], until: float) -> T:
    """Run ``action`` in a worker thread, giving it until monotonic ``until``.

    For the cancel path, which must end within its budget even if the provider hangs:
    no signal handling here (the signal has already arrived). Raises CallTimeout.
    """
    running = Call(what, action, None)
    if not running.join(until):
        running.abandon()
        raise CallTimeout(f"no answer in time while trying to {what}")
    return running.outcome()


def abandoned() -> bool:
    """Whether a call is still running in an abandoned worker thread."""
    return any(thread.is_alive() for thread in _abandoned)
