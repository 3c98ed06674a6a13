"""Bad input: one line on stderr starting with ``error:``, exit 2, no traceback, no network.

The runner's command runs in this process (the ``in_process`` fixture: ``cli.main`` minus
its exit, in the environment the test gives), which decides all of these. A few stay
processes, each saying why: what the real entry point's exit shows, reading a FIFO,
and what the runner imports.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from helpers import EXAMPLES, assert_clean_error, clean_env, run_runner

BELL = str(EXAMPLES / "qiskit" / "bell_sampler.json")


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
    "duplicate key": (
        '{"program_id": "sampler", "parameters": {"pubs": [["c"]], "shots": 5, "shots": 0}}',
        ['"shots"', "twice"],
    ),
    "nested too deeply": ("[" * 100_000 + "]" * 100_000, ["nested too deeply"]),
    "include outside qelib1.inc": (
        json.dumps(
            {
                "program_id": "sampler",
                "parameters": {"pubs": [['OPENQASM 2.0;\ninclude "/etc/passwd";\nqreg q[1];']]},
            }
        ),
        ['"/etc/passwd"', '"qelib1.inc"', "pubs[0][0]"],
    ),
    "OpenQASM 3 include outside stdgates.inc": (
        json.dumps(
            {
                "program_id": "sampler",
                "parameters": {"pubs": [["OPENQASM 3.0;\ninclude 'gates.inc';\nqubit q;"]]},
            }
        ),
        ['"gates.inc"', '"stdgates.inc"'],
    ),
}


def _primitive(program_id: str, pub: str, extra: str = "") -> str:
    return f'{{"program_id": "{program_id}", "parameters": {{"pubs": [{pub}]{extra}}}}}'


# shots: a positive integer; precision: a positive finite number; parameter values finite.
for _value in ("0", "2.5", "true", '"100"', "-1"):
    BAD_PAYLOADS[f"sampler shots {_value}"] = (
        _primitive("sampler", '["c"]', f', "shots": {_value}'),
        ["'parameters.shots' must be a positive integer", f"got {_value}"],
    )
for _value in ("0", "-0.5", "NaN", "Infinity", "true"):
    BAD_PAYLOADS[f"estimator precision {_value}"] = (
        _primitive("estimator", '["c", ["ZZ"]]', f', "precision": {_value}'),
        ["'parameters.precision' must be a positive finite number", f"got {_value}"],
    )
BAD_PAYLOADS.update(
    {
        "sampler pub shots 0": (
            _primitive("sampler", '["c", null, 0]'),
            ["pubs[0][2] (shots) must be a positive integer"],
        ),
        "sampler options.default_shots 0": (
            _primitive("sampler", '["c"]', ', "options": {"default_shots": 0}'),
            ["'parameters.options.default_shots' must be a positive integer"],
        ),
        "estimator pub precision NaN": (
            _primitive("estimator", '["c", ["ZZ"], null, NaN]'),
            ["pubs[0][3] (precision) must be a positive finite number", "NaN"],
        ),
        "estimator options.default_precision -1": (
            _primitive("estimator", '["c", ["ZZ"]]', ', "options": {"default_precision": -1}'),
            ["'parameters.options.default_precision' must be a positive finite number"],
        ),
        "sampler parameter value NaN": (
            _primitive("sampler", '["c", {"theta": [0.5, NaN]}]'),
            ["pubs[0][1] (parameter values)", "NaN", "finite"],
        ),
        "estimator parameter value overflowing to infinity": (
            _primitive("estimator", '["c", ["ZZ"], [[0.1], [1e400]]]'),
            ["pubs[0][2] (parameter values)", "Infinity", "finite"],
        ),
    }
)


@pytest.mark.parametrize("case", sorted(BAD_PAYLOADS))
def test_bad_payload(in_process, tmp_path, case):
    text, fragments = BAD_PAYLOADS[case]
    assert_clean_error(in_process.run("local", write(tmp_path, text)), *fragments)


def test_missing_payload_file(tmp_path):
    # a process: main() ends the runner with os._exit, which skips the interpreter's
    # flush; the error line and exit 2 must reach the caller all the same
    proc = run_runner("local", str(tmp_path / "nope.json"))
    assert_clean_error(proc, "does not exist", "nope.json")


def test_payload_is_a_directory(in_process, tmp_path):
    assert_clean_error(in_process.run("local", str(tmp_path)), "directory")


def _endless_fifo(tmp_path: Path) -> str:
    """A FIFO whose writer never stops (until the reader goes away)."""
    fifo = tmp_path / "endless.fifo"
    os.mkfifo(fifo)

    def write_forever() -> None:
        chunk = b" " * (1 << 20)
        try:
            with open(fifo, "wb") as handle:
                while True:
                    handle.write(chunk)
        except OSError:  # BrokenPipeError: the runner stopped reading
            pass

    threading.Thread(target=write_forever, daemon=True).start()
    return str(fifo)


def _huge_file(tmp_path: Path, size: int) -> str:
    path = tmp_path / "huge.json"
    with open(path, "wb") as handle:
        handle.truncate(size)  # sparse: no disk space, no write time
    return str(path)


@pytest.mark.parametrize("source", ["/dev/zero", "fifo", "huge"])
def test_payload_size_limit(in_process, tmp_path, source, listener):
    from qrmi_tasks.readers import PAYLOAD_LIMIT

    path = {
        "/dev/zero": lambda: "/dev/zero",
        "fifo": lambda: _endless_fifo(tmp_path),
        "huge": lambda: _huge_file(tmp_path, PAYLOAD_LIMIT + 1),
    }[source]()
    env = clean_env(http_proxy=listener.url, https_proxy=listener.url)
    if source == "fifo":
        # a process: the runner reads the FIFO while its writer is another process's
        # thread, and must stop at the limit and exit with the writer still writing
        proc = run_runner("local", path, env=env, timeout=120)
    else:
        in_process.use_env(env)
        proc = in_process.run("local", path)
    assert_clean_error(proc, f"payload file {path} is larger than the 512 MiB limit")
    assert listener.count == 0


@pytest.mark.parametrize("source", ["/dev/zero", "fifo", "huge"])
def test_config_size_limit(in_process, tmp_path, source):
    from qrmi_tasks.readers import CONFIG_LIMIT

    path = {
        "/dev/zero": lambda: "/dev/zero",
        "fifo": lambda: _endless_fifo(tmp_path),
        "huge": lambda: _huge_file(tmp_path, CONFIG_LIMIT + 1),
    }[source]()
    if source == "fifo":  # a process, as for the payload's FIFO above
        proc = run_runner("local", BELL, "--config", path)
    else:
        proc = in_process.run("local", BELL, "--config", path)
    assert_clean_error(proc, f"config file {path} is larger than the 16 MiB limit")


@pytest.mark.parametrize(
    "content,fragments",
    [
        (b'{"resources": [\xff]}', ["is not UTF-8", "offset 15"]),
        (b"[" * 100_000 + b"]" * 100_000, ["nested too deeply"]),
        (b'{"resources": [], "resources": []}', ['"resources"', "twice"]),
        (
            b'{"resources": [{"name": "a", "type": "local", "environment": '
            b'{"QRMI_LOCAL_SEED": "1", "QRMI_LOCAL_SEED": "2"}}]}',
            ['"QRMI_LOCAL_SEED"', "twice"],
        ),
        (
            b'{"resources": [{"name": "a", "type": "local"}, {"name": "a", "type": "local"}]}',
            ["'a'", "more than once"],
        ),
    ],
    ids=["not UTF-8", "too deep", "duplicate key", "duplicate nested key", "duplicate resource"],
)
def test_bad_config_file_content(in_process, tmp_path, content, fragments):
    config = tmp_path / "qrmi.json"
    config.write_bytes(content)
    done = in_process.run("a", BELL, "--config", str(config))
    assert_clean_error(done, "qrmi.json", *fragments)


@pytest.mark.parametrize("prefix", ["QRMI_JOB_QPU", "SLURM_JOB_QPU"])
def test_duplicate_resource_names_in_the_list(in_process, prefix):
    in_process.use_env(
        clean_env(
            **{f"{prefix}_RESOURCES": "sim_a,sim_b, sim_a", f"{prefix}_TYPES": "local,local,local"}
        )
    )
    assert_clean_error(
        in_process.run("sim_b", BELL), f"{prefix}_RESOURCES", "'sim_a'", "more than once"
    )


def _untouched_atime(path: Path) -> bool:
    """Set ``path``'s access time into the past; True if reading it would update it.

    On such a file system an unchanged access time after a run proves nobody read it.
    """
    os.utime(path, (0, path.stat().st_mtime + 1))  # relatime updates an atime < mtime
    path.read_bytes()
    tracks = path.stat().st_atime != 0
    os.utime(path, (0, path.stat().st_mtime))
    return tracks


@pytest.mark.parametrize("version", ["2.0", "3.0"])
def test_openqasm_include_is_never_opened(in_process, tmp_path, version):
    included = tmp_path / "defs.inc"
    included.write_text("leaked_file_content;\n")  # the parser would quote this in its error
    tracks_atime = _untouched_atime(included)
    qubits = "qreg q[1];" if version == "2.0" else "qubit[1] q;"
    circuit = f'OPENQASM {version};\ninclude "{included}";\n{qubits}'
    payload = write(tmp_path, json.dumps(_document("sampler", circuit)))
    proc = in_process.run("local", payload)
    assert_clean_error(proc, str(included), "may only include")
    assert "leaked_file_content" not in proc.stderr
    if tracks_atime:
        assert included.stat().st_atime == 0, "the included file was read"


def _document(program_id: str, circuit: str) -> dict:
    return {"program_id": program_id, "parameters": {"pubs": [[circuit]], "version": 2}}


def test_standard_includes_still_run(in_process, tmp_path):
    qasm2 = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\nx q[0];\nmeasure q -> c;'
    payload = write(tmp_path, json.dumps(_document("sampler", qasm2)))
    proc = in_process.run("local", payload, "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout and proc.stderr == ""


def test_plain_http_endpoint_to_another_host_is_a_warning(in_process, tmp_path, listener):
    # direct-access with every variable set; the payload is bad, so nothing is contacted
    name, p = "qpu", "qpu_QRMI_IBM_DA_"
    env = clean_env(
        SLURM_JOB_QPU_RESOURCES=name,
        SLURM_JOB_QPU_TYPES="direct-access",
        http_proxy=listener.url,
        https_proxy=listener.url,
        **{
            f"{p}ENDPOINT": "http://da.example.com/api",
            f"{p}IAM_ENDPOINT": "https://iam.example.com",
            f"{p}IAM_APIKEY": "key-123456",
            f"{p}SERVICE_CRN": "crn:v1:x",
            f"{p}AWS_ACCESS_KEY_ID": "AKIA123456",
            f"{p}AWS_SECRET_ACCESS_KEY": "secret-123456",
            f"{p}S3_ENDPOINT": "http://localhost:9000",
            f"{p}S3_ENDPOINT_FOR_DAAPI": "http://10.1.2.3:9000",
            f"{p}S3_BUCKET": "b",
            f"{p}S3_REGION": "us-east",
            f"{name}_QRMI_JOB_TIMEOUT_SECONDS": "60",
        },
    )
    in_process.use_env(env)
    proc = in_process.run(name, write(tmp_path, "[1]"))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    warnings = [line for line in lines if " WARNING " in line]
    assert len(errors) == 1 and "JSON object" in errors[0]
    assert len(warnings) == 2 and len(lines) == 3, proc.stderr
    assert f"{p}ENDPOINT uses plain http:// to da.example.com" in warnings[0]
    assert f"{p}S3_ENDPOINT_FOR_DAAPI uses plain http:// to 10.1.2.3" in warnings[1]
    assert "Traceback" not in proc.stderr
    assert listener.count == 0


def test_output_directory_missing(in_process, tmp_path):
    proc = in_process.run("local", BELL, "-o", str(tmp_path / "no" / "out.json"))
    assert_clean_error(proc, "does not exist")
    assert not (tmp_path / "no").exists()


def test_output_path_is_a_directory(in_process, tmp_path):
    assert_clean_error(in_process.run("local", BELL, "-o", str(tmp_path)), "is a directory")


def test_name_not_listed(in_process):
    in_process.use_env(
        clean_env(SLURM_JOB_QPU_RESOURCES="sim_a, sim_b", SLURM_JOB_QPU_TYPES="local,local")
    )
    line = assert_clean_error(in_process.run("ibm_marrakesh", BELL), "ibm_marrakesh")
    assert "sim_a" in line and "sim_b" in line


def test_unknown_name_without_any_resources(in_process):
    assert_clean_error(in_process.run("ibm_torino", BELL), "no QPU resources", "local")


def test_lists_of_different_lengths(in_process):
    in_process.use_env(clean_env(SLURM_JOB_QPU_RESOURCES="a,b", SLURM_JOB_QPU_TYPES="local"))
    assert_clean_error(in_process.run("a", BELL), "2 resource(s)", "1 type(s)")


def test_custom_delimiter(in_process):
    in_process.use_env(
        clean_env(
            QRMI_JOB_QPU_RESOURCES="a;b", QRMI_JOB_QPU_TYPES="local; local", QRMI_LIST_DELIMITER=";"
        )
    )
    proc = in_process.run("b", BELL)
    assert proc.returncode == 0, proc.stderr


def test_qrmi_lists_win_over_slurm_lists(in_process):
    in_process.use_env(
        clean_env(
            QRMI_JOB_QPU_RESOURCES="mine",
            QRMI_JOB_QPU_TYPES="local",
            SLURM_JOB_QPU_RESOURCES="theirs",
            SLURM_JOB_QPU_TYPES="local",
        )
    )
    assert_clean_error(in_process.run("theirs", BELL), "mine")


def test_unknown_resource_type(in_process):
    in_process.use_env(clean_env(SLURM_JOB_QPU_RESOURCES="q", SLURM_JOB_QPU_TYPES="quantum-magic"))
    assert_clean_error(in_process.run("q", BELL), "unknown resource type", "direct-access")


def test_bad_config_file(in_process, tmp_path):
    config = write(tmp_path, '{"resources": [{"name": "x"}]}', "qrmi.json")
    assert_clean_error(in_process.run("x", BELL, "--config", config), "type")


def test_click_usage_error_is_one_line(in_process):
    assert_clean_error(in_process.run("local"), "FILE")


def test_unknown_option_is_one_line(in_process):
    assert_clean_error(in_process.run("--frobnicate", "local", BELL), "frobnicate")


def test_payload_errors_make_no_network_call(in_process, tmp_path, listener):
    # A resource whose endpoint is our listener: rejecting the payload must not connect.
    in_process.use_env(
        clean_env(
            SLURM_JOB_QPU_RESOURCES="sim",
            SLURM_JOB_QPU_TYPES="local",
            http_proxy=listener.url,
            https_proxy=listener.url,
        )
    )
    for text, _ in BAD_PAYLOADS.values():
        done = in_process.run("sim", write(tmp_path, text))
        assert done.code == 2, done.stderr
    assert listener.count == 0


def test_bad_seed_setting_is_reported_with_variable_name(in_process):
    in_process.use_env(clean_env(local_QRMI_LOCAL_SEED="abc"))
    assert_clean_error(in_process.run("local", BELL), "local_QRMI_LOCAL_SEED")


def test_version_and_help():
    # a process: main() ends the runner with os._exit, which skips the interpreter's
    # flush; what -V and -h print to a pipe must reach it all the same
    proc = run_runner("-V")
    assert proc.returncode == 0 and proc.stdout.startswith("qrmi_task_runner ")
    proc = run_runner("-h")
    assert proc.returncode == 0
    assert "qrmi_task_runner - Command to run a QRMI task" in proc.stdout
    for option in ("-o, --output", "--config", "--no-cancel-on-sigcont", "-v, --verbose"):
        assert option in proc.stdout


def test_help_imports_no_heavy_library():
    # a process: what a fresh interpreter imports (this one has imported everything)
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from qrmi_tasks.cli import command\n"
        "from qrmi_tasks.front import run_command\n"
        "run_command(command, 'qrmi-task-runner', ['--help'])\n"  # main() minus its exit
        "heavy = [m for m in ('qiskit', 'pulser', 'boto3', 'pasqal_cloud', 'qiskit_ibm_runtime',"
        " 'numpy') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), timeout=60
    )
    assert "HEAVY=\n" in proc.stderr, proc.stderr


def test_unforeseen_exception_is_one_line_exit_70(in_process, monkeypatch):
    import qrmi_tasks.runner as runner

    # Simulate a bug inside the runner (our own code, not a client library) to check
    # the last-resort handler: one line naming the exception, no traceback, exit 70.
    def broken(request):
        raise KeyError("boom")

    monkeypatch.setattr(runner, "run", broken)
    proc = in_process.run("local", BELL)
    line = assert_clean_error(proc, "internal error: KeyError", "boom", code=70)
    assert "-v" in line
