"""qrmi_tasks.pulser.QRMIConnection: Pulser's QPUBackend on ``local`` (emulated in this
process) and on the fake Pasqal Cloud (driven by the real pasqal-cloud SDK)."""

from __future__ import annotations

import math
import time

import pytest
from fakes.pasqal_cloud import FakePasqalCloud, runner_env
from helpers import clean_env

pytestmark = pytest.mark.timeout(60)

DEVICE = "FRESNEL"  # the fake lists it, with pulser's AnalogDevice as its specs
OMEGA, DURATION = 2.0, 500  # rad/µs, ns


def _sequence(device=None, atoms: int = 2, measured: bool = False, parametrized: bool = False):
    """``atoms`` atoms 6 µm apart (a layout register, as a QPU needs), one resonant
    global pulse (amplitude the variable ``omega`` when ``parametrized``): deep in the
    blockade, so the pair shares one excitation."""
    from pulser import Pulse, Register, Sequence
    from pulser.devices import AnalogDevice

    device = device or AnalogDevice
    register = Register.rectangle(1, atoms, spacing=6, prefix="q")
    if device.requires_layout:
        register = register.with_automatic_layout(device)
    sequence = Sequence(register, device)
    sequence.declare_channel("r", "rydberg_global")
    omega = sequence.declare_variable("omega") if parametrized else OMEGA
    sequence.add(Pulse.ConstantPulse(DURATION, omega, 0.0, 0.0), "r")
    if measured:
        sequence.measure("ground-rydberg")
    return sequence


@pytest.fixture(scope="module")
def cloud():
    server = FakePasqalCloud(job_seconds=0.2).start()
    yield server
    server.stop()


def _cloud_connection(cloud):
    from qrmi_tasks.pulser import QRMIConnection

    return QRMIConnection(DEVICE, environ=clean_env(**runner_env(DEVICE, cloud.core_url)))


def test_qpu_backend_on_local_emulates_in_process():
    """Two jobs of a parametrized sequence -> two results in order, each built with its
    own variables and summing to its runs: the blockaded pair's physics (never both
    excited, one excitation with sin²(√2·Ω·t/2)), and no excitation at all for Ω = 0."""
    from pulser import QPUBackend
    from pulser.backend.results import Results

    from qrmi_tasks.pulser import QRMIConnection

    connection = QRMIConnection("local", environ=clean_env(), log_level=None)
    results = QPUBackend(_sequence(parametrized=True), connection=connection).run(
        job_params=[
            {"runs": 400, "variables": {"omega": OMEGA}},
            {"runs": 30, "variables": {"omega": 0.0}},
        ]
    )
    assert results.get_batch_status().name == "DONE"
    assert [t for t in connection.tasks()] == [None, None]  # no task: computed here
    first, second = results.results
    assert isinstance(first, Results) and first.atom_order == ("q0", "q1")
    counts = first.final_bitstrings
    assert sum(counts.values()) == 400 and second.final_bitstrings == {"00": 30}
    assert counts.get("11", 0) <= 4  # 6 µm is deep in the blockade radius
    expected = math.sin(math.sqrt(2) * OMEGA * DURATION / 1000 / 2) ** 2
    one = (counts.get("01", 0) + counts.get("10", 0)) / 400
    assert abs(one - expected) < 5 * math.sqrt(expected * (1 - expected) / 400), counts


def test_local_devices_and_refusals_are_one_line():
    """fetch_available_devices lists pulser's devices; a sequence on another device, runs
    beyond the device's max_runs, open batches and non-Pulser resources are refused with
    one-line errors before anything runs."""
    from dataclasses import replace

    from pulser import QPUBackend
    from pulser.devices import AnalogDevice

    from qrmi_tasks.errors import PayloadError, UsageError
    from qrmi_tasks.pulser import OpenBatchRefused, QRMIConnection, SequenceRefused

    connection = QRMIConnection("local", environ=clean_env(), log_level=None)
    devices = connection.fetch_available_devices()
    assert {"AnalogDevice", "DigitalAnalogDevice", "MockDevice"} <= set(devices)
    assert devices["AnalogDevice"] is AnalogDevice

    elsewhere = replace(AnalogDevice, name="Elsewhere")
    with pytest.raises(SequenceRefused) as refused:
        QPUBackend(_sequence(elsewhere), connection=connection).run(job_params=[{"runs": 10}])
    message = str(refused.value)
    assert isinstance(refused.value, PayloadError | ValueError) and "\n" not in message
    assert "'Elsewhere'" in message and "AnalogDevice" in message
    with pytest.raises(SequenceRefused, match="maximum allowed by the device"):
        connection.submit(_sequence(), job_params=[{"runs": AnalogDevice.max_runs + 1}])
    with pytest.raises(OpenBatchRefused, match="open batches are not supported"):
        connection.submit(_sequence(), open=True, job_params=[{"runs": 10}])
    assert connection.supports_open_batch() is False  # QPUBackend.open_batch refuses too
    with pytest.raises(UsageError, match="runs no Pulser sequences"):
        env = clean_env(
            SLURM_JOB_QPU_RESOURCES="ibm_x", SLURM_JOB_QPU_TYPES="qiskit-runtime-service"
        )
        QRMIConnection("ibm_x", environ=env, log_level=None)


def test_local_refuses_a_register_that_cannot_fit(monkeypatch):
    """The worker's memory refusal, before any emulation: a one-line PayloadError."""
    from qrmi_tasks.errors import PayloadError
    from qrmi_tasks.providers.local import memory
    from qrmi_tasks.pulser import QRMIConnection

    monkeypatch.setattr(memory, "available_bytes", lambda *a, **k: 100 << 20)
    connection = QRMIConnection("local", environ=clean_env(), log_level=None)
    started = time.monotonic()
    with pytest.raises(PayloadError, match=r"emulating 2 atoms with qutip needs about .* can use"):
        connection.submit(_sequence(), job_params=[{"runs": 5}])
    assert time.monotonic() - started < 2  # refused, not emulated


def test_qpu_backend_on_pasqal_cloud_fake(cloud):
    """The resource's device from the service's specs; one job through the runner's Task
    (the fake emulates the sequence), Pulser Results whose counts sum to the runs."""
    from pulser import QPUBackend
    from pulser.devices import AnalogDevice

    connection = _cloud_connection(cloud)
    assert connection.fetch_available_devices() == {DEVICE: AnalogDevice}
    results = QPUBackend(_sequence(), connection=connection).run(
        job_params=[{"runs": 40}], wait=True
    )
    assert results.get_batch_status().name == "DONE"
    (result,) = results.results
    assert sum(result.final_bitstrings.values()) == 40 and result.atom_order == ("q0", "q1")
    (task,) = connection.tasks()
    created = [c for c in cloud.created if task.task_id in {b for b in cloud.batches}]
    assert created and cloud.batches[task.task_id]["tags"][0].startswith("qrmi:")
    assert cloud.created[-1]["jobs"] == [{"runs": 40}]


def test_cancel_batch_reaches_the_fake(cloud):
    """cancel_batch_jobs cancels the batch's remote tasks: PATCH .../cancel reaches the fake
    for the batch the task created, and the jobs end CANCELED."""
    from pulser.backend.remote import JobStatus

    cloud.configure(job_seconds=30)
    try:
        connection = _cloud_connection(cloud)
        results = connection.submit(_sequence(), job_params=[{"runs": 10}])
        (task,) = connection.tasks(results.batch_id)
        deadline = time.monotonic() + 20
        while task.task_id is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert task.task_id is not None
        asked = time.time()
        connection.cancel_batch_jobs(results.batch_id)
        cancels = cloud.calls("PATCH", rf".*/api/v2/batches/{task.task_id}/cancel")
        assert cancels, "no cancel reached the fake"
        assert cancels[0]["time"] - asked < 1.0
        assert cloud.batches[task.task_id]["status"] in ("CANCELED", "CANCELING")
        progress = connection._query_job_progress(results.batch_id)
        assert [status for status, _ in progress.values()] == [JobStatus.CANCELED]
        assert results.get_batch_status().name == "CANCELED"
    finally:
        cloud.configure(job_seconds=0.2)
