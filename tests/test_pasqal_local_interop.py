"""qrmi 0.26.4 and qrmi-task-runner on the same fake warden, with the same payload and variables.

qrmi's Python task_runner has no ``pasqal-local`` entry (its RESOURCE_TYPE_MAP), so qrmi's
library is driven as the Slurm plugin and qrmi's Pulser connection drive it: ``acquire()``
opens the warden session that becomes ``{name}_QRMI_JOB_ACQUISITION_TOKEN``,
``task_start``/``task_status``/``task_result`` run a job, ``release()`` revokes the
session. Our runner runs the same payload file in that session. Both authenticate with
real MUNGE credentials from the host's munged.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from fakes.munge_daemon import ensure_munged
from fakes.pasqal_local import FakeWarden, runner_env
from helpers import clean_env
from payloads import write_pulser_payload

pytestmark = pytest.mark.timeout(120)
QPU = "PASQAL_LOCAL"
RUNS = 60


@pytest.fixture
def fake():
    reason = ensure_munged()
    if reason is not None:
        pytest.skip(f"the warden authenticates with MUNGE: {reason}")
    server = FakeWarden(job_seconds=0.3).start()
    yield server
    server.stop()


def test_qrmi_and_the_runner_run_one_payload_in_one_session(fake, in_process, tmp_path):
    qrmi = pytest.importorskip("qrmi", reason="qrmi 0.26.4 (the dev extra) is not installed")
    payload_file = write_pulser_payload(tmp_path / "seq.json", runs=RUNS, as_string=True)
    document = json.loads(payload_file.read_text())
    # what the plugin exports for the job: the warden URL, the user and the job
    env = clean_env(**runner_env(QPU, fake.url), QRMI_JOB_UID=str(os.getuid()), QRMI_JOB_ID="4242")
    in_process.use_env(env)  # os.environ, which qrmi's Rust code reads too

    resource = qrmi.QuantumResource(QPU, qrmi.ResourceType.PasqalLocal)
    session = resource.acquire()
    assert fake.sessions[session] == {"user_id": str(os.getuid()), "slurm_job_id": "4242"}
    os.environ[f"{QPU}_QRMI_JOB_ACQUISITION_TOKEN"] = session
    task = resource.task_start(
        qrmi.Payload.PasqalCloud(sequence=document["sequence"], job_runs=document["job_runs"])
    )
    deadline = time.monotonic() + 60
    while resource.task_status(task) not in (qrmi.TaskStatus.Completed, qrmi.TaskStatus.Failed):
        assert time.monotonic() < deadline, "qrmi's job never ended"
        time.sleep(0.1)
    assert resource.task_status(task) == qrmi.TaskStatus.Completed
    theirs = json.loads(resource.task_result(task).value)

    out = tmp_path / "ours.json"
    outcome = in_process.run(QPU, payload_file, "-o", out)
    assert outcome.code == 0, outcome.stderr
    ours = json.loads(out.read_text())

    qrmi_job, our_job = fake.created
    for key in ("sequence", "shots", "session", "uid"):  # the same request, byte for byte
        assert qrmi_job[key] == our_job[key], key
    assert our_job["session"] == session and fake.revoked == []  # the plugin's session, kept
    assert set(ours) == set(theirs) == {"counter"}
    assert sum(ours["counter"].values()) == sum(theirs["counter"].values()) == RUNS

    # qrmi's Pulser connection reads the warden's specs as a Pulser device
    from qrmi.pulser.connection import PulserQRMIConnection

    assert list(PulserQRMIConnection(resource).fetch_available_devices()) == ["AnalogDevice"]
    resource.release(session)
    assert fake.revoked == [session]
