"""qrmi-result on the results that are counts per circuit: IQM Server's document and
Felis's ``bits,count`` lines (their forms: tests/conformance/iqm/artifacts.json and
tests/conformance/alice_bob/output.json, recorded from the SDKs and qrmi). Real runs
through the fakes are summarized in test_iqm_server.py and test_alice_bob_felis.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import ROOT

from qrmi_tasks.circuit_counts import CircuitResults
from qrmi_tasks.results import load

CONFORMANCE = ROOT / "tests" / "conformance"
IQM_EXAMPLE = json.loads((CONFORMANCE / "iqm" / "artifacts.json").read_text())["example"]
FELIS_EXAMPLE = json.loads((CONFORMANCE / "alice_bob" / "output.json").read_text())["example"]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_iqm_document_of_two_circuits(in_process, tmp_path):
    second = {"measurement_keys": ["a", "b"], "counts": {"011": 3, "100": 1}}
    document = {**IQM_EXAMPLE, "measurement_counts": [*IQM_EXAMPLE["measurement_counts"], second]}
    path = _write(tmp_path, "iqm.json", json.dumps(document, indent=2, sort_keys=True))
    done = in_process.result("summary", path)
    assert done.code == 0, done.stderr
    assert done.stdout.splitlines() == [
        "counts result (iqm form), 2 circuits",
        "circuit 0:",
        "  register m: 2 shots, 2 distinct outcome(s)",
        "    00         1    0.5000",
        "    11         1    0.5000",
        "circuit 1:",
        "  register a+b: 4 shots, 2 distinct outcome(s)",
        "    011         3    0.7500",
        "    100         1    0.2500",
    ]
    result = load(path)
    assert isinstance(result, CircuitResults) and result.form == "iqm"
    assert [dict(c) for c in result] == [{"00": 1, "11": 1}, {"011": 3, "100": 1}]
    assert "circuit 1" in result._repr_html_()


def test_iqm_counts_made_from_the_shots_when_measurement_counts_is_null(tmp_path):
    # two keys: each shot's bits concatenated in the keys' order, as IQM's counts are
    shots = {"m1": [[0], [1], [1]], "m2": [[1, 0], [1, 1], [1, 1]]}
    path = _write(
        tmp_path, "iqm.json", json.dumps({"measurement_counts": None, "measurements": [shots]})
    )
    (circuit,) = load(path)
    assert dict(circuit) == {"010": 1, "111": 2} and circuit.register == "m1+m2"


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"measurement_counts": [{"counts": {"00": 1}}]}, "'measurement_keys' is not a list"),
        (
            {"measurement_counts": [{"measurement_keys": ["m"], "counts": {"0x": 1}}]},
            "'0x': 1 is not a bitstring and a count",
        ),
        (
            {"measurement_counts": [{"measurement_keys": ["m"], "counts": {"01": -2}}]},
            "is not a bitstring and a count",
        ),
        ({"measurements": [{"m": [[0, 2]]}]}, "measurements[0].m is not a list of shots"),
        (
            {"measurements": [{"a": [[0]], "b": [[1], [0]]}]},
            "the measurement keys hold different numbers of shots",
        ),
    ],
    ids=["no-keys", "not-bits", "negative", "bit-2", "ragged"],
)
def test_bad_iqm_documents_are_one_line_input_errors(in_process, tmp_path, document, fragment):
    path = _write(tmp_path, "bad.json", json.dumps(document))
    done = in_process.result("summary", path)
    assert done.code == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: ") and fragment in line and str(path) in line


def test_felis_output_alone_and_among_log_lines(in_process, tmp_path):
    alone = _write(tmp_path, "out.csv", FELIS_EXAMPLE)
    slurm_out = _write(
        tmp_path,
        "slurm-7.out",
        "2026-12-05 18:00:00 qrmi-task-runner INFO: job 42: completed\n"
        + FELIS_EXAMPLE
        + "2026-12-05 18:00:01 qrmi-task-runner INFO: done\n",
    )
    for path in (alone, slurm_out):
        done = in_process.result("summary", path, "--json", "--top", 2)
        assert done.code == 0, done.stderr
        summary = json.loads(done.stdout)
        assert (summary["kind"], summary["form"]) == ("counts", "felis")
        (circuit,) = summary["pubs"]
        (register,) = circuit["registers"]
        assert (register["shots"], register["distinct"]) == (1000, 4)
        assert [t["bitstring"] for t in register["top"]] == ["00", "10"]


@pytest.mark.parametrize(
    "text",
    ["11,12\n10,abc\n", "11,12\n10,abc\n01,5\n", "log line\n11,1x\n", "11;12\n"],
    ids=["damaged-last", "damaged-middle", "damaged-only", "semicolon"],
)
def test_damaged_felis_output_is_never_read_in_part(in_process, tmp_path, text):
    path = _write(tmp_path, "out.txt", text)
    done = in_process.result("summary", path)
    assert done.code == 2, done.stdout
    (line,) = done.stderr.splitlines()
    assert "is not a runner result" in line


def test_plot_of_iqm_circuits_names_them(in_process, tmp_path):
    path = _write(tmp_path, "iqm.json", json.dumps(IQM_EXAMPLE))
    image = tmp_path / "hist.svg"
    done = in_process.result("plot", path, "-o", image)
    assert done.code == 0, done.stderr
    assert "circuit 0, register m: 2 shots" in image.read_text()
