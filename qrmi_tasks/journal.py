"""Which task each request submitted, kept on disk: a rerun of the same request (a Slurm
requeue, the same ``--task-id``) attaches to it instead of submitting the work twice.

For services where nothing of ours can find a task again (no tag, no job listing: IQM
Server, Alice & Bob Felis); the others find their tasks by a tag of the request id. One
small JSON file per request, named by a hash of the request id (which may be the user's
``--task-id``), in ``submitted/`` of the state directory (:func:`state_root`:
``$QRMI_STATE_DIR``, else ``$XDG_STATE_HOME/qrmi-tasks``, else
``~/.local/state/qrmi-tasks``): on a cluster the home directory is shared, so a job
requeued onto another node finds it. Directory 0700, files 0600, written atomically; an
entry goes once its task has ended and its outcome was handled, and entries older than
:data:`MAX_AGE_DAYS` are pruned. A journal that cannot be written costs the rerun its
reattach, never the run: a warning says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("qrmi_tasks.runner")

STATE_ENV = "QRMI_STATE_DIR"
MAX_AGE_DAYS = 30
_MAX_ENTRY = 64 << 10  # an entry is a few hundred bytes; anything larger is not ours


@dataclass(frozen=True)
class Entry:
    """One submission: the request, where it went, the task it made, the payload's digest."""

    request_id: str
    resource: str
    resource_type: str
    task_id: str
    digest: str
    submitted_at: float


def state_root(environ: Mapping[str, str]) -> Path:
    """The runner's state directory for this environment: ``$QRMI_STATE_DIR``, else
    ``$XDG_STATE_HOME/qrmi-tasks``, else ``~/.local/state/qrmi-tasks``. The journal is its
    ``submitted/``; the caches beside it (backends' documents, tasks' durations) too."""
    if environ.get(STATE_ENV):
        return Path(environ[STATE_ENV])
    base = environ.get("XDG_STATE_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "qrmi-tasks"


def directory(environ: Mapping[str, str]) -> Path:
    """Where the journal lives for this environment (see the module's docstring)."""
    return state_root(environ) / "submitted"


def _path(environ: Mapping[str, str], request_id: str) -> Path:
    # the request id may be the user's --task-id: never a path of its own
    name = hashlib.sha256(request_id.encode()).hexdigest()[:40]
    return directory(environ) / f"{name}.json"


def find(environ: Mapping[str, str], request_id: str) -> Entry | None:
    """The entry of ``request_id``, or None (none, unreadable, or not one of ours)."""
    path = _path(environ, request_id)
    try:
        with path.open("rb") as handle:
            data = json.loads(handle.read(_MAX_ENTRY + 1))
        entry = Entry(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        log.debug("ignoring the journal entry %s: %r", path, exc)
        return None
    return entry if entry.request_id == request_id else None


def write_private_json(path: Path, document: Any, durable: bool = False) -> None:
    """Replace ``path`` with ``document`` as JSON, atomically, readable by this user only
    (its directory created 0700, the file 0600); ``durable``: on disk before it replaces
    the old one. Raises what writing raised (OSError; TypeError/ValueError for a document
    that is not JSON), leaving no temporary file behind. The state directory's one way of
    writing: the journal's entries and the caches beside it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".write-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:  # mkstemp's file is 0600
            json.dump(document, stream)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def record(environ: Mapping[str, str], entry: Entry) -> bool:
    """Write ``entry`` (atomically, 0600); False, with a warning, when it cannot be."""
    folder = directory(environ)
    try:
        write_private_json(_path(environ, entry.request_id), asdict(entry), durable=True)
    except OSError as exc:
        log.warning(
            "task %s: cannot record it in %s (%s); a rerun of this request would submit it "
            "again (set %s to a writable directory)",
            entry.task_id,
            folder,
            exc.strerror or exc,
            STATE_ENV,
        )
        return False
    _prune(folder)
    return True


def forget(environ: Mapping[str, str], request_id: str) -> None:
    """Drop the entry of ``request_id`` (its task has ended and was dealt with)."""
    with contextlib.suppress(OSError):
        _path(environ, request_id).unlink()


def _prune(folder: Path) -> None:
    """Drop entries (and leftovers of interrupted writes) older than MAX_AGE_DAYS."""
    oldest = time.time() - MAX_AGE_DAYS * 86400
    with contextlib.suppress(OSError):
        for path in folder.iterdir():
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < oldest:
                    path.unlink()
