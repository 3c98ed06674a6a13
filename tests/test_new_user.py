"""What a new user hit (issue 24, part 4): result plots and labels, qrmi-gen validate's
words, the Python API's log lines, ``--logs`` on ``local``, stdin for ``qrmi-result``,
``local`` inside a Slurm job, and case-mismatched variable names.

In process wherever a command's code path allows it (fixture ``in_process``); hand-written
plain-JSON results stand in for runs where only ``qrmi-result`` is under test.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

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
