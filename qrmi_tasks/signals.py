"""Turn SIGTERM/SIGINT/SIGHUP (and, by default, SIGCONT) into a prompt, single cancel request.

The handler only records the signal (and releases worker threads' sleeps); the C-level
wakeup fd makes the main thread's wait return at once. Provider calls run in worker
threads (:mod:`qrmi_tasks.calls`) and the main thread waits here, so a signal is acted
on whatever a call is blocked on. Only the main thread reads the wakeup socket: worker
threads sleep on an event instead, so no thread can swallow another's wake-up.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Iterator
from types import FrameType

_TERMINATING = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
#: Every signal a :class:`SignalWatch` may handle (SIGCONT unless it is opted out).
WATCHABLE = (*_TERMINATING, signal.SIGCONT)


class SignalWatch:
    """Install handlers on enter; :meth:`sleep` and :meth:`wait` wake early on a signal.

    ``handlers=False`` installs nothing (a run in a thread other than the main one, where
    Python refuses handlers): only :meth:`trigger` stops it. ``keep_after_cancel=False``
    restores the previous handlers on exit even after a signal, for a run inside a
    process that lives on (a notebook kernel owns SIGINT); the CLI keeps them (below).
    """

    def __init__(
        self,
        cancel_on_sigcont: bool = True,
        *,
        handlers: bool = True,
        keep_after_cancel: bool = True,
    ) -> None:
        self.cancel_on_sigcont = cancel_on_sigcont
        self.handlers = handlers
        self.keep_after_cancel = keep_after_cancel
        self.received: list[int] = []
        #: what a programmatic first trigger says it was (:meth:`trigger`'s ``reason``)
        self.reason: str | None = None
        #: ``time.monotonic()`` of the first watched signal (the cancel budget starts there)
        self.first_at: float | None = None
        self._previous: dict[int, object] = {}
        self._previous_fd = -1
        self._released = threading.Event()  # set on the first signal: worker sleeps end
        self._local = threading.local()

    @property
    def signals(self) -> tuple[int, ...]:
        return WATCHABLE if self.cancel_on_sigcont else _TERMINATING

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        # Runs in the main thread between bytecodes. No I/O; the main thread never waits
        # on this event's lock itself, so setting it here cannot deadlock.
        if self.first_at is None:
            self.first_at = time.monotonic()
        self.received.append(signum)
        self._released.set()

    def trigger(self, signum: int, reason: str | None = None) -> None:
        """Act as if ``signum`` had arrived (a programmatic cancel), from any thread.

        ``reason`` names the trigger in log lines (:attr:`cause`) when it comes first: a
        cancel from Python is not a signal the user sent.
        """
        if reason is not None and not self.received:
            self.reason = reason
        self._handle(signum, None)
        self.wake()

    @property
    def cause(self) -> str:
        """What started the cancel, for log lines: the first trigger's reason, else the
        signal's name (``SIGTERM``)."""
        return self.reason or describe(self.exit_signal)

    @property
    def triggered(self) -> bool:
        """A watched signal has arrived (whatever the calling thread)."""
        return bool(self.received)

    def interrupted(self) -> bool:
        """Whether the calling thread should stop: a signal arrived and it is not shielded."""
        return self.triggered and not getattr(self._local, "shielded", False)

    @property
    def exit_signal(self) -> int:
        """The signal to report in the exit status (TERM/INT/HUP win over CONT)."""
        for signum in reversed(self.received):
            if signum in _TERMINATING:
                return signum
        return self.received[-1]

    def __enter__(self) -> SignalWatch:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        if not self.handlers:
            return self
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handlers:
            signal.set_wakeup_fd(self._previous_fd)
        # After a cancel, keep recording: scancel's SIGTERM follows its SIGCONT by ~10 ms
        # and must not kill the process with the default action while it exits.
        if not self.triggered or not self.keep_after_cancel:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)  # type: ignore[arg-type]
        self._reader.close()
        self._writer.close()

    # -- waiting --------------------------------------------------------------------------
    def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; return True at once if the caller is interrupted.

        Safe from any thread. In a :meth:`shielded` thread (the cancel itself) it sleeps
        the full time and returns False: a pending signal must not abort the cancel.
        """
        if getattr(self._local, "shielded", False):
            time.sleep(max(0.0, seconds))
            return False
        if self.triggered:
            return True
        if threading.current_thread() is threading.main_thread():
            # a wake-up meant for an earlier wait (a call that ended just as it was
            # checked) must not cut this one short: sleep the whole time
            until = time.monotonic() + seconds
            while not self.triggered and (left := until - time.monotonic()) > 0:
                self.wait(left)
        else:
            self._released.wait(max(0.0, seconds))
        return self.triggered

    def wait(self, seconds: float) -> None:
        """Main thread only: block up to ``seconds`` until a signal or :meth:`wake`."""
        with contextlib.suppress(OSError, ValueError):  # closed socket: just return
            select.select([self._reader], [], [], max(0.0, seconds))
        self._drain()

    def wake(self) -> None:
        """Wake the main thread's :meth:`wait` (called by worker threads when done)."""
        writer = getattr(self, "_writer", None)  # None before __enter__
        if writer is None:
            return
        with contextlib.suppress(OSError, ValueError):
            writer.send(b"\0")

    def wait_for_terminating(self, until: float) -> None:
        """After a SIGCONT-only cancel, wait (to monotonic ``until``) for scancel's SIGTERM."""
        while not any(s in _TERMINATING for s in self.received):
            left = until - time.monotonic()
            if left <= 0:
                return
            self.wait(left)

    @contextlib.contextmanager
    def shielded(self) -> Iterator[None]:
        """In this thread, signals no longer interrupt waits (for the cancel's own retries)."""
        self._local.shielded = True
        try:
            yield
        finally:
            self._local.shielded = False

    def _drain(self) -> None:
        try:
            while self._reader.recv(512):
                pass
        except (BlockingIOError, OSError):
            pass


def describe(signum: int) -> str:
    """``SIGTERM`` style name of a signal number."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def cancel_on_sigcont_default(environ: dict[str, str] | os._Environ[str]) -> bool:
    """``QRMI_NO_CANCEL_ON_SIGCONT`` set to a true value disables cancel on SIGCONT."""
    value = environ.get("QRMI_NO_CANCEL_ON_SIGCONT", "").strip().lower()
    return value not in ("1", "true", "yes", "on")
