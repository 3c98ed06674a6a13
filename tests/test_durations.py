"""What earlier tasks took: kept per user and kind, a window only when they agree."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest
import scripted as sp
from helpers import BELL

from qrmi_tasks import durations
from qrmi_tasks.providers.base import PollPolicy, TaskStatus

KEY = durations.kind_key("ibm_x", "direct-access", "sampler with 1 pub(s)")


@pytest.fixture
def environ(tmp_path):
    return {"QRMI_STATE_DIR": str(tmp_path / "state")}


def test_recorded_ends_give_a_window_around_them(environ):
    assert durations.expected_window(durations.recent(environ, KEY)) is None
    durations.record(environ, KEY, (9.5, 10.5))
    durations.record(environ, KEY, (9.9, 10.0))
    start, end = durations.expected_window(durations.recent(environ, KEY))
    assert start < 9.95 < end and start < 10.0 < end
    assert end - start <= 2 * durations.MAX_HALF_WIDTH
    folder = durations.directory(environ)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    (entry,) = folder.iterdir()
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600


def test_only_the_last_few_are_kept_and_keys_do_not_mix(environ):
    for n in range(durations.KEEP + 3):
        durations.record(environ, KEY, (float(n), n + 0.1))
    assert len(durations.recent(environ, KEY)) == durations.KEEP
    assert durations.recent(environ, KEY + "x") == []


def test_ends_that_disagree_give_no_window():
    assert durations.expected_window([(2.0, 2.1), (30.0, 30.1)]) is None
    # a quarter of the typical duration is still one kind of task
    assert durations.expected_window([(40.0, 40.1), (47.0, 47.1)]) is not None


@pytest.mark.parametrize(
    "content", [b"{not json", b'{"key": "other", "ends": [[1, 2]]}', b'{"key": 1}', b"x" * 9000]
)
def test_an_unreadable_record_costs_the_window_only(environ, content):
    durations.record(environ, KEY, (1.0, 1.1))
    (entry,) = durations.directory(environ).iterdir()
    entry.write_bytes(content)
    assert durations.recent(environ, KEY) == []
    durations.record(environ, KEY, (1.0, 1.1))  # and is replaced by the next record
    assert durations.recent(environ, KEY) == [(1.0, 1.1)]


def test_a_directory_that_cannot_be_written_costs_nothing(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    environ = {"QRMI_STATE_DIR": str(blocked / "state")}
    durations.record(environ, KEY, (1.0, 1.1))  # no error
    assert durations.recent(environ, KEY) == []
    assert not os.path.isdir(blocked)


# -- the runner learns, against the scripted provider ---------------------------------------
def test_the_next_task_of_a_kind_is_polled_around_where_the_last_one_ended(
    scripted, monkeypatch, tmp_path
):
    policy = PollPolicy(jitter=0.0)  # the real schedule, not the scripted one's short polls
    monkeypatch.setattr(sp.ScriptedProvider, "poll_policy", policy)
    length = 0.8  # the task ends this long after its first status

    def runs_for_a_while():
        started: list[float] = []

        def step():
            now = time.monotonic()
            started.append(started[0] if started else now)
            return TaskStatus.COMPLETED if now - started[0] >= length else TaskStatus.RUNNING

        return step

    brackets = []
    for run in range(2):
        scripted.script.status = [runs_for_a_while()]
        done = scripted.run(sp.RESOURCE, str(BELL), "-o", str(tmp_path / f"out{run}.json"))
        assert done.code == 0, done.stderr
        (record,) = durations.directory(os.environ).iterdir()
        lo, hi = durations.recent(os.environ, json_key(record))[-1]
        # the end lies where the record says (the runner's clock starts a moment after the
        # first status answer: on a loaded machine, up to a tenth of a second)
        assert lo - 0.15 < length <= hi + 0.15
        brackets.append(hi - lo)
    # the first task's end was bracketed by the ordinary schedule's polls (0.59 s, 1.05 s);
    # the second one's by the window's, a step apart
    assert brackets[0] > 0.3
    assert brackets[1] <= 3 * policy.window_step  # (a loaded machine's late wake-ups)


def json_key(path) -> str:
    return json.loads(path.read_text())["key"]
