"""qrmi-result: summaries and plots of real runner outputs.

The runner and ``qrmi-result`` run in this process (the ``in_process`` fixture and its
module-scoped equivalent in ``outputs``); the ``local`` resource's worker stays a
process. What only a ``qrmi-result`` process shows (its exit, a closed stdout, a FIFO)
is in test_front_door.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import EXAMPLES, InProcessCli, StreamCapture, clean_env, process_state_restored
from payloads import write_pulser_payload
from qiskit.primitives import PrimitiveResult
from qiskit.primitives.containers import BitArray

from qrmi_tasks.results import format_text, load, summarize

# One xdist worker runs the whole module: its outputs (four local runs, ~10 s) are made
# once, not once per worker that gets some of its tests.
pytestmark = pytest.mark.xdist_group("results")


def test_an_xdist_group_runs_on_one_worker(request):
    """``--dist loadgroup`` keeps a group on one worker by renaming its tests
    (``...@results``); pytest 9.2 broke that without a word (pytest-xdist#1386), and the
    Slurm tests then ran at the same time on one cluster."""
    if request.config.getvalue("loadgroup"):
        assert request.node.nodeid.endswith("@results"), request.node.nodeid


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Outputs of the local resource for sampler, estimator, plain sampler and Pulser.

    The runner's command runs in this process, as the ``in_process`` fixture runs it (a
    module-scoped fixture cannot use that function-scoped one, nor ``capsys``): the same
    clean environment, and the same process state put back afterwards.
    """
    with pytest.MonkeyPatch.context() as monkeypatch, process_state_restored():
        runner = InProcessCli(StreamCapture(monkeypatch), monkeypatch)
        runner.use_env(clean_env())
        return _run_outputs(runner, tmp_path_factory.mktemp("results"))


def _run_outputs(runner: InProcessCli, tmp: Path) -> dict[str, Path]:
    plain = json.loads((EXAMPLES / "qiskit" / "bell_sampler.json").read_text())
    plain["parameters"]["support_qiskit"] = False
    (tmp / "plain_payload.json").write_text(json.dumps(plain))
    payloads = {
        "sampler": EXAMPLES / "qiskit" / "bell_sampler.json",
        "estimator": EXAMPLES / "qiskit" / "bell_estimator.json",
        "plain": tmp / "plain_payload.json",
        "pulser": write_pulser_payload(tmp / "pulser_payload.json", runs=120),
    }
    files = {}
    for name, payload in payloads.items():
        out = tmp / f"{name}_result.json"
        proc = runner.run("local", str(payload), "-o", str(out))
        assert proc.returncode == 0, proc.stderr
        files[name] = out
    return files


def test_sampler_summary(in_process, outputs):
    proc = in_process.result("summary", str(outputs["sampler"]))
    assert proc.returncode == 0, proc.stderr
    assert "sampler result" in proc.stdout and "register meas: 1000 shots" in proc.stdout
    data = json.loads(in_process.result("summary", "--json", str(outputs["sampler"])).stdout)
    top = data["pubs"][0]["registers"][0]["top"]
    assert {t["bitstring"] for t in top} == {"00", "11"}
    assert sum(t["count"] for t in top) == 1000
    assert abs(sum(t["probability"] for t in top) - 1) < 1e-9


def test_plain_sampler_summary_matches_encoded_form(outputs):
    summary = summarize(outputs["plain"])
    assert summary.form == "plain-json" and summary.kind == "sampler"
    register = summary.pubs[0].registers[0]
    assert register.shots == 1000 and set(register.counts) == {"00", "11"}


def test_estimator_summary(in_process, outputs):
    result = load(outputs["estimator"])
    assert isinstance(result, PrimitiveResult) and result[0].data.evs.shape == (3,)
    data = json.loads(in_process.result("summary", "--json", str(outputs["estimator"])).stdout)
    evs = data["pubs"][0]["evs"]
    assert data["kind"] == "estimator" and len(evs) == 3
    assert abs(evs[0] - 1) < 0.1 and abs(evs[2]) < 0.1  # ZZ, ..., ZI on a Bell state
    text = in_process.result("summary", str(outputs["estimator"])).stdout
    assert "expectation values (shape [3])" in text and "±" in text


def test_pulser_summary_uses_pulser_words(in_process, outputs):
    text = in_process.result("summary", str(outputs["pulser"])).stdout
    assert text.startswith("Pulser sequence result") and "120 runs" in text
    assert "pub" not in text and "register" not in text


def test_pulser_summary(in_process, outputs):
    data = json.loads(
        in_process.result("summary", "--json", "-k", "3", str(outputs["pulser"])).stdout
    )
    register = data["pubs"][0]["registers"][0]
    assert data["kind"] == "pulser" and register["shots"] == 120
    assert len(register["top"]) <= 3
    counts = json.loads(outputs["pulser"].read_text())["counter"]
    best = max(counts.values())
    assert register["top"][0]["count"] == best


def test_hand_written_plain_json_result(in_process, tmp_path):
    path = tmp_path / "r.json"
    path.write_text(
        json.dumps(
            {
                "results": [
                    {"data": {"meas": {"samples": ["0x3", "0x0"], "num_bits": 2}}, "metadata": {}}
                ],
                "metadata": {"version": 2},
            }
        )
    )
    register = summarize(path).pubs[0].registers[0]
    assert register.counts == {"11": 1, "00": 1}
    assert "11" in in_process.result("summary", str(path)).stdout


@pytest.mark.parametrize("name", ["sampler", "estimator", "pulser"])
def test_plot_writes_png(in_process, outputs, tmp_path, name):
    png = tmp_path / f"{name}.png"
    proc = in_process.result("plot", str(outputs[name]), "-o", str(png))
    assert proc.returncode == 0, proc.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


@pytest.mark.parametrize(
    "content,fragment",
    [
        (None, "does not exist"),
        ("{", "invalid JSON"),
        ("[1]", "not a runner result"),
        ('{"a": 1}', "not a runner result"),
    ],
)
def test_bad_result_file(in_process, tmp_path, content, fragment):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    proc = in_process.result("summary", str(path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]


def test_plain_form_loads_as_primitive_result(outputs):
    """Both forms of one sampler result decode to the same kind of Qiskit object."""
    encoded, plain = load(outputs["sampler"]), load(outputs["plain"])
    assert isinstance(plain, PrimitiveResult) and plain.form == "plain-json"
    for result in (encoded, plain):
        meas = result[0].data.meas
        assert isinstance(meas, BitArray) and meas.num_bits == 2 and meas.num_shots == 1000
    assert type(plain[0]).__name__ == "SamplerPubResult"


def test_plain_sweep_and_estimator_rebuilt(tmp_path):
    """IBM's plain JSON (support_qiskit: false): samples nested by the pub's shape become
    a BitArray of that shape; evs/stds become a PubResult's arrays."""
    sampler = {
        "results": [
            {
                "data": {
                    "c": {"samples": [["0x1", "0x1", "0x0"], ["0x2", "0x3", "0x3"]], "num_bits": 2}
                },
                "metadata": {},
            }
        ],
        "metadata": {"version": 2},
    }
    (tmp_path / "s.json").write_text(json.dumps(sampler))
    result = load(tmp_path / "s.json")
    bits = result[0].data.c
    assert bits.shape == (2,) and bits.num_shots == 3
    assert bits[0].get_counts() == {"01": 2, "00": 1} and bits[1].get_counts() == {"10": 1, "11": 2}
    summary = summarize(result)
    assert [(r.binding, r.shots) for r in summary.pubs[0].registers] == [((0,), 3), ((1,), 3)]
    text = format_text(summary)
    assert "register c, binding [1]: 3 shots" in text and "6 shots" not in text
    estimator = {
        "results": [{"data": {"evs": [0.5, -0.25], "stds": [0.01, 0.02]}, "metadata": {}}],
        "metadata": {},
    }
    (tmp_path / "e.json").write_text(json.dumps(estimator))
    data = load(tmp_path / "e.json")[0].data
    assert data.evs.tolist() == [0.5, -0.25] and data.stds.tolist() == [0.01, 0.02]


def test_plain_results_match_ibm_schemas(outputs):
    import jsonschema
    from helpers import ibm_schema

    jsonschema.validate(json.loads(outputs["plain"].read_text()), ibm_schema("sampler_result_v2"))


def test_result_among_log_lines(in_process, outputs, tmp_path):
    """A slurm-N.out: log lines, the result (ending with a newline), more log lines; and the
    old glued form, where the next log line followed the JSON on its line."""
    result = outputs["sampler"].read_text().rstrip("\n")
    log = "2025-01-01T00:00:00.000Z qrmi-task-runner INFO task local-1: completed\n"
    for name, text in {
        "slurm-1.out": log + result + "\n" + log,
        "slurm-2.out": log + result + log,
    }.items():
        (tmp_path / name).write_text(text)
        proc = in_process.result("summary", str(tmp_path / name))
        assert proc.returncode == 0, proc.stderr
        assert "register meas: 1000 shots" in proc.stdout


def test_stdout_result_ends_with_newline(in_process):
    proc = in_process.run("local", str(EXAMPLES / "qiskit" / "bell_sampler.json"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.endswith("}\n")
    json.loads(proc.stdout)


def test_version_and_top_default(in_process):
    from qrmi_tasks import __version__
    from qrmi_tasks.results import DEFAULT_TOP

    assert in_process.result("--version").stdout.strip() == f"qrmi-result {__version__}"
    assert f"default: {DEFAULT_TOP}" in in_process.result("summary", "--help").stdout
    readme = (EXAMPLES.parent / "README.md").read_text()
    assert f"(`--top K`, default {DEFAULT_TOP})" in readme


def test_plot_format_from_extension(in_process, outputs, tmp_path):
    pdf = tmp_path / "counts.pdf"
    proc = in_process.result("plot", str(outputs["sampler"]), "-o", str(pdf))
    assert proc.returncode == 0, proc.stderr
    assert pdf.read_bytes()[:5] == b"%PDF-"
    proc = in_process.result("plot", str(outputs["sampler"]), "-o", str(tmp_path / "x.nope"))
    assert proc.returncode == 2 and "cannot tell the image format" in proc.stderr
    assert not (tmp_path / "x.nope").exists()


def test_plots_are_figures_per_binding_and_label_observables(in_process, outputs, tmp_path):
    from matplotlib.figure import Figure

    sweep = {
        "results": [
            {"data": {"meas": {"samples": [["0x1"], ["0x0"]], "num_bits": 1}}, "metadata": {}}
        ],
        "metadata": {},
    }
    (tmp_path / "sweep.json").write_text(json.dumps(sweep))
    figure = load(tmp_path / "sweep.json").plot()
    assert isinstance(figure, Figure) and len(figure.axes) == 2
    assert [ax.get_title() for ax in figure.axes] == [
        "pub 0, register meas, binding [0]: 1 shots",
        "pub 0, register meas, binding [1]: 1 shots",
    ]
    payload = EXAMPLES / "qiskit" / "bell_estimator.json"
    figure = load(outputs["estimator"], payload=payload).plot()
    labels = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert labels == ["Z0·Z1 [0]", "X0·X1 [1]", "Z1 [2]"]
    text = in_process.result("summary", "--payload", str(payload), str(outputs["estimator"])).stdout
    assert "[0]  Z0·Z1" in text


def test_html_views(outputs):
    html = load(outputs["sampler"])._repr_html_()
    assert "register <code>meas</code>: 1000 shots" in html and "<code>00</code>" in html
    html = load(outputs["estimator"])._repr_html_()
    assert "expectation value ± std" in html and "±" in html
