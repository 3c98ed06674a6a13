"""The backends' configuration and properties, shared by a user's runners on a node.

Fifty runners of a job array would each fetch the same two documents before submitting;
the first one keeps them here and the others read them. One JSON file per service
endpoint and backend, in the state directory beside the journal (``backends/`` next to
``submitted/``, see :mod:`qrmi_tasks.journal`), directory 0700, files 0600, written
atomically. An entry serves for :data:`MAX_AGE_SECONDS` and only for the calibration it
recorded (the properties' ``last_update_date``): the target check is advisory (the
backend judges the job anyway), so a calibration a few minutes old is good enough.
A cache that cannot be read or written costs a fetch, never the run. Runners that miss the
cache together fetch one at a time (:func:`qrmi_tasks.filelock.exclusive` on the entry's
lock file, at most :data:`LOCK_WAIT_SECONDS` each), so the first one's answer serves the
others.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from qrmi_tasks import filelock, journal

log = logging.getLogger("qrmi_tasks.runner")

MAX_AGE_SECONDS = 600.0
#: the longest a runner waits for another runner's fetch before fetching itself
LOCK_WAIT_SECONDS = 10.0
_MAX_ENTRY = 64 << 20  # a large backend's properties are a few MiB

Documents = tuple[dict[str, Any], dict[str, Any] | None]


def directory(environ: Mapping[str, str]) -> Path:
    """The cache's directory for this environment."""
    return journal.state_root(environ) / "backends"


def _path(environ: Mapping[str, str], key: str) -> Path:
    return directory(environ) / f"{hashlib.sha256(key.encode()).hexdigest()[:40]}.json"


def _read(path: Path, key: str) -> Documents | None:
    try:
        if path.stat().st_mtime < time.time() - MAX_AGE_SECONDS:
            return None
        with path.open("rb") as handle:
            entry = json.loads(handle.read(_MAX_ENTRY + 1))
        if entry["key"] != key or not isinstance(entry["configuration"], dict):
            return None
        properties = entry["properties"]
        if properties is not None and entry["calibration"] != properties.get("last_update_date"):
            return None
        return entry["configuration"], properties
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.debug("ignoring the cached backend documents %s: %r", path, exc)
        return None


def _write(path: Path, key: str, documents: Documents) -> None:
    configuration, properties = documents
    calibration = properties.get("last_update_date") if isinstance(properties, dict) else None
    entry = {
        "key": key,
        "calibration": calibration,
        "configuration": configuration,
        "properties": properties,
    }
    try:
        journal.write_private_json(path, entry)
    except (OSError, TypeError, ValueError) as exc:
        log.debug("cannot cache the backend documents in %s: %r", path, exc)


def documents(environ: Mapping[str, str], key: str, fetch: Callable[[], Documents]) -> Documents:
    """The documents cached under ``key`` (service endpoint and backend), else ``fetch()``'s."""
    path = _path(environ, key)
    cached = _read(path, key)
    if cached is not None:
        log.debug("backend documents for %s from %s", key, path)
        return cached
    with contextlib.suppress(OSError):  # else the lock cannot open: fetch without it
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with filelock.exclusive(path.with_suffix(".lock"), LOCK_WAIT_SECONDS):
        cached = _read(path, key)  # another runner's fetch may have landed meanwhile
        if cached is not None:
            log.debug("backend documents for %s from %s", key, path)
            return cached
        fetched = fetch()
        _write(path, key, fetched)
        return fetched
