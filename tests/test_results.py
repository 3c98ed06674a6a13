"""qrmi-result: summaries and plots of real runner outputs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import EXAMPLES, clean_env, run_runner
from payloads import write_pulser_payload

from qrmi_tasks.results import load, summarize


def qrmi_result(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from qrmi_tasks.results_cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
    )


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Outputs of the local resource for sampler, estimator, plain sampler and Pulser."""
    tmp = tmp_path_factory.mktemp("results")
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
        proc = run_runner("local", str(payload), "-o", str(out))
        assert proc.returncode == 0, proc.stderr
        files[name] = out
    return files


def test_sampler_summary(outputs):
    proc = qrmi_result("summary", str(outputs["sampler"]))
    assert proc.returncode == 0, proc.stderr
    assert "sampler result" in proc.stdout and "register meas: 1000 shots" in proc.stdout
    data = json.loads(qrmi_result("summary", "--json", str(outputs["sampler"])).stdout)
    top = data["pubs"][0]["registers"][0]["top"]
    assert {t["bitstring"] for t in top} == {"00", "11"}
    assert sum(t["count"] for t in top) == 1000
    assert abs(sum(t["probability"] for t in top) - 1) < 1e-9


def test_plain_sampler_summary_matches_encoded_form(outputs):
    summary = summarize(outputs["plain"])
    assert summary.form == "plain-json" and summary.kind == "sampler"
    register = summary.pubs[0].registers[0]
    assert register.shots == 1000 and set(register.counts) == {"00", "11"}


def test_estimator_summary(outputs):
    result = load(outputs["estimator"])
    assert type(result).__name__ == "PrimitiveResult"
    data = json.loads(qrmi_result("summary", "--json", str(outputs["estimator"])).stdout)
    evs = data["pubs"][0]["evs"]
    assert data["kind"] == "estimator" and len(evs) == 3
    assert abs(evs[0] - 1) < 0.1 and abs(evs[2]) < 0.1  # ZZ, ..., ZI on a Bell state
    text = qrmi_result("summary", str(outputs["estimator"])).stdout
    assert "expectation values (shape [3])" in text and "±" in text


def test_pulser_summary(outputs):
    data = json.loads(qrmi_result("summary", "--json", "-k", "3", str(outputs["pulser"])).stdout)
    register = data["pubs"][0]["registers"][0]
    assert data["kind"] == "pulser" and register["shots"] == 120
    assert len(register["top"]) <= 3
    counts = json.loads(outputs["pulser"].read_text())["counter"]
    best = max(counts.values())
    assert register["top"][0]["count"] == best


def test_hand_written_plain_json_result(tmp_path):
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
    assert "11" in qrmi_result("summary", str(path)).stdout


@pytest.mark.parametrize("name", ["sampler", "estimator", "pulser"])
def test_plot_writes_png(outputs, tmp_path, name):
    png = tmp_path / f"{name}.png"
    proc = qrmi_result("plot", str(outputs[name]), "-o", str(png))
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
def test_bad_result_file(tmp_path, content, fragment):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    proc = qrmi_result("summary", str(path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]
