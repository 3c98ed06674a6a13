"""The journal of submissions (qrmi_tasks/journal.py): a rerun of a request takes over the
task an earlier run submitted where the service cannot find it by a label of ours.

The file format and its safety in unit tests; the runner's rules in process against the
scripted provider (marked ``journaled``); tests/test_iqm_server.py shows it on a real
client and fake.
"""

from __future__ import annotations

import json
import os
import stat
import time

import pytest
import scripted as sp
from helpers import BELL, EXAMPLES
from scripted import RESULT

from qrmi_tasks import journal
from qrmi_tasks.errors import TransientError
from qrmi_tasks.providers.base import TaskStatus

RUNNING, COMPLETED = TaskStatus.RUNNING, TaskStatus.COMPLETED
SLURM = {"SLURM_JOB_ID": "91", "SLURM_STEP_ID": "0", "SLURM_PROCID": "0"}


def _entry(request_id: str = "req-1", **changes) -> journal.Entry:
    fields = {
        "request_id": request_id,
        "resource": "qpu",
        "resource_type": "scripted",
        "task_id": "task-1",
        "digest": "ab" * 32,
        "submitted_at": time.time(),
    }
    fields.update(changes)
    return journal.Entry(**fields)


def test_entries_are_private_atomic_and_named_by_a_hash(tmp_path):
    env = {"QRMI_STATE_DIR": str(tmp_path / "state")}
    # a user's --task-id may hold anything: it never becomes a path
    entry = _entry("../../etc/passwd q?x=1#frag")
    assert journal.record(env, entry)
    folder = tmp_path / "state" / "submitted"
    (path,) = folder.iterdir()
    assert path.parent == folder and path.name.endswith(".json") and "/" not in path.stem
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert journal.find(env, entry.request_id) == entry
    assert journal.find(env, "req-2") is None
    journal.forget(env, entry.request_id)
    assert journal.find(env, entry.request_id) is None and list(folder.iterdir()) == []


def test_a_damaged_or_foreign_entry_is_ignored(tmp_path):
    env = {"QRMI_STATE_DIR": str(tmp_path)}
    assert journal.record(env, _entry())
    (path,) = (tmp_path / "submitted").iterdir()
    path.write_text("{not json")
    assert journal.find(env, "req-1") is None
    path.write_text(json.dumps({"request_id": "req-1"}))  # missing fields
    assert journal.find(env, "req-1") is None
    other = journal.Entry(**{**json.loads(json.dumps(_entry().__dict__)), "request_id": "x"})
    path.write_text(json.dumps(other.__dict__))  # a hash collision cannot hand it over
    assert journal.find(env, "req-1") is None


def test_old_entries_are_pruned_and_the_default_place_is_the_users_state_dir(tmp_path):
    env = {"QRMI_STATE_DIR": str(tmp_path)}
    assert journal.record(env, _entry("old"))
    (old,) = (tmp_path / "submitted").iterdir()
    stale = time.time() - (journal.MAX_AGE_DAYS + 1) * 86400
    os.utime(old, (stale, stale))
    assert journal.record(env, _entry("new"))
    assert journal.find(env, "old") is None and journal.find(env, "new") is not None
    assert journal.directory({"HOME": "/h"}) == journal.Path("/h/.local/state/qrmi-tasks/submitted")
    assert journal.directory({"HOME": "/h", "XDG_STATE_HOME": "/s"}) == journal.Path(
        "/s/qrmi-tasks/submitted"
    )


def test_an_unwritable_journal_is_a_warning_not_a_failure(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = {"QRMI_STATE_DIR": str(blocker / "state")}
    with caplog.at_level("WARNING", logger="qrmi_tasks.runner"):
        assert not journal.record(env, _entry())
    assert "a rerun of this request would submit it again" in caplog.text


# -- the runner's rules, against the scripted provider ------------------------------------
@pytest.fixture
def journaled(scripted, monkeypatch):
    """The scripted resource as a type the service cannot find tasks of (journaled),
    inside a Slurm task (deterministic request ids)."""
    monkeypatch.setattr(sp.ScriptedProvider, "journaled", True)
    for name, value in SLURM.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("QRMI_OUTAGE_GRACE_SECONDS", "0.3")
    return scripted


def _entries() -> list[dict]:
    folder = journal.directory(os.environ)
    return [json.loads(p.read_text()) for p in folder.glob("*.json")] if folder.is_dir() else []


def test_a_rerun_takes_over_the_task_instead_of_submitting_again(journaled, tmp_path):
    script = journaled.script
    script.status = [RUNNING, TransientError("connection refused")]
    lost = journaled.run(sp.RESOURCE, str(BELL), "-o", str(tmp_path / "out.json"))
    assert lost.code == 3, lost.stderr  # contact lost for longer than the grace period
    (entry,) = _entries()
    assert entry["task_id"] == "task-1" and entry["resource"] == sp.RESOURCE

    script.status = [RUNNING, COMPLETED]
    done = journaled.run(sp.RESOURCE, str(BELL), "-o", str(tmp_path / "out.json"))
    assert done.code == 0, done.stderr
    assert "task task-1: attached to the task an earlier run of this request submitted" in (
        done.stderr
    )
    assert script.count("submit") == 1 and ("reattach", "task-1") in script.calls
    assert (tmp_path / "out.json").read_bytes() == RESULT
    assert _entries() == []  # the task ended and its result is safe: a rerun starts afresh


def test_a_task_that_cannot_deliver_any_more_is_submitted_anew(journaled, tmp_path):
    script = journaled.script
    script.status = [RUNNING, TransientError("connection refused")]
    assert journaled.run(sp.RESOURCE, str(BELL)).code == 3
    script.reattach = [False]
    script.submit = ["task-2"]
    script.status = [COMPLETED]
    done = journaled.run(sp.RESOURCE, str(BELL))
    assert done.code == 0, done.stderr
    assert "task-1, which an earlier run of this request submitted, can no longer" in done.stderr
    assert script.count("submit") == 2 and _entries() == []


def test_a_task_id_reused_for_another_payload_is_refused_before_any_call(journaled, tmp_path):
    script = journaled.script
    script.status = [RUNNING, TransientError("connection refused")]
    assert journaled.run(sp.RESOURCE, str(BELL), "--task-id", "mine-7").code == 3
    other = EXAMPLES / "qiskit" / "bell_estimator.json"
    calls = len(script.calls)
    refused = journaled.run(sp.RESOURCE, str(other), "--task-id", "mine-7")
    assert refused.code == 2, refused.stderr
    (line,) = refused.errors()
    assert "task id mine-7 already names task task-1" in line and "another --task-id" in line
    assert [name for name, _ in script.calls[calls:]] == ["close"]  # nothing reached it


def test_a_cancelled_task_is_forgotten_and_a_failed_one_too(journaled, tmp_path):
    import signal

    from scripted import signal_self

    script = journaled.script
    script.status = [RUNNING, signal_self(signal.SIGTERM, RUNNING)]
    assert journaled.run(sp.RESOURCE, str(BELL)).code == 143
    assert script.count("cancel") == 1 and _entries() == []
    script.status = [RUNNING, TaskStatus.FAILED]
    assert journaled.run(sp.RESOURCE, str(BELL)).code == 1
    assert script.count("reattach") == 0 and _entries() == []


def test_outside_slurm_nothing_is_journaled(scripted, monkeypatch):
    monkeypatch.setattr(sp.ScriptedProvider, "journaled", True)
    monkeypatch.setenv("QRMI_OUTAGE_GRACE_SECONDS", "0.3")
    scripted.script.status = [RUNNING, TransientError("connection refused")]
    assert scripted.run(sp.RESOURCE, str(BELL)).code == 3
    assert _entries() == []  # a random request id: no rerun could ever ask for it


def test_a_requeue_leaves_a_journaled_task_running_for_the_rerun(journaled, tmp_path, monkeypatch):
    import signal

    from scripted import signal_self

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"  # what Slurm says of a job being requeued
    scontrol.write_text("#!/bin/sh\necho 'JobId=91 JobName=x Restarts=1 BatchFlag=1'\n")
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    script = journaled.script
    script.status = [RUNNING, signal_self(signal.SIGTERM, RUNNING)]
    done = journaled.run(sp.RESOURCE, str(BELL))
    assert done.code == 143, done.stderr
    assert "Slurm is requeueing job 91; task task-1 is left running" in done.stderr
    assert script.count("cancel") == 0
    assert [e["task_id"] for e in _entries()] == ["task-1"]  # the requeued run's way back
