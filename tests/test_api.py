"""The Python API: qrmi_tasks.run / submit on the local resource, in-process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import pytest
from helpers import EXAMPLES, ROOT, clean_env
from payloads import write_long_estimator, write_pulser_payload
from qiskit.primitives import PrimitiveResult

import qrmi_tasks
from qrmi_tasks.errors import ConfigError, PayloadError


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("SLURM_", "QRMI_", "SRUN_")):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def long_payload(tmp_path_factory):
    return write_long_estimator(tmp_path_factory.mktemp("long") / "long.json")


def test_import_is_light():
    heavy = "('qiskit', 'pulser', 'matplotlib')"
    code = f"import sys, qrmi_tasks; print(sorted(m for m in {heavy} if m in sys.modules))"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=clean_env(PYTHONPATH=str(ROOT)),
    )
    assert proc.stdout.strip() == "[]", proc.stderr


def test_run_file_both_forms():
    encoded = qrmi_tasks.run(EXAMPLES / "qiskit" / "bell_sampler.json", log_level=None)
    plain = qrmi_tasks.run(
        str(EXAMPLES / "qiskit" / "bell_sampler.json"), support_qiskit=False, log_level=None
    )
    assert (encoded.form, plain.form) == ("qiskit", "plain-json")
    for result in (encoded, plain):
        assert isinstance(result, PrimitiveResult)
        counts = result[0].data.meas.get_counts()
        assert set(counts) == {"00", "11"} and sum(counts.values()) == 1000


def test_run_generated_payloads_and_dict():
    from qiskit import QuantumCircuit
    from qiskit.circuit import Parameter

    from generators import estimator_payload, sampler_payload

    theta = Parameter("t")
    circuit = QuantumCircuit(2)
    circuit.ry(theta, 0)
    circuit.cx(0, 1)
    measured = circuit.measure_all(inplace=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sampler = sampler_payload((measured, [[0.0], [3.14159]]), shots=400)
        estimator = estimator_payload((circuit, ["ZZ", "ZI"], [[0.0]]))
    result = qrmi_tasks.run(sampler, log_level=None)
    meas = result[0].data.meas
    assert meas.shape == (2,) and meas.num_shots == 400
    assert set(meas[0].get_counts()) == {"00"} and set(meas[1].get_counts()) <= {"11", "00"}
    assert meas[1].get_counts().get("11", 0) > 390
    evs = qrmi_tasks.run(estimator.document, log_level=None)[0].data.evs
    assert evs.shape == (2,) and abs(evs[0] - 1) < 0.1 and abs(evs[1] - 1) < 0.1


def test_run_pulser_gives_counter(tmp_path):
    counts = qrmi_tasks.run(write_pulser_payload(tmp_path / "p.json", runs=50), log_level=None)
    assert counts.runs == 50 and sum(counts.values()) == 50
    assert counts.most_common(1)[0][1] >= 1
    html = counts._repr_html_()
    assert "Pulser sequence" in html and "50 runs" in html and "pub" not in html


def test_run_keeps_output_file(tmp_path):
    out = tmp_path / "r.json"
    result = qrmi_tasks.run(EXAMPLES / "qiskit" / "bell_estimator.json", output=out, log_level=None)
    assert json.loads(out.read_text())  # the result file, as the CLI writes it
    assert result.observables == [["ZZ", "XX", "ZI"]]
    assert "ZZ" in result._repr_html_() and "±" in result._repr_html_()


def test_errors_are_qrmi_errors(tmp_path):
    with pytest.raises(ConfigError):
        qrmi_tasks.run(EXAMPLES / "qiskit" / "bell_sampler.json", resource="nowhere")
    with pytest.raises(PayloadError):
        qrmi_tasks.run({"program_id": "sampler"})
    with pytest.raises(PayloadError):
        qrmi_tasks.run(tmp_path / "missing.json")


def test_submit_status_result():
    task = qrmi_tasks.submit(EXAMPLES / "qiskit" / "bell_sampler.json", log_level=None)
    seen = {task.status()}
    result = task.result(timeout=120)
    seen.add(task.status())
    assert "completed" in seen and task.done() and task.task_id.startswith("local-")
    assert result[0].data.meas.num_shots == 1000


def test_submit_cancel(long_payload):
    task = qrmi_tasks.submit(long_payload, log_level=None, in_process=False)  # a worker
    deadline = time.monotonic() + 60
    while task.status() != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert task.status() == "running"
    pid = int(task.task_id.removeprefix("local-"))
    with pytest.raises(TimeoutError):
        task.result(timeout=0.1)
    started = time.monotonic()
    assert task.cancel()
    assert time.monotonic() - started < 5
    assert task.status() == "cancelled"
    with pytest.raises(qrmi_tasks.TaskCancelled):
        task.result()
    with pytest.raises(ProcessLookupError):  # the simulator was stopped
        os.kill(pid, 0)


def test_ctrl_c_cancels_and_restores_handler(long_payload, tmp_path):
    """In the main thread (a script, a notebook kernel): SIGINT cancels the task, raises
    KeyboardInterrupt, and the previous SIGINT handler is back afterwards."""
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import signal, sys
            import qrmi_tasks
            try:
                qrmi_tasks.run({str(long_payload)!r}, in_process=False)
            except KeyboardInterrupt:
                print("interrupted", signal.getsignal(signal.SIGINT) is signal.default_int_handler)
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        env=clean_env(PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if ": running" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    err = "".join(lines) + err
    assert proc.returncode == 0, err
    assert out.strip() == "interrupted True"
    assert "received SIGINT; cancelling task local-" in err
    assert "cancel requested" in err
