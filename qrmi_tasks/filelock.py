"""One bounded, advisory lock between a user's runners on a node (``fcntl.flock``).

The kernel releases the lock when its holder dies, even by SIGKILL; a holder that is
stuck (stopped, or hung on a service) is waited for a bounded time only, after which the
waiting runner goes on without the lock: a slow neighbour never stalls a run. Used where
one runner should fetch something and the others read its answer (tokens, backend
documents).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("qrmi_tasks.runner")

_POLL_SECONDS = 0.02


@contextlib.contextmanager
def exclusive(path: Path, wait: float) -> Iterator[bool]:
    """Hold the lock of file ``path`` (created 0600) while inside; yields False when it
    could not be had within ``wait`` seconds, or at all: the caller goes on without it."""
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        log.debug("lock %s unusable: %r", path, exc)
        yield False
        return
    try:
        held = False
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(_POLL_SECONDS)
            except OSError as exc:  # a file system without flock
                log.debug("cannot lock %s: %r", path, exc)
                break
        if not held:
            log.debug("%s still locked after %.1f s; going on without it", path, wait)
        yield held
    finally:
        os.close(handle)  # releases the lock
