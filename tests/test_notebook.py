"""examples/notebook.ipynb, executed with nbclient in a real kernel (outputs not committed)."""

from __future__ import annotations

import base64
import re

import nbformat
from helpers import EXAMPLES, ROOT, clean_env
from nbclient import NotebookClient

NOTEBOOK = EXAMPLES / "notebook.ipynb"


def _images(cell) -> list[bytes]:
    return [
        base64.b64decode(out["data"]["image/png"])
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {})
    ]


def _text(cell) -> str:
    return "".join(
        out.get("text", "") + out.get("data", {}).get("text/plain", "")
        for out in cell.get("outputs", [])
    )


def test_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def _execute(notebook, tmp_path, env) -> list:
    """Run ``notebook`` in a real kernel with ``env``; its code cells, with outputs."""
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    env = {**env, "PYTHONPATH": str(ROOT)}
    env.pop("MPLBACKEND", None)  # the kernel's own inline backend, as for a user
    # kernel.json's "python" is run as this interpreter (jupyter_client's rule)
    client.execute(env=env)
    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    errors = [out for cell in cells for out in cell.outputs if out.output_type == "error"]
    assert not errors, errors
    return cells


def _counts(cell) -> dict:
    return eval(cell.outputs[-1]["data"]["text/plain"])  # a dict literal of counts


def test_notebook_runs_and_plots_inline(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    cells = _execute(notebook, tmp_path, clean_env())
    before, payload, run, counts, plot, target, sample, sweep, pulser, after = cells
    assert _images(before), "the user's own plot is shown inline"
    assert "Sampler payload" in payload.outputs[-1]["data"]["text/html"]
    assert "a PrimitiveResult: True" in _text(run)
    assert "register <code>meas</code>: 1000 shots" in run.outputs[-1]["data"]["text/html"]
    shown = _counts(counts)
    assert set(shown) == {"00", "11"} and sum(shown.values()) == 1000
    assert len(_images(plot)) == 1, "the histogram is shown inline, once"
    # the native path on local: Aer's target, in process
    assert _text(target).startswith("aer_simulator") or "qubits;" in _text(target)
    native = _counts(sample)
    assert set(native) == {"00", "11"} and sum(native.values()) == 1000
    assert "DONE" in _text(sample)
    assert "(2, 9)" in _text(sweep) and _images(sweep)
    # Pulser: two blockaded atoms, 200 runs emulated in the kernel
    bitstrings = _counts(pulser)
    assert sum(bitstrings.values()) == 200 and set(bitstrings) <= {"00", "01", "10", "11"}
    assert "AnalogDevice" in _text(pulser)
    assert _images(after), "plots made after qrmi_tasks plotting still show inline"


def test_the_native_cells_run_unchanged_on_an_ibm_resource(tmp_path, s3_url):
    """The same native cells with RESOURCE naming a Direct Access QPU (the fake): the
    backend's target comes from its documents, the ISA circuits pass the runner's check and
    the jobs are the runner's tasks."""
    from fakes.direct_access import FakeDirectAccess, runner_env

    fake = FakeDirectAccess(("fake_heron",), job_seconds=0.2).start()
    try:
        env = clean_env(
            **runner_env("fake_heron", fake.url, s3_url),
            QRMI_CHECK_TARGET="on",
            QRMI_NOTEBOOK_RESOURCE="fake_heron",
        )
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        notebook.cells = [
            cell
            for cell in notebook.cells
            if {"setup", "native"} & set(cell.metadata.get("tags", []))
        ]
        _, _, target, sample, sweep = _execute(notebook, tmp_path, env)
    finally:
        fake.stop()
    shape = re.match(r"fake_heron (\d+) qubits; (\d+) qubits in the ISA", _text(target))
    assert shape and int(shape[1]) > 100, _text(target)  # the QPU's target, not Aer's
    shown = _counts(sample)
    assert sum(shown.values()) == 1000 and shown.get("00", 0) + shown.get("11", 0) > 900
    assert "DONE" in _text(sample)
    assert "(2, 9)" in _text(sweep)
    created = fake.calls("POST", "/v1/jobs")
    assert len(created) == 2, "one task per primitive run"
