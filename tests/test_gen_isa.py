"""``qrmi-gen validate --resource``: a payload that the resource's backend cannot run (not
ISA, too many qubits) is refused before any QPU time is spent; one generated for it passes.

Against the fake Direct Access service (its backend documents are the target's source).
"""

from __future__ import annotations

import os

import pytest
from fakes.direct_access import FakeDirectAccess, runner_env
from helpers import EXAMPLES, clean_env

from generators.cli import cli
from qrmi_tasks.front import run_command

BACKEND = "fake_heron"
BELL = str(EXAMPLES / "qiskit" / "bell.qasm")


@pytest.fixture
def da_env(monkeypatch):
    fake = FakeDirectAccess((BACKEND,)).start()
    env = clean_env(**runner_env(BACKEND, fake.url, "http://127.0.0.1:9"))
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield fake
    fake.stop()


def gen(capsys, *args: str) -> tuple[int, str]:
    code = run_command(cli, "qrmi-gen", list(args))
    return code, capsys.readouterr().err


def test_a_logical_circuit_is_refused_naming_the_instruction(da_env, capsys):
    code, err = gen(
        capsys, "validate", str(EXAMPLES / "qiskit" / "bell_sampler.json"), "--resource", BACKEND
    )
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert f"cannot run on {BACKEND}: pub 0 is not an ISA circuit" in err
    assert f"--resource {BACKEND}" in err
    assert not [r for r in da_env.requests if r["method"] == "POST" and r["path"] == "/v1/jobs"]


def test_too_many_qubits_is_refused(da_env, tmp_path, capsys):
    wide = tmp_path / "wide.qasm"
    wide.write_text(
        'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[400] q;\nbit[1] c;\nc[0] = measure q[399];\n'
    )
    payload = tmp_path / "wide.json"
    assert gen(capsys, "sampler", str(wide), "-o", str(payload))[0] == 0
    code, err = gen(capsys, "validate", str(payload), "--resource", BACKEND)
    assert code == 2, err
    assert "pub 0 uses 400 qubits" in err and f"{BACKEND} has" in err


def test_a_payload_generated_for_the_resource_passes(da_env, tmp_path, capsys):
    payload = tmp_path / "isa.json"
    assert gen(capsys, "sampler", BELL, "--resource", BACKEND, "-o", str(payload))[0] == 0
    code, err = gen(capsys, "validate", str(payload), "--resource", BACKEND)
    assert code == 0, err
