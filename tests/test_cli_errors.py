"""Bad input: one line on stderr starting with ``error:``, exit 2, no traceback, no network."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from conftest import EXAMPLES, clean_env, run_runner

BELL = str(EXAMPLES / "qiskit" / "bell_sampler.json")


class ConnectionCounter:
    """A TCP listener on 127.0.0.1 that counts connection attempts (proves 'no network')."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.count = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.count += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener():
    counter = ConnectionCounter()
    yield counter
    counter.close()


def assert_clean_error(proc, *fragments: str, code: int = 2) -> str:
    """Exactly one stderr line, ``error: ...``, the expected exit code, no traceback."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert proc.stdout == ""
    return lines[0]


def write(tmp_path: Path, text: str, name: str = "payload.json") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


BAD_PAYLOADS = {
    "not JSON": ('{"program_id": "sampler",\n  "parameters": }', ["not valid JSON", "line 2"]),
    "JSON array": ("[1, 2]", ["JSON object", "array"]),
    "unknown program_id": (
        '{"program_id": "qaoa", "parameters": {"pubs": [["x"]]}}',
        ["unknown program_id", "qaoa"],
    ),
    "missing parameters": ('{"program_id": "sampler"}', ["missing 'parameters'"]),
    "missing pubs": ('{"program_id": "sampler", "parameters": {"version": 2}}', ["pubs"]),
    "empty pubs": ('{"program_id": "sampler", "parameters": {"pubs": []}}', ["non-empty"]),
    "estimator pub without observables": (
        '{"program_id": "estimator", "parameters": {"pubs": [["OPENQASM 3.0;"]]}}',
        ["observables"],
    ),
    "version 1": (
        '{"program_id": "sampler", "parameters": {"pubs": [["c"]], "version": 1}}',
        ["version", "2"],
    ),
    "job_runs 0": ('{"sequence": {"version": "1"}, "job_runs": 0}', ["job_runs", ">= 1"]),
    "job_runs string": ('{"sequence": {"version": "1"}, "job_runs": "10"}', ["job_runs"]),
    "job_runs float": ('{"sequence": {"version": "1"}, "job_runs": 1.5}', ["job_runs"]),
    "job_runs missing": ('{"sequence": {"version": "1"}}', ["job_runs"]),
    "sequence string not JSON": ('{"sequence": "not json", "job_runs": 10}', ["sequence"]),
    "sequence not a Pulser sequence": (
        '{"sequence": {"version": "1"}, "job_runs": 10}',
        ["not a valid Pulser sequence"],
    ),
    "neither kind": ('{"circuits": []}', ["program_id", "sequence"]),
}


@pytest.mark.parametrize("case", sorted(BAD_PAYLOADS))
def test_bad_payload(tmp_path, case):
    text, fragments = BAD_PAYLOADS[case]
    proc = run_runner("local", write(tmp_path, text))
    assert_clean_error(proc, *fragments)


def test_missing_payload_file(tmp_path):
    proc = run_runner("local", str(tmp_path / "nope.json"))
    assert_clean_error(proc, "does not exist", "nope.json")


def test_payload_is_a_directory(tmp_path):
    assert_clean_error(run_runner("local", str(tmp_path)), "directory")


def test_output_directory_missing(tmp_path):
    proc = run_runner("local", BELL, "-o", str(tmp_path / "no" / "out.json"))
    assert_clean_error(proc, "does not exist")
    assert not (tmp_path / "no").exists()


def test_output_path_is_a_directory(tmp_path):
    assert_clean_error(run_runner("local", BELL, "-o", str(tmp_path)), "is a directory")


def test_name_not_listed(tmp_path):
    env = clean_env(SLURM_JOB_QPU_RESOURCES="sim_a, sim_b", SLURM_JOB_QPU_TYPES="local,local")
    line = assert_clean_error(run_runner("ibm_marrakesh", BELL, env=env), "ibm_marrakesh")
    assert "sim_a" in line and "sim_b" in line


def test_local_not_available_when_resources_are_listed():
    env = clean_env(SLURM_JOB_QPU_RESOURCES="sim_a", SLURM_JOB_QPU_TYPES="local")
    assert_clean_error(run_runner("local", BELL, env=env), "not configured", "sim_a")


def test_unknown_name_without_any_resources():
    assert_clean_error(run_runner("ibm_torino", BELL), "no QPU resources", "local")


def test_lists_of_different_lengths():
    env = clean_env(SLURM_JOB_QPU_RESOURCES="a,b", SLURM_JOB_QPU_TYPES="local")
    assert_clean_error(run_runner("a", BELL, env=env), "2 resource(s)", "1 type(s)")


def test_custom_delimiter():
    env = clean_env(
        QRMI_JOB_QPU_RESOURCES="a;b", QRMI_JOB_QPU_TYPES="local; local", QRMI_LIST_DELIMITER=";"
    )
    proc = run_runner("b", BELL, env=env)
    assert proc.returncode == 0, proc.stderr


def test_qrmi_lists_win_over_slurm_lists():
    env = clean_env(
        QRMI_JOB_QPU_RESOURCES="mine",
        QRMI_JOB_QPU_TYPES="local",
        SLURM_JOB_QPU_RESOURCES="theirs",
        SLURM_JOB_QPU_TYPES="local",
    )
    assert_clean_error(run_runner("theirs", BELL, env=env), "mine")


def test_unknown_resource_type():
    env = clean_env(SLURM_JOB_QPU_RESOURCES="q", SLURM_JOB_QPU_TYPES="quantum-magic")
    assert_clean_error(run_runner("q", BELL, env=env), "unknown resource type", "direct-access")


def test_bad_config_file(tmp_path):
    config = write(tmp_path, '{"resources": [{"name": "x"}]}', "qrmi.json")
    assert_clean_error(run_runner("x", BELL, "--config", config), "type")


def test_click_usage_error_is_one_line():
    proc = run_runner("local")
    assert_clean_error(proc, "FILE")


def test_unknown_option_is_one_line():
    assert_clean_error(run_runner("--frobnicate", "local", BELL), "frobnicate")


def test_payload_errors_make_no_network_call(tmp_path, listener):
    # A resource whose endpoint is our listener: rejecting the payload must not connect.
    env = clean_env(
        SLURM_JOB_QPU_RESOURCES="sim",
        SLURM_JOB_QPU_TYPES="local",
        http_proxy=listener.url,
        https_proxy=listener.url,
    )
    for text, _ in BAD_PAYLOADS.values():
        proc = run_runner("sim", write(tmp_path, text), env=env)
        assert proc.returncode == 2
    assert listener.count == 0


def test_bad_seed_setting_is_reported_with_variable_name():
    env = clean_env(local_QRMI_LOCAL_SEED="abc")
    assert_clean_error(run_runner("local", BELL, env=env), "local_QRMI_LOCAL_SEED")


def test_version_and_help():
    proc = run_runner("-V")
    assert proc.returncode == 0 and proc.stdout.startswith("qrmi_task_runner ")
    proc = run_runner("-h")
    assert proc.returncode == 0
    assert "qrmi_task_runner - Command to run a QRMI task" in proc.stdout
    for option in ("-o, --output", "--config", "--no-cancel-on-sigcont", "-v, --verbose"):
        assert option in proc.stdout


def test_help_imports_no_heavy_library():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from qrmi_tasks.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('qiskit', 'pulser', 'boto3', 'pasqal_cloud', 'qiskit_ibm_runtime',"
        " 'numpy') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), timeout=60
    )
    assert "HEAVY=\n" in proc.stderr, proc.stderr


def test_unforeseen_exception_is_one_line_exit_70():
    import subprocess
    import sys

    # Simulate a bug inside the runner (our own code, not a client library) to check
    # the last-resort handler: one line naming the exception, no traceback, exit 70.
    code = (
        "import qrmi_tasks.runner as runner\n"
        "def broken(request):\n    raise KeyError('boom')\n"
        "runner.run = broken\n"
        "from qrmi_tasks.cli import main\n"
        f"main(['local', {BELL!r}])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), timeout=60
    )
    line = assert_clean_error(proc, "internal error: KeyError", "boom", code=70)
    assert "-v" in line
