"""qrmi_tasks.SamplerV2 / EstimatorV2 / backend(): Qiskit's primitive contract (as qiskit's
own tests of StatevectorSampler/StatevectorEstimator check it: pub broadcasting, shots
and precision per pub and by default, BitArray and DataBin shapes, register names,
metadata, several pubs) on ``local`` in this process, in depth; and on the Direct Access
and Qiskit Runtime fakes (real HTTP, Aer-computed results), a few pubs through the
runner's whole lifecycle with circuits transpiled for ``backend(resource)``'s target."""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import clean_env
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import Parameter
from qiskit.primitives import PrimitiveResult
from qiskit.primitives.containers import BitArray
from qiskit.quantum_info import SparsePauliOp, Statevector
from qiskit.transpiler import generate_preset_pass_manager

import qrmi_tasks
from qrmi_tasks.errors import PayloadError, UsageError

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("SLURM_", "QRMI_", "SRUN_")):
            monkeypatch.delenv(name)


def _rotations() -> QuantumCircuit:
    """RY(a) on qubit 0, RY(b) on qubit 1, measured into c: P(1) = sin^2(angle/2)."""
    a, b = Parameter("a"), Parameter("b")
    circuit = QuantumCircuit(2, 2)
    circuit.ry(a, 0)
    circuit.ry(b, 1)
    circuit.measure([0, 1], [0, 1])
    return circuit


def _exact(circuit: QuantumCircuit, observable: str, values) -> float:
    bound = circuit.remove_final_measurements(inplace=False).assign_parameters(values)
    return float(Statevector(bound).expectation_value(SparsePauliOp(observable)).real)


# -- SamplerV2 on local, in process ----------------------------------------------------------
def test_sampler_broadcasts_parameter_values_into_the_bit_array_shape():
    values = np.zeros((3, 2, 2))
    values[1, :, 0] = np.pi  # qubit 0 flipped in row 1
    values[2, :, :] = np.pi  # both flipped in row 2
    job = qrmi_tasks.SamplerV2("local").run([(_rotations(), values)], shots=50)
    result = job.result()
    assert isinstance(result, PrimitiveResult) and len(result) == 1
    bits = result[0].data.c
    assert isinstance(bits, BitArray)
    assert bits.shape == (3, 2) and bits.num_shots == 50 and bits.num_bits == 2
    assert result[0].metadata["shots"] == 50
    for row, expected in enumerate(("00", "01", "11")):  # qubit 0 is the rightmost bit
        for col in range(2):
            assert bits[row, col].get_counts() == {expected: 50}


def test_sampler_shots_per_pub_then_run_then_options_then_ibm_default():
    circuit = _rotations().assign_parameters([0, 0])
    own = qrmi_tasks.SamplerV2("local", options={"default_shots": 30})
    result = own.run([(circuit, None, 7), circuit]).result()
    assert [pub.data.c.num_shots for pub in result] == [7, 30]
    result = own.run([(circuit, None, 7), circuit], shots=11).result()
    assert [pub.data.c.num_shots for pub in result] == [7, 11]
    assert qrmi_tasks.SamplerV2().run([circuit]).result()[0].data.c.num_shots == 4096


def test_sampler_databin_fields_are_the_classical_registers():
    qubits = QuantumRegister(3, "q")
    first, second = ClassicalRegister(1, "alpha"), ClassicalRegister(2, "beta")
    circuit = QuantumCircuit(qubits, first, second)
    circuit.x(0)
    circuit.x(2)
    circuit.measure(0, first[0])
    circuit.measure([1, 2], second)
    data = qrmi_tasks.SamplerV2("local").run([circuit], shots=20).result()[0].data
    assert sorted(data) == ["alpha", "beta"]
    assert (data.alpha.num_bits, data.beta.num_bits) == (1, 2)
    assert data.alpha.get_counts() == {"1": 20} and data.beta.get_counts() == {"10": 20}


def test_sampler_refuses_bad_pubs_at_run_as_qiskit_does():
    sampler = qrmi_tasks.SamplerV2("local")
    with pytest.raises(ValueError):
        sampler.run([(_rotations(), [0.1])])  # one value for two parameters
    with pytest.raises(ValueError, match="no measurements"):
        sampler.run([QuantumCircuit(1)])


def test_same_samples_as_the_payload_path_for_the_same_seed():
    """Coerced pubs straight to the engine, and the payload through the runner (JSON in,
    the worker's run_primitive and encoding, the result file decoded): one engine, one
    seed, the same samples and metadata."""
    from generators import sampler_payload

    pub = (_rotations(), [[0.3, 2.0], [1.1, 0.4]], 64)
    options = {"simulator": {"seed_simulator": 11}}
    ours = qrmi_tasks.SamplerV2("local", options=options).run([pub]).result()
    with pytest.warns(UserWarning):
        payload = sampler_payload(pub, options=options, support_qiskit=True)
    worker = qrmi_tasks.run(payload, log_level=None)
    assert np.array_equal(ours[0].data.c.array, worker[0].data.c.array)
    assert ours[0].metadata == worker[0].metadata


# -- EstimatorV2 on local, in process ---------------------------------------------------------
def test_estimator_broadcasts_observables_against_parameter_values():
    circuit = _rotations()
    observables = [["ZI"], ["IZ"]]  # shape (2, 1)
    values = [[[0.0, 0.0], [np.pi / 3, 1.0], [np.pi, 2.0]]]  # shape (1, 3)
    result = qrmi_tasks.EstimatorV2("local").run([(circuit, observables, values, 0)]).result()
    data = result[0].data
    assert data.evs.shape == (2, 3) and data.stds.shape == (2, 3)
    for row, label in enumerate(("ZI", "IZ")):
        for col, point in enumerate(values[0]):
            assert data.evs[row, col] == pytest.approx(_exact(circuit, label, point), abs=1e-9)
    assert np.all(data.stds == 0)  # precision 0: exact values, honestly std 0


def test_estimator_precision_per_pub_then_run_then_options_and_honest_stds():
    circuit = _rotations().assign_parameters([0.4, 1.3])
    estimator = qrmi_tasks.EstimatorV2("local", options={"default_precision": 0.05})
    pubs = [(circuit, "ZZ", None, 0.02), (circuit, ["ZI", "IZ"])]
    result = estimator.run(pubs).result()
    assert [pub.metadata["target_precision"] for pub in result] == [0.02, 0.05]
    assert np.all(result[0].data.stds == 0.02) and np.all(result[1].data.stds == 0.05)
    assert result[1].data.evs.shape == (2,)
    for value, label in zip(result[1].data.evs, ("ZI", "IZ"), strict=True):
        assert abs(value - _exact(circuit, label, [])) < 6 * 0.05
    result = estimator.run(pubs, precision=0.01).result()
    assert [pub.metadata["target_precision"] for pub in result] == [0.02, 0.01]
    default = qrmi_tasks.EstimatorV2().run([(circuit, "ZZ")]).result()[0]
    assert default.metadata["target_precision"] == 0.015625  # IBM's 1/sqrt(4096)


def test_estimator_transpiled_for_a_large_target_runs_on_its_active_qubits():
    """An ISA circuit for a 133-qubit backend, observables with its layout applied: the
    worker's compaction applies in process too (a dense 133-qubit state would be refused)."""
    from qiskit_ibm_runtime.fake_provider import FakeTorino

    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    manager = generate_preset_pass_manager(optimization_level=1, target=FakeTorino().target)
    isa = manager.run(bell)
    observable = SparsePauliOp("XX").apply_layout(isa.layout)
    assert isa.num_qubits == 133
    result = qrmi_tasks.EstimatorV2().run([(isa, observable, None, 0)]).result()
    assert result[0].data.evs == pytest.approx(1.0, abs=1e-9)


def test_a_state_that_cannot_fit_is_a_one_line_refusal_before_any_allocation():
    circuit = QuantumCircuit(60)
    circuit.h(range(60))
    circuit.t(range(60))  # not Clifford: a dense statevector of 2^60 amplitudes
    with pytest.raises(PayloadError, match=r"60-qubit statevector simulation needs .* memory"):
        qrmi_tasks.EstimatorV2().run([(circuit, "Z" * 60)])


# -- the job -------------------------------------------------------------------------------
def test_job_follows_runtime_job_v2_conventions():
    job = qrmi_tasks.SamplerV2().run([_rotations().assign_parameters([0, 0])], shots=5)
    assert job.job_id().startswith("local-inproc-")
    assert job.status() in ("RUNNING", "DONE")
    job.result()
    assert (job.status(), job.done(), job.in_final_state()) == ("DONE", True, True)
    assert not (job.running() or job.cancelled() or job.errored())


def _slow_pub() -> tuple:
    """An estimator pub that computes for about 0.3 s: still running when cancelled."""
    circuit = QuantumCircuit(12)
    circuit.h(range(12))
    circuit.rz(Parameter("t"), range(12))
    return (circuit, "Z" * 12, np.linspace(0, 1, 200)[:, None])


def test_a_cancelled_job_never_returns_its_result():
    job = qrmi_tasks.EstimatorV2().run([_slow_pub()])
    job.cancel()
    assert job.status() == "CANCELLED" and job.cancelled()
    with pytest.raises(qrmi_tasks.TaskCancelled, match="result is dropped"):
        job.result()


def test_ctrl_c_while_waiting_cancels_the_job(monkeypatch):
    """A KeyboardInterrupt in result()'s wait (a notebook's interrupt) cancels the job
    before it propagates (the interrupt is raised from the wait itself: a real SIGINT
    would reach pytest-xdist's worker instead of this test)."""
    job = qrmi_tasks.EstimatorV2().run([_slow_pub()])

    def interrupted(timeout):
        raise KeyboardInterrupt

    monkeypatch.setattr(job._handle, "result", interrupted)
    with pytest.raises(KeyboardInterrupt):
        job.result()
    assert job.status() == "CANCELLED"


def test_mode_is_a_backend_and_its_target_serves_the_pass_manager():
    backend = qrmi_tasks.backend("local")
    assert backend.name == "local" and backend.num_qubits >= 20 and backend.max_circuits is None
    manager = generate_preset_pass_manager(backend=backend, optimization_level=1)
    isa = manager.run(_rotations())
    sampler = qrmi_tasks.SamplerV2(mode=backend)
    assert sampler.mode == "local"
    values = [[np.pi, 0.0]]
    assert sampler.run([(isa, values)], shots=9).result()[0].data.c.get_counts() == {"01": 9}
    with pytest.raises(UsageError, match="SamplerV2"):
        backend.run(isa)


def test_a_resource_without_qiskit_payloads_is_refused_at_construction():
    env = clean_env(
        QRMI_JOB_QPU_RESOURCES="emu", QRMI_JOB_QPU_TYPES="pasqal-local", emu_QRMI_URL="http://x"
    )
    with pytest.raises(UsageError, match="does not run Qiskit primitives"):
        qrmi_tasks.SamplerV2("emu", environ=env)


# -- run / submit of a Qiskit payload on local: in process ------------------------------------
def test_run_and_submit_compute_in_process():
    from generators import estimator_payload

    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    with pytest.warns(UserWarning):
        payload = estimator_payload((bell, ["ZZ", "XX"], None, 0.001))
    task = qrmi_tasks.submit(payload, log_level=None)
    result = task.result(timeout=60)
    assert task.task_id.startswith("local-inproc-") and task.status() == "completed"
    assert np.allclose(result[0].data.evs, [1.0, 1.0], atol=0.006)
    assert np.all(result[0].data.stds == 0.001)


def test_submit_cancel_in_process_drops_the_result():
    from generators import estimator_payload

    with pytest.warns(UserWarning):
        payload = estimator_payload(_slow_pub())
    task = qrmi_tasks.submit(payload, log_level=None)
    assert task.cancel()
    assert task.status() == "cancelled"
    with pytest.raises(qrmi_tasks.TaskCancelled):
        task.result()


# -- remote: the Direct Access and Qiskit Runtime fakes -----------------------------------------
@pytest.fixture(scope="module")
def direct_access(s3_url):
    from fakes.direct_access import FakeDirectAccess, runner_env

    server = FakeDirectAccess(("fake_heron",), job_seconds=0.2).start()
    yield (
        "fake_heron",
        clean_env(**runner_env("fake_heron", server.url, s3_url), QRMI_CHECK_TARGET="on"),
    )
    server.stop()


@pytest.fixture(scope="module")
def qiskit_runtime():
    from fakes.qiskit_runtime import FakeQiskitRuntime, runner_env

    server = FakeQiskitRuntime(backends=("ibm_fake",), job_seconds=0.2).start()
    yield "ibm_fake", clean_env(**runner_env("ibm_fake", server), QRMI_CHECK_TARGET="on")
    server.stop()


@pytest.mark.parametrize("service", ["direct_access", "qiskit_runtime"])
def test_remote_primitives_on_isa_circuits_for_the_resource_target(service, request):
    resource, env = request.getfixturevalue(service)
    backend = qrmi_tasks.backend(resource, environ=env)
    assert backend.name == resource and backend.num_qubits > 100
    manager = generate_preset_pass_manager(backend=backend, optimization_level=1)
    rotations = manager.run(_rotations())
    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    isa_bell = manager.run(bell)

    sampler = qrmi_tasks.SamplerV2(backend, log_level=None)
    estimator = qrmi_tasks.EstimatorV2(resource, environ=env, log_level=None)
    # both submitted before either is waited for: the runs overlap
    sampled = sampler.run([(rotations, [[np.pi, 0.0], [0.0, np.pi]]), (rotations, [0, 0], 8)])
    estimated = estimator.run(
        [(isa_bell, [SparsePauliOp(p).apply_layout(isa_bell.layout) for p in ("ZZ", "XX")])],
        precision=0.02,
    )
    with pytest.raises(PayloadError, match="not an ISA circuit"):  # the runner's own check
        sampler.run([_rotations().assign_parameters([0, 0])]).result(timeout=60)

    result = sampled.result(timeout=60)
    assert sampled.status() == "DONE" and sampled.job_id() == sampled.task.task_id
    first, second = result[0].data.c, result[1].data.c
    assert (first.shape, first.num_bits, first.num_shots) == ((2,), 2, 4096)
    assert first[0].get_counts() == {"01": 4096} and first[1].get_counts() == {"10": 4096}
    assert (second.shape, second.num_shots, second.get_counts()) == ((), 8, {"00": 8})
    data = estimated.result(timeout=60)[0].data
    assert data.evs.shape == (2,) and np.all(np.abs(data.evs - 1.0) < 0.15)
    assert np.all(data.stds >= 0) and estimated.done()
