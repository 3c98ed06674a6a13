"""Every foreseeable failure has its documented exit code (none is exit 70).

Protocol errors from Direct Access, a result that cannot be written (file size limit)
and output paths that collide — through the real CLI. The runner's outcome for each
kind of failure (logs that cannot be written included) is checked in process in
test_runner_lifecycle.py.
"""

from __future__ import annotations

import resource
import subprocess

import pytest
from fakes import direct_access, qiskit_runtime
from helpers import EXAMPLES, clean_env, run_runner, runner_cmd

pytestmark = pytest.mark.timeout(180)

BELL = EXAMPLES / "qiskit" / "bell_sampler.json"
STATUS = {"method": "GET", "match": "/v1/jobs/[^/]+"}


@pytest.fixture
def da(s3_url):
    fake = direct_access.FakeDirectAccess(("fake_heron",), job_seconds=0.5).start()
    yield fake, clean_env(**direct_access.runner_env("fake_heron", fake.url, s3_url))
    fake.stop()


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_html_status_answers_are_a_protocol_error_exit_3(da):
    fake, env = da
    fake.configure(
        faults=[{**STATUS, "status": 200, "body": "<html>maintenance</html>", "times": 50}]
    )
    proc = run_runner("fake_heron", str(BELL), env=env)
    assert proc.returncode == 3, proc.stderr
    (line,) = _error_lines(proc.stderr)
    assert "protocol error" in line and "HTML, not JSON" in line, line
    assert "may still be running there" in proc.stderr  # the task is named
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 200, "body": "[]"},  # JSON, not an object
        {"status": 200, "body": '{"id": "x", "sta'},  # truncated
        {"status": 200, "body_size": 20 << 20},  # over the 16 MiB cap
        {"status": 503, "retry_after": "soon"},  # neither seconds nor a date
    ],
    ids=["list", "truncated", "oversize", "bad-retry-after"],
)
def test_one_bad_answer_is_retried_and_the_run_completes(da, fault, tmp_path):
    fake, env = da
    fake.configure(faults=[{**STATUS, **fault}])
    out = tmp_path / "out.json"
    proc = run_runner("fake_heron", str(BELL), "-o", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0
    assert [r["status"] for r in fake.calls("POST", "/v1/jobs")] == [204]  # one submission


def _limit_file_size(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_result_over_the_file_size_limit_is_exit_4_and_keeps_the_task(tmp_path):
    """EFBIG (RLIMIT_FSIZE) stands for any write failure, ENOSPC included."""
    fake = qiskit_runtime.FakeQiskitRuntime(("ibm_fake",), job_seconds=0.2).start()
    try:
        env = clean_env(**qiskit_runtime.runner_env("ibm_fake", fake))
        out = tmp_path / "out.json"
        out.write_text("old\n")
        proc = subprocess.run(
            runner_cmd("ibm_fake", str(BELL), "-o", str(out)),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=_limit_file_size(512),
        )
    finally:
        fake.stop()
    assert proc.returncode == 4, proc.stderr
    (line,) = _error_lines(proc.stderr)
    assert "cannot write the result" in line, line
    assert "completed but its result was not written; it was kept on the provider" in proc.stderr
    assert "may still be running" not in proc.stderr
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no temp file


def test_output_and_logs_on_the_same_file_is_exit_2_before_submitting(da, tmp_path):
    fake, env = da
    out = tmp_path / "result.json"
    link = tmp_path / "link.json"
    link.symlink_to(out)
    proc = run_runner("fake_heron", str(BELL), "-o", str(out), "--logs", str(link), env=env)
    assert proc.returncode == 2, proc.stderr
    (line,) = _error_lines(proc.stderr)
    assert "are the same file" in line
    assert fake.requests == []
