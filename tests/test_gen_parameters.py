"""qrmi-gen with parametrized circuits, names from files, target suggestions, result forms.

In process (the CLI's own front door, ``front.run_command``) and run on ``local`` through
the Python API, so the generated payload is also shown to mean what it says.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers import EXAMPLES

import qrmi_tasks
from generators.cli import cli
from qrmi_tasks.front import run_command

RX_RY = """OPENQASM 3.0;
include "stdgates.inc";
input float[64] theta;
input float[64] alpha;
qubit[2] q;
bit[2] c;
rx(theta) q[0];
ry(alpha) q[1];
c = measure q;
"""

RX = """OPENQASM 3.0;
include "stdgates.inc";
input float[64] theta;
qubit[2] q;
rx(theta) q[0];
"""


def gen(capsys, *args: str) -> tuple[int, str]:
    code = run_command(cli, "qrmi-gen", list(args))
    return code, capsys.readouterr().err


@pytest.fixture
def rx_ry(tmp_path):
    path = tmp_path / "rotations.qasm"
    path.write_text(RX_RY)
    return path


def test_sampler_binds_values_in_name_order_and_says_so(rx_ry, tmp_path, capsys):
    out = tmp_path / "sampler.json"
    # rows of (alpha, theta): Qiskit sorts parameters by name, not by declaration
    values = json.dumps([[0.0, 0.0], [0.0, math.pi], [math.pi, 0.0]])
    code, err = gen(
        capsys, "sampler", str(rx_ry), "--shots", "200", "--param-values", values, "-o", str(out)
    )
    assert code == 0, err
    assert "circuit 'rotations': values bound in the order alpha, theta (3 binding(s))" in err
    result = qrmi_tasks.run(out, resource="local", log_level=None)
    bits = result[0].data.c
    assert bits.shape == (3,)
    # bitstrings are c[1]c[0]: theta flips qubit 0, alpha qubit 1
    assert bits[0].get_counts() == {"00": 200}
    assert bits[1].get_counts() == {"01": 200}
    assert bits[2].get_counts() == {"10": 200}


def test_sampler_takes_values_by_name(rx_ry, tmp_path, capsys):
    out = tmp_path / "sampler.json"
    values = json.dumps({"theta": [math.pi], "alpha": [0.0]})
    code, err = gen(
        capsys, "sampler", str(rx_ry), "--shots", "50", "--param-values", values, "-o", str(out)
    )
    assert code == 0, err
    result = qrmi_tasks.run(out, resource="local", log_level=None)
    assert result[0].data.c.get_counts() == {"01": 50}


def test_estimator_with_parameters_gives_every_observable_for_every_binding(tmp_path, capsys):
    circuit = tmp_path / "rx.qasm"
    circuit.write_text(RX)
    out = tmp_path / "estimator.json"
    angles = [0.0, math.pi / 2, math.pi]
    code, err = gen(
        capsys,
        "estimator",
        str(circuit),
        "--observable",
        "IZ",
        "--observable",
        "ZI",
        "--param-values",
        json.dumps(angles),
        "--precision",
        "0.02",
        "-o",
        str(out),
    )
    assert code == 0, err
    result = qrmi_tasks.run(out, resource="local", log_level=None)
    evs, stds = np.asarray(result[0].data.evs), np.asarray(result[0].data.stds)
    assert evs.shape == (2, 3)  # observables x bindings
    exact = np.array([[math.cos(a) for a in angles], [1.0, 1.0, 1.0]])
    # within 5 reported standard deviations (and never further than the precision allows)
    assert np.all(np.abs(evs - exact) <= np.maximum(5 * stds, 0.1)), (evs, stds)


def test_parameter_count_mismatch_is_one_line_naming_the_file(rx_ry, capsys):
    code, err = gen(capsys, "sampler", str(rx_ry), "--param-values", "[1, 2, 3]")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "circuit 'rotations'" in err and "alpha, theta" in err


def test_missing_values_name_the_circuit_after_its_file(rx_ry, capsys):
    code, err = gen(capsys, "sampler", str(rx_ry))
    assert code == 2
    assert "circuit 'rotations' has parameters (alpha, theta)" in err
    assert "circuit-" not in err


@pytest.mark.parametrize(
    ("typed", "suggested"), [("ibm_torino", "fake_torino"), ("fake_marakesh", "fake_marrakesh")]
)
def test_unknown_target_suggests_close_fake_backends(typed, suggested, capsys):
    code, err = gen(capsys, "sampler", str(EXAMPLES / "qiskit" / "bell.qasm"), "--target", typed)
    assert code == 2
    assert f"did you mean {suggested}" in err


def test_support_qiskit_flag_chooses_the_result_form(tmp_path, capsys):
    bell = str(EXAMPLES / "qiskit" / "bell.qasm")
    plain, encoded = tmp_path / "plain.json", tmp_path / "encoded.json"
    assert gen(capsys, "sampler", bell, "--shots", "64", "-o", str(plain))[0] == 0
    assert (
        gen(capsys, "sampler", bell, "--shots", "64", "--support-qiskit", "-o", str(encoded))[0]
        == 0
    )
    assert json.loads(plain.read_text())["parameters"]["support_qiskit"] is False
    assert json.loads(encoded.read_text())["parameters"]["support_qiskit"] is True
    for payload in (plain, encoded):
        counts = qrmi_tasks.run(payload, resource="local", log_level=None)[0].data.meas
        assert counts.num_shots == 64
