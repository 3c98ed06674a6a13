"""What a killed run leaves behind, found by the pid in its name and removed once that
process is gone.

SIGKILL (the OOM killer, ``scancel -s KILL``, a node's reboot of the job) skips every
clean-up: a result's ``.part`` file stays beside the output, the local simulator's scratch
directory (a copy of the payload) in ``$TMPDIR``. Each carries its writer's pid in its
name; the next run removes those whose writer no longer exists. A pid that was reused is
taken as alive: a leftover may stay, but nothing of a live run is ever removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from pathlib import Path

log = logging.getLogger("qrmi_tasks.leftovers")


def pid_gone(pid: int) -> bool:
    """Whether no process ``pid`` exists (one of another user's counts as existing)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: it exists, it is not ours
        return False
    return False


def remove_stale(directory: Path, pattern: re.Pattern[str]) -> list[Path]:
    """Remove the entries of ``directory`` whose whole name matches ``pattern`` (its
    ``pid`` group the writer's pid), that this user owns and whose writer is gone."""
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    uid = os.geteuid()
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        try:
            if entry.stat(follow_symlinks=False).st_uid != uid:
                continue
        except OSError:
            continue
        if not pid_gone(int(match.group("pid"))):
            continue
        path = Path(entry.path)
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
            log.info("removed %s, left by process %s (gone)", path, match.group("pid"))
    return removed
