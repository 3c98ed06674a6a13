"""Turn SIGTERM/SIGINT (and, by default, SIGCONT) into a prompt, single cancel request.

The handler only records the signal; the C-level wakeup fd makes the runner's
poll sleep return at once. The runner then does the I/O (cancel request) itself.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import time
from types import FrameType

_TERMINATING = (signal.SIGTERM, signal.SIGINT)


class SignalWatch:
    """Install handlers on enter; :meth:`sleep` wakes early when a signal arrives."""

    def __init__(self, cancel_on_sigcont: bool = True) -> None:
        self.cancel_on_sigcont = cancel_on_sigcont
        self.received: list[int] = []
        self._previous: dict[int, object] = {}
        self._previous_fd = -1

    @property
    def signals(self) -> tuple[int, ...]:
        return (*_TERMINATING, signal.SIGCONT) if self.cancel_on_sigcont else _TERMINATING

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        # No I/O, no locks: just remember. The wakeup fd (written in C) wakes sleep().
        self.received.append(signum)

    @property
    def triggered(self) -> bool:
        return bool(self.received)

    @property
    def exit_signal(self) -> int:
        """The signal to report in the exit status (TERM/INT win over CONT)."""
        for signum in reversed(self.received):
            if signum in _TERMINATING:
                return signum
        return self.received[-1]

    def __enter__(self) -> SignalWatch:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.set_wakeup_fd(self._previous_fd)
        # After a cancel, keep recording: scancel's SIGTERM follows its SIGCONT by ~10 ms
        # and must not kill the process with the default action while it exits.
        if not self.triggered:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)  # type: ignore[arg-type]
        self._reader.close()
        self._writer.close()

    def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; return True at once if a watched signal has arrived."""
        if self.triggered:
            return True
        select.select([self._reader], [], [], max(0.0, seconds))
        self._drain()
        return self.triggered

    def wait_for_terminating(self, seconds: float) -> None:
        """After a SIGCONT-only cancel, wait briefly for the SIGTERM scancel sends next."""
        deadline = time.monotonic() + seconds
        while not any(s in _TERMINATING for s in self.received):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            select.select([self._reader], [], [], left)
            self._drain()

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
