"""The cheap target check (qrmi_tasks.isa_light + backend_cache): it agrees with qiskit's
Target where it decides, leaves the rest to it, and a user's runners fetch the backend's
documents once. The documents are the Direct Access fake's (qiskit-ibm-runtime's Torino).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fakes.direct_access import FakeDirectAccess, device_document
from fakes.direct_access import runner_env as da_env
from helpers import EXAMPLES, clean_env

from generators.cli import cli
from qrmi_tasks import backend_cache, isa, isa_light
from qrmi_tasks.front import run_command

BACKEND = "fake_heron"
CONFIGURATION = f"/v1/backends/{BACKEND}/configuration"
PHYSICAL = 'OPENQASM 3.0;\ninclude "stdgates.inc";\nbit[2] c;\n{body}\nc[0] = measure $0;\n'


@pytest.fixture(scope="module")
def documents():
    return device_document("configuration"), device_document("properties")


@pytest.fixture(scope="module")
def target(documents):
    return isa.target_from_json(*documents, BACKEND)


def _full(text: str, target) -> list[str]:
    from qiskit import qasm3

    return isa.isa_problems([qasm3.loads(text)], target, BACKEND)


CASES = {
    "isa": PHYSICAL.format(body="rz(0.5) $0;\nsx $0;\ncz $0, $1; // a comment\nbarrier $0, $1;"),
    "wide registers": "OPENQASM 3.0;\nqubit[400] q;\nbit[1] c;\nc[0] = measure q[399];\n",
    "logical": PHYSICAL.format(body="h $0;\ncx $0, $1;"),
    "uncoupled": PHYSICAL.format(body="cz $0, $100;"),
    "control flow": PHYSICAL.format(body="if (c[0]) { x $0; }"),
}


@pytest.mark.parametrize("case", CASES)
def test_light_decides_as_the_full_check_or_not_at_all(case, documents, target):
    light = isa_light.problems([CASES[case]], *documents, BACKEND)
    full = _full(CASES[case], target)
    if case in ("isa", "wide registers"):
        assert light == full, (light, full)  # decided, with the full check's words
    elif case == "control flow":
        assert light is None  # not read by the scanner: qiskit's importer decides
    else:
        assert light is None and full, (light, full)  # qiskit decides what it cannot


def test_scanner_reads_qubits_and_instructions():
    count, found = isa_light.scan(CASES["isa"])
    assert count == 2
    assert found == [("rz", (0,)), ("sx", (0,)), ("cz", (0, 1)), ("measure", (0,))]
    with pytest.raises(isa_light.Unreadable):
        isa_light.scan("OPENQASM 3.0;\ngate g a { x a; }\n")


def test_a_gate_out_of_service_is_left_to_the_full_check(documents):
    configuration, properties = documents
    properties = json.loads(json.dumps(properties))
    for gate in properties["gates"]:
        if gate["gate"] == "sx" and gate["qubits"] == [0]:
            gate["parameters"].append({"name": "operational", "value": 0})
    assert isa_light.problems([CASES["isa"]], configuration, properties, BACKEND) is None


def test_documents_are_fetched_once_per_calibration_and_cached_0600(tmp_path, documents):
    env = {"QRMI_STATE_DIR": str(tmp_path)}
    calls = []

    def fetch():
        calls.append(1)
        return documents

    assert backend_cache.documents(env, "k", fetch) == documents
    assert backend_cache.documents(env, "k", fetch) == documents
    assert len(calls) == 1
    (entry,) = backend_cache.directory(env).glob("*.json")
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE(entry.parent.stat().st_mode) == 0o700
    # a new calibration recorded under the same key: the entry no longer serves
    data = json.loads(entry.read_text())
    data["calibration"] = "1999-01-01T00:00:00Z"
    entry.write_text(json.dumps(data))
    backend_cache.documents(env, "k", fetch)
    assert len(calls) == 2
    assert backend_cache.documents(env, "other", fetch) and len(calls) == 3


def test_runners_missing_the_cache_together_fetch_once(tmp_path, documents):
    env = {"QRMI_STATE_DIR": str(tmp_path)}
    calls = []

    def slow_fetch():
        calls.append(1)
        time.sleep(0.3)  # the others arrive while the first one fetches
        return documents

    with ThreadPoolExecutor(8) as pool:  # each call opens the lock file on its own
        answers = list(pool.map(lambda _: backend_cache.documents(env, "k", slow_fetch), range(8)))
    assert answers == [documents] * 8
    assert len(calls) == 1


@pytest.fixture
def da(s3_url):
    server = FakeDirectAccess((BACKEND,), job_seconds=0.1).start()
    yield server, clean_env(**da_env(BACKEND, server.url, s3_url), QRMI_CHECK_TARGET="on")
    server.stop()


@pytest.fixture(scope="module")
def isa_bell(tmp_path_factory):
    path = tmp_path_factory.mktemp("isa") / "bell_isa.json"
    source = EXAMPLES / "qiskit" / "bell.qasm"
    args = ["sampler", str(source), "--target", "fake_torino", "-o", str(path)]
    assert run_command(cli, "qrmi-gen", args) == 0
    return path


def test_runners_share_the_documents_and_never_import_qiskit_ibm_runtime(da, isa_bell, tmp_path):
    # processes: what a fresh runner imports (this test process has imported everything)
    fake, env = da
    code = (
        "import sys\n"
        "from qrmi_tasks.cli import command\n"
        "from qrmi_tasks.front import run_command\n"
        "status = run_command(command, 'qrmi-task-runner', sys.argv[1:])\n"
        "heavy = [m for m in ('qiskit', 'qiskit_ibm_runtime') if m in sys.modules]\n"
        "print(f'EXIT={status} HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
    )
    for run in range(2):
        out = tmp_path / f"out{run}.json"
        proc = subprocess.run(
            [sys.executable, "-c", code, BACKEND, str(isa_bell), "-o", str(out)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert "EXIT=0 HEAVY=\n" in proc.stderr, proc.stderr
        assert out.exists()
    assert len(fake.calls("GET", CONFIGURATION)) == 1, "the second runner reads the cache"
    assert os.listdir(backend_cache.directory(env))
