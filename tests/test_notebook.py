"""examples/notebook.ipynb, executed with nbclient in a real kernel (outputs not committed)."""

from __future__ import annotations

import base64

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


def test_notebook_runs_and_plots_inline(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    env = clean_env(PYTHONPATH=str(ROOT))
    env.pop("MPLBACKEND", None)  # the kernel's own inline backend, as for a user
    # kernel.json's "python" is run as this interpreter (jupyter_client's rule)
    client.execute(env=env)
    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    errors = [out for cell in cells for out in cell.outputs if out.output_type == "error"]
    assert not errors, errors
    before, payload, run, counts, plot, after = cells
    assert _images(before), "the user's own plot is shown inline"
    assert "Sampler payload" in payload.outputs[-1]["data"]["text/html"]
    assert "a PrimitiveResult: True" in _text(run)
    assert "register <code>meas</code>: 1000 shots" in run.outputs[-1]["data"]["text/html"]
    shown = eval(counts.outputs[-1]["data"]["text/plain"])  # a dict literal of counts
    assert set(shown) == {"00", "11"} and sum(shown.values()) == 1000
    assert len(_images(plot)) == 1, "the histogram is shown inline, once"
    assert _images(after), "plots made after qrmi_tasks plotting still show inline"
