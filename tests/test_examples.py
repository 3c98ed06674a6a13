"""Every example generates its payload, and the payload runs on the ``local`` resource."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import EXAMPLES, clean_env, run_runner

pytestmark = pytest.mark.timeout(300)

# script, arguments, file it writes (in the working directory)
SCRIPTS = [
    ("qiskit/gen_sampler_inputs.py", ["--shots", "300"], "sampler_input_fake_manila.json"),
    ("qiskit/gen_estimator_inputs.py", [], "estimator_input_fake_manila.json"),
    ("pulser/sequence.py", ["--runs", "80"], "sequence_input.json"),
    ("qpp/analog.py", ["--runs", "80"], "sequence_input.json"),
]


def _run_local(payload: Path) -> dict:
    proc = run_runner("local", str(payload))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize(("script", "args", "written"), SCRIPTS, ids=[s[0] for s in SCRIPTS])
def test_example_script_payload_runs_locally(script, args, written, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    payload = tmp_path / written
    document = json.loads(payload.read_text())
    result = _run_local(payload)
    if "sequence" in document:
        assert sum(result["counter"].values()) == document["job_runs"]
    elif document["program_id"] == "sampler":
        samples = result["results"][0]["data"]["meas"]["samples"]
        assert len(samples) == document["parameters"]["shots"]
        assert "$" in document["parameters"]["pubs"][0][0]  # ISA: physical qubits
    else:
        evs = result["results"][0]["data"]["evs"]
        # a sum of 0.5*ZZ terms over the coupling map's edges is bounded by their count
        terms = document["parameters"]["pubs"][0][1][0]
        assert len(evs) == 1 and abs(evs[0]) <= 0.5 * len(terms) + 0.1


@pytest.mark.parametrize("name", ["bell_sampler.json", "bell_estimator.json"])
def test_ready_made_payloads_validate(name):
    proc = subprocess.run(
        [sys.executable, "-m", "generators", "validate", str(EXAMPLES / "qiskit" / name)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok: ")


@pytest.mark.parametrize("folder", ["qiskit", "pulser", "qpp"])
def test_example_folder_has_readme_and_valid_sbatch(folder):
    assert (EXAMPLES / folder / "README.md").is_file()
    sbatch = EXAMPLES / folder / "job.sbatch"
    text = sbatch.read_text()
    assert text.startswith("#!/bin/bash") and "#SBATCH" in text and "srun qrmi-task-runner" in text
    subprocess.run(["bash", "-n", str(sbatch)], check=True)
