"""What a new user hit (issue 24, part 4): result plots and labels, qrmi-gen validate's
words, the Python API's log lines, ``--logs`` on ``local``, stdin for ``qrmi-result``,
``local`` inside a Slurm job, and case-mismatched variable names.

In process wherever a command's code path allows it (fixture ``in_process``); hand-written
plain-JSON results stand in for runs where only ``qrmi-result`` is under test.
"""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path

import pytest
from helpers import EXAMPLES, clean_env, process_state_restored
from payloads import write_long_estimator

from qrmi_tasks.results import load


def _sampler_result(path: Path, counts: dict[str, int], num_bits: int) -> Path:
    """A plain-JSON sampler result (IBM's ``support_qiskit: false`` form) with ``counts``."""
    samples = [hex(int(bits, 2)) for bits, n in counts.items() for _ in range(n)]
    random.Random(7).shuffle(samples)
    document = {
        "results": [{"data": {"meas": {"samples": samples, "num_bits": num_bits}}, "metadata": {}}],
        "metadata": {"version": 2},
    }
    path.write_text(json.dumps(document))
    return path


# -- 1: plots draw true probabilities and a "rest" bar --------------------------------------
def test_plot_bars_are_true_probabilities_with_a_rest_bar(tmp_path):
    # 24 outcomes with distinct counts: the top 16 hold part of the shots only
    counts = {format(i, "05b"): 10 + i for i in range(24)}
    shots = sum(counts.values())
    figure = load(_sampler_result(tmp_path / "r.json", counts, 5)).plot()
    (ax,) = figure.axes
    heights = [bar.get_height() for bar in ax.patches]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    ranked = sorted(counts, key=lambda b: -counts[b])
    assert labels == [*ranked[:16], "rest (8)"]
    expected = [counts[b] / shots for b in ranked[:16]]
    expected.append(sum(counts[b] for b in ranked[16:]) / shots)
    assert len(heights) == len(expected)
    for drawn, true in zip(heights, expected, strict=True):
        assert abs(drawn - true) < 1e-12
    assert abs(sum(heights) - 1.0) < 1e-12


def test_plot_without_left_out_outcomes_has_no_rest_bar(tmp_path):
    counts = {"00": 30, "01": 5, "11": 65}
    figure = load(_sampler_result(tmp_path / "r.json", counts, 2)).plot()
    (ax,) = figure.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["00", "01", "11"]
    assert [round(bar.get_height(), 6) for bar in ax.patches] == [0.30, 0.05, 0.65]


# -- 2: sparse observable labels; matplotlib's warnings are debug lines ---------------------
_QUBITS = 133


def _estimator_files(tmp_path: Path) -> tuple[Path, Path]:
    """A 133-qubit estimator payload (four observables) and a plain-JSON result for it."""
    n = _QUBITS
    observables = ["Z" * n, "I" * (n - 2) + "ZZ", "X" + "I" * (n - 1)]
    observables.append({"I" * (n - 1) + "Z": 0.5, "Y" + "I" * (n - 1): 1})
    qasm = f'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[{n}] q;\nh q[0];\n'
    payload = {"program_id": "estimator", "parameters": {"pubs": [[qasm, observables]]}}
    evs = [0.25 * i for i in range(len(observables))]
    result = {"results": [{"data": {"evs": evs, "stds": [0.01] * 4}, "metadata": {}}]}
    (tmp_path / "payload.json").write_text(json.dumps(payload))
    (tmp_path / "result.json").write_text(json.dumps({**result, "metadata": {}}))
    return tmp_path / "payload.json", tmp_path / "result.json"


def test_pauli_labels_are_sparse_and_long_ones_shortened():
    from qrmi_tasks.summary import MAX_LABEL, display_label, pauli_label

    assert pauli_label("ZZ") == "Z0·Z1"
    assert pauli_label("ZI") == "Z1"  # qubit 0 is the rightmost letter
    assert pauli_label("III") == "I" and pauli_label("-iXY") == "-iY0·X1"
    long = display_label("Z" * _QUBITS)
    assert long.startswith("Z0·Z1·") and long.endswith("·…·Z132") and len(long) <= MAX_LABEL + 2
    assert display_label("0.5·" + "I" * 132 + "Z + XI") == "0.5·Z0 + X1"


def test_summary_plot_and_html_show_sparse_labels(in_process, tmp_path):
    payload, result = _estimator_files(tmp_path)
    text = in_process.result("summary", "--payload", payload, result).stdout
    rows = [line.split() for line in text.splitlines() if line.startswith("    [")]
    assert [row[1] for row in rows[:3]] == [
        "Z0·Z1·Z2·Z3·Z4·Z5·Z6·Z7·Z8·Z9·Z10·…·Z132",
        "Z0·Z1",
        "X132",
    ]
    assert rows[3][1:4] == ["0.5·Z0", "+", "Y132"]
    assert "IIII" not in text
    figure = load(result, payload=payload).plot()
    ticks = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert ticks[1:3] == ["Z0·Z1 [1]", "X132 [2]"] and "…" in ticks[0]
    html = load(result, payload=payload)._repr_html_()
    # shown sparse; the whole label on hover
    assert f"<code title='{'I' * (_QUBITS - 2)}ZZ'>Z0·Z1</code>" in html
    # the JSON keeps the payload's Pauli strings whole (machine-readable)
    data = json.loads(in_process.result("summary", "--json", "--payload", payload, result).stdout)
    assert data["pubs"][0]["observables"][0] == "Z" * _QUBITS


def test_plot_cli_prints_no_matplotlib_warning(in_process, tmp_path):
    payload, result = _estimator_files(tmp_path)
    image = tmp_path / "evs.png"
    # pytest records warnings instead of printing them: as errors, a leak fails the run
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        proc = in_process.result("plot", "--payload", payload, result, "-o", image)
    assert proc.returncode == 0 and image.stat().st_size > 5000
    assert proc.stderr == f"wrote {image} (png)\n"


def test_matplotlib_warnings_become_debug_lines(caplog, capsys):
    import logging

    from qrmi_tasks.plots import matplotlib_quiet

    with caplog.at_level(logging.DEBUG, logger="qrmi_tasks"), matplotlib_quiet():
        warnings.warn("Tight layout not applied.", UserWarning, stacklevel=1)
        logging.getLogger("matplotlib.font_manager").warning("findfont: no Glyph")
    assert capsys.readouterr().err == ""
    debug = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "qrmi_tasks.plots"]
    assert debug == [
        (logging.DEBUG, "matplotlib: findfont: no Glyph"),
        (logging.DEBUG, "matplotlib: UserWarning: Tight layout not applied."),
    ]
    assert logging.getLogger("matplotlib").propagate  # put back


# -- 3, 4: qrmi-gen validate says what it checked ---------------------------------------------
def test_validate_help_says_resource_uses_the_network(in_process):
    text = " ".join(in_process.gen("validate", "--help").stdout.split())
    resource = text[text.index("--resource NAME") : text.index("--config")]
    assert "No network" not in resource
    assert "fetches its target over the network" in resource


def test_validate_with_a_type_says_the_circuits_were_not_checked(in_process):
    sampler = EXAMPLES / "qiskit" / "bell_sampler.json"
    for rtype in ("direct-access", "qiskit-runtime-service"):
        proc = in_process.gen("validate", sampler, "--type", rtype)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip().endswith(
            "; structure checked; circuits not checked against a backend: use --resource NAME"
        )
    # types without a backend target have nothing more to check: a plain ok
    proc = in_process.gen("validate", sampler, "--type", "local")
    assert proc.stdout == f"ok: {sampler}: sampler with 1 pub(s)\n"


# -- 5: Task.cancel() is named as such, not as a signal -----------------------------------
def test_task_cancel_logs_a_cancel_from_python(tmp_path, capsys):
    import time

    import qrmi_tasks

    payload = write_long_estimator(tmp_path / "long.json")
    with process_state_restored():
        # a worker: in process, the minutes-long simulation would run on after the cancel
        task = qrmi_tasks.submit(payload, environ=clean_env(), log_level="INFO", in_process=False)
        deadline = time.monotonic() + 60
        while task.status() != "running" and time.monotonic() < deadline:
            time.sleep(0.02)  # the status has no event to wait on
        assert task.cancel()
    err = capsys.readouterr().err
    assert f"received a cancel from Python (Task.cancel); cancelling task {task.task_id}" in err
    assert "SIGINT" not in err
    with pytest.raises(qrmi_tasks.TaskCancelled, match=r"\(a cancel from Python \(Task.cancel\)\)"):
        task.result()


# -- 6, 7: log_level=None leaves logging to the application; no scratch path logged ------
def test_log_level_none_after_a_level_prints_nothing(capsys):
    import logging

    import qrmi_tasks

    bell = EXAMPLES / "qiskit" / "bell_sampler.json"
    ours = logging.getLogger("qrmi_tasks")
    with process_state_restored():
        before = (ours.level, ours.propagate, list(ours.handlers))
        qrmi_tasks.run(bell, environ=clean_env(), log_level="INFO")
        err = capsys.readouterr().err
        assert "qrmi-tasks INFO" in err
        # 7: the API's scratch file is not the user's business (and is gone right after)
        assert ": result received\n" in err and "result written" not in err
        qrmi_tasks.run(bell, environ=clean_env(), log_level=None)
        assert capsys.readouterr().err == ""
        assert (ours.level, ours.propagate, list(ours.handlers)) == before


def test_api_output_named_by_the_user_is_logged(tmp_path, capsys):
    import qrmi_tasks

    out = tmp_path / "kept.json"
    with process_state_restored():
        qrmi_tasks.run(EXAMPLES / "qiskit" / "bell_sampler.json", environ=clean_env(), output=out)
    assert f": result written to {out}\n" in capsys.readouterr().err


# -- 8: --logs on local saves the worker's own log ------------------------------------------
def test_logs_on_local_hold_the_workers_log(in_process, tmp_path):
    logs, out = tmp_path / "task.log", tmp_path / "result.json"
    proc = in_process.run(
        "local", EXAMPLES / "qiskit" / "bell_sampler.json", "-o", out, "--logs", logs
    )
    assert proc.returncode == 0, proc.stderr
    assert "has no task logs" not in proc.stderr and f"logs written to {logs}" in proc.stderr
    first, last = logs.read_text().splitlines()[0], logs.read_text().splitlines()[-1]
    assert "local simulator: sampler with 1 pub(s) on engine aer" in first
    assert " done in " in last and "bytes of result" in last
    # a payload the simulator fails on: the log says why, beside the run's error
    document = json.loads((EXAMPLES / "qiskit" / "bell_sampler.json").read_text())
    document["parameters"]["pubs"][0][0] = (
        'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[1] q;\nfoo q[0];\n'
    )
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    proc = in_process.run("local", bad, "-o", out, "--logs", logs)
    assert proc.returncode != 0
    assert " failed after " in logs.read_text().splitlines()[-1]


# -- 9: "-" is standard input for qrmi-result --------------------------------------------------
def _stdin(monkeypatch, data: bytes) -> None:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_result_commands_read_standard_input(in_process, tmp_path, monkeypatch):
    result = _sampler_result(tmp_path / "r.json", {"00": 3, "11": 5}, 2)
    expected = in_process.result("summary", result).stdout
    _stdin(monkeypatch, result.read_bytes())
    proc = in_process.result("summary", "-")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == expected
    _stdin(monkeypatch, result.read_bytes())
    proc = in_process.result("plot", "-", "-o", tmp_path / "r.png")
    assert proc.returncode == 0 and (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    _stdin(monkeypatch, b"not json")
    proc = in_process.result("summary", "-")
    assert proc.returncode == 2 and proc.stderr.startswith("error: standard input is not a runner")


def test_standard_input_is_read_with_a_bound(monkeypatch):
    from qrmi_tasks.errors import InputError
    from qrmi_tasks.readers import read_stdin

    _stdin(monkeypatch, b"x" * 101)
    with pytest.raises(InputError, match="larger than the 100 bytes limit"):
        read_stdin("result", limit=100)


# -- 10: local is there inside a job given QPUs ---------------------------------------------
def test_local_runs_in_a_job_with_qpu_resources(in_process, tmp_path):
    in_process.use_env(
        clean_env(
            SLURM_JOB_ID="77",
            SLURM_JOB_QPU_RESOURCES="ibm_x,pasqal_y",
            SLURM_JOB_QPU_TYPES="direct-access,pasqal-cloud",
        )
    )
    out = tmp_path / "result.json"
    proc = in_process.run("local", EXAMPLES / "qiskit" / "bell_sampler.json", "-o", out)
    assert proc.returncode == 0, proc.stderr
    counts = load(out)[0].data.meas.get_counts()
    assert set(counts) <= {"00", "11"} and sum(counts.values()) == 1000


def test_a_configured_resource_named_local_wins(tmp_path):
    from qrmi_tasks.providers import resolve_resource

    env = {"SLURM_JOB_QPU_RESOURCES": "local,ibm_x", "SLURM_JOB_QPU_TYPES": "direct-access,local"}
    assert resolve_resource("local", env).type.name == "direct-access"
    config = tmp_path / "qrmi.json"
    config.write_text(json.dumps({"resources": [{"name": "local", "type": "pasqal-cloud"}]}))
    assert resolve_resource("local", {}, config).type.name == "pasqal-cloud"
    # and without one: the embedded simulator, whatever else is listed
    env = {"SLURM_JOB_QPU_RESOURCES": "ibm_x", "SLURM_JOB_QPU_TYPES": "direct-access"}
    assert resolve_resource("local", env).type.name == "local"


# -- 11: a variable of this resource in the wrong case gets a "did you mean" -----------------
def test_case_mismatched_variables_are_named_with_their_right_spelling(in_process):
    from qrmi_tasks.config import Resource
    from qrmi_tasks.providers import compat
    from qrmi_tasks.providers.registry import resource_type

    environ = {
        "ibm_x_qrmi_ibm_da_ENDPOINT": "https://da.example",
        "IBM_X_QRMI_IBM_QS_IAM_APIKEY": "k",
        "ibm_x_QRMI_IBM_QS_SERVICE_crn": "c",
        "ibm_x_QRMI_IBM_QS_ENDPOINT": "https://da.example",  # right: no message
    }
    file_env = {"qrmi_job_timeout_seconds": "60"}
    resource = Resource("ibm_x", resource_type("direct-access"), file_env, environ)
    messages = compat.unknown_variable_warnings(resource)
    expected = {
        "ibm_x_qrmi_ibm_da_ENDPOINT": "ibm_x_QRMI_IBM_DA_ENDPOINT",
        "IBM_X_QRMI_IBM_QS_IAM_APIKEY": "ibm_x_QRMI_IBM_QS_IAM_APIKEY",
        "ibm_x_QRMI_IBM_QS_SERVICE_crn": "ibm_x_QRMI_IBM_QS_SERVICE_CRN",
        "qrmi_job_timeout_seconds (in the config file)": "QRMI_JOB_TIMEOUT_SECONDS",
    }
    for written, right in expected.items():
        (message,) = [m for m in messages if m.startswith(f"{written} is not read")]
        assert "case-sensitive" in message and message.endswith(f"did you mean {right}?")
    assert len(messages) == len(expected)


def test_a_differently_cased_resource_keeps_its_variables():
    from qrmi_tasks.config import Resource
    from qrmi_tasks.providers import compat
    from qrmi_tasks.providers.registry import resource_type

    environ = {
        "SLURM_JOB_QPU_RESOURCES": "ibm_x,IBM_X",
        "SLURM_JOB_QPU_TYPES": "direct-access,direct-access",
        "IBM_X_QRMI_IBM_QS_ENDPOINT": "https://other.example",
    }
    resource = Resource("ibm_x", resource_type("direct-access"), {}, environ)
    assert compat.unknown_variable_warnings(resource) == []
