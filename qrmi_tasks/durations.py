"""When a resource's recent tasks of one kind ended, so the next one's end is watched closely.

A job array or a parameter sweep sends the same kind of task to the same resource again
and again, and each takes about as long as the last. Polling blindly, the runner must
choose between asking often (many requests) and noticing the end late; knowing when such
tasks ended before, it can ask rarely until shortly before that moment and often around it
(:class:`~qrmi_tasks.providers.base.PollSchedule`'s window).

What is kept, per user, resource and kind of task (:func:`kind_key`): for each of the last
:data:`KEEP` completed tasks, the interval in which it ended, on the clock that starts when
the task started running (between the last poll that saw it running and the one that saw
it done). When those agree (:func:`expected_window`), the next task gets a window around
them; when they disagree, or nothing is known, the ordinary schedule applies, and a task
that outlives its window is polled by the ordinary schedule from there. One small JSON file
per key in the state directory beside the journal's (``durations/``), directory 0700, files
0600, written atomically; a file that cannot be read or written costs the window, never the
run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import statistics
from collections.abc import Mapping
from pathlib import Path

from qrmi_tasks import journal

log = logging.getLogger("qrmi_tasks.runner")

#: how many recent tasks of a kind are remembered
KEEP = 5
#: ends further apart than this (seconds, or this fraction of the typical duration,
#: whichever is larger) are not one kind of task: no window
AGREEMENT_SECONDS = 1.0
AGREEMENT_FRACTION = 0.25
#: a window is at least this wide either side of the expected end (request latency and
#: the service's own status refresh blur the end by about this much)...
MIN_HALF_WIDTH = 0.15
#: ...and at most this wide: a wider one would cost more polls than it saves
MAX_HALF_WIDTH = 0.75
_MAX_ENTRY = 4 << 10

Interval = tuple[float, float]


def kind_key(resource: str, resource_type: str, kind: str) -> str:
    """The key of tasks expected to take about as long: same resource, same kind of work
    (e.g. ``sampler with 1 pub(s)``)."""
    return f"{resource}\0{resource_type}\0{kind}"


def directory(environ: Mapping[str, str]) -> Path:
    """Where the records live for this environment."""
    return journal.state_root(environ) / "durations"


def _path(environ: Mapping[str, str], key: str) -> Path:
    return directory(environ) / f"{hashlib.sha256(key.encode()).hexdigest()[:40]}.json"


def recent(environ: Mapping[str, str], key: str) -> list[Interval]:
    """The intervals in which the last tasks of ``key`` ended (oldest first); [] if none
    can be read."""
    path = _path(environ, key)
    try:
        with path.open("rb") as handle:
            entry = json.loads(handle.read(_MAX_ENTRY + 1))
        if entry["key"] != key:
            return []
        ends = [(float(lo), float(hi)) for lo, hi in entry["ends"]]
        return [(lo, hi) for lo, hi in ends if 0 <= lo <= hi][-KEEP:]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, TypeError, KeyError) as exc:
        log.debug("ignoring the task durations in %s: %r", path, exc)
        return []


def expected_window(ends: list[Interval]) -> Interval | None:
    """The window in which the next task is expected to end, if the recent ones agree."""
    if not ends:
        return None
    middles = [(lo + hi) / 2 for lo, hi in ends]
    typical = statistics.median(middles)
    spread = max(middles) - min(middles)
    if spread > max(AGREEMENT_SECONDS, AGREEMENT_FRACTION * typical):
        return None
    # the narrowest interval observed says how precisely one end is known
    precision = min(hi - lo for lo, hi in ends) / 2
    half = min(MAX_HALF_WIDTH, max(MIN_HALF_WIDTH, spread / 2 + precision))
    return max(0.0, typical - half), typical + half


def record(environ: Mapping[str, str], key: str, ended: Interval) -> None:
    """Remember that a task of ``key`` ended within ``ended``."""
    ends = [*recent(environ, key), ended][-KEEP:]
    folder = directory(environ)
    document = {"key": key, "ends": [[round(a, 3), round(b, 3)] for a, b in ends]}
    try:
        journal.write_private_json(_path(environ, key), document)
    except OSError as exc:
        log.debug("cannot record the task duration in %s: %s", folder, exc)
