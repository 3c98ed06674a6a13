"""The runner inside real Slurm jobs: sbatch, srun, scancel, requeue (single-node cluster).

The cluster comes from ``tests/slurm/start-slurm.sh`` (the test command starts it). When
it is not usable these tests skip with the reason, unless ``QRMI_EXPECT_SLURM=1`` (set by
CI), where that is a failure.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import EXAMPLES, ROOT, clean_env

# one cluster: its tests must not run concurrently (make test runs pytest-xdist workers)
pytestmark = [
    pytest.mark.slurm,
    pytest.mark.timeout(300),
    pytest.mark.xdist_group("slurm"),
    pytest.mark.long,  # minutes together: start them first
]

RUNNER = str(Path(sys.executable).parent / "qrmi-task-runner")
BELL = EXAMPLES / "qiskit" / "bell_sampler.json"
FINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY")


def _slurm_problem() -> str | None:
    if not shutil.which("sbatch") or not shutil.which("sinfo"):
        return "Slurm commands are not installed (run tests/slurm/start-slurm.sh as root)"
    try:
        state = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        return "sinfo timed out: slurmctld is not answering"
    if state.returncode != 0:
        return f"sinfo failed: {state.stderr.strip()[:200]}"
    if not re.search(r"idle|mixed|allocated", state.stdout):
        return f"no usable node (sinfo: {state.stdout.strip()!r})"
    return None


@pytest.fixture(scope="session")
def slurm() -> None:
    problem = _slurm_problem()
    if problem is None:
        return
    if os.environ.get("QRMI_EXPECT_SLURM") == "1":
        pytest.fail(f"Slurm was expected to run but is not usable: {problem}")
    pytest.skip(f"Slurm not usable: {problem}")


def sbatch(workdir: Path, script: str, env: dict[str, str], *args: str) -> str:
    """Submit ``script`` from ``workdir``; return the job id."""
    path = workdir / "job.sh"
    path.write_text("#!/bin/bash\n" + script)
    proc = subprocess.run(
        ["sbatch", "--parsable", *args, str(path)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().split(";")[0]


def job_info(job_id: str) -> dict[str, str]:
    proc = subprocess.run(
        ["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, timeout=20
    )
    return dict(re.findall(r"(\w+)=(\S*)", proc.stdout))


def wait_final(job_id: str, timeout: float = 180) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = job_info(job_id)
        if info.get("JobState") in FINAL:
            return info
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} not finished: {job_info(job_id)}")


def job_output(workdir: Path, job_id: str) -> str:
    path = workdir / f"slurm-{job_id}.out"
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return path.read_text() if path.exists() else ""


def runner_line(*args: str) -> str:
    return " ".join([RUNNER, *map(str, args)])


class FakeService:
    """The fake Direct Access service, running as its own process (reachable from jobs)."""

    def __init__(self, tmp: Path) -> None:
        ready = tmp / "ready.json"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.fakes.direct_access",
                "serve",
                "--ready-file",
                str(ready),
                "--job-seconds",
                "1",
            ],
            cwd=ROOT,
            env=clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert self.proc.poll() is None, "fake Direct Access server died"
            assert time.monotonic() < deadline, "fake Direct Access server did not start"
            time.sleep(0.1)
        self.info = json.loads(ready.read_text())
        self.env = self.info["env"]
        self.backend = self.env["SLURM_JOB_QPU_RESOURCES"]

    def _call(self, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.info["control_url"] + path, data=data, method="POST" if body is not None else "GET"
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def configure(self, **changes) -> None:
        self._call("/_fake/config", changes)

    def requests(self) -> list[dict]:
        return self._call("/_fake/requests")

    def jobs(self) -> dict:
        return self._call("/_fake/jobs")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def fake(slurm, tmp_path_factory):
    service = FakeService(tmp_path_factory.mktemp("fake-da"))
    yield service
    service.stop()


def _submit_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = clean_env(**(extra or {}))
    env.pop("PYTHONPATH", None)
    return env


def test_sbatch_srun_local_completes(slurm, tmp_path):
    out = tmp_path / "out.json"
    job = sbatch(tmp_path, f"srun {runner_line('local', BELL, '-o', out)}\n", _submit_env())
    info = wait_final(job)
    log = job_output(tmp_path, job)
    assert info["JobState"] == "COMPLETED", (info, log)
    assert info["ExitCode"] == "0:0"
    from qiskit_ibm_runtime import RuntimeDecoder

    counts = json.loads(out.read_text(), cls=RuntimeDecoder)[0].data.meas.get_counts()
    assert set(counts) == {"00", "11"} and sum(counts.values()) == 1000
    assert "qrmi-task-runner INFO" in log and "completed" in log
    assert "__type__" not in log and "{" not in log  # no result JSON mixed into the log


def test_srun_debug_follows_srun_verbosity(slurm, tmp_path):
    quiet_out, verbose_out = tmp_path / "q.json", tmp_path / "v.json"
    script = (
        f"srun --quiet {runner_line('local', BELL, '-o', quiet_out)}\n"
        "echo ===== >&2\n"
        f"srun -v {runner_line('local', BELL, '-o', verbose_out)}\n"
    )
    job = sbatch(tmp_path, script, _submit_env())
    info = wait_final(job)
    log = job_output(tmp_path, job)
    assert info["JobState"] == "COMPLETED", (info, log)
    quiet, verbose = log.split("=====", 1)
    assert "qrmi-task-runner" not in quiet  # SRUN_DEBUG=2: errors only
    assert "qrmi-task-runner INFO" in verbose and "qrmi-task-runner DEBUG" in verbose
    assert quiet_out.exists() and verbose_out.exists()


def test_direct_access_job_completes(fake, tmp_path):
    fake.configure(job_seconds=1, fail_jobs=False)
    out = tmp_path / "out.json"
    job = sbatch(
        tmp_path, f"srun {runner_line(fake.backend, BELL, '-o', out)}\n", _submit_env(fake.env)
    )
    info = wait_final(job)
    assert info["JobState"] == "COMPLETED", (info, job_output(tmp_path, job))
    assert json.loads(out.read_text())["__type__"] == "PrimitiveResult"


def test_scancel_cancels_remote_job(fake, tmp_path):
    fake.configure(job_seconds=120, fail_jobs=False)
    before = len(fake.requests())
    out = tmp_path / "out.json"
    job = sbatch(
        tmp_path, f"srun {runner_line(fake.backend, BELL, '-o', out)}\n", _submit_env(fake.env)
    )
    deadline = time.monotonic() + 90
    while not any(j["status"] == "Running" for j in fake.jobs()["jobs"]):
        assert time.monotonic() < deadline, job_output(tmp_path, job)
        time.sleep(0.2)
    time.sleep(1.0)
    subprocess.run(["scancel", job], check=True, timeout=20)
    info = wait_final(job)
    log = job_output(tmp_path, job)
    assert info["JobState"] == "CANCELLED", (info, log)
    seen = fake.requests()[before:]
    cancels = [r for r in seen if r["method"] == "POST" and r["path"].endswith("/cancel")]
    deletes = [r for r in seen if r["method"] == "DELETE"]
    assert len(cancels) == 1 and len(deletes) == 1, seen
    assert re.search(r"received SIG(CONT|TERM); cancelling task", log), log
    assert not out.exists()


def test_failed_remote_job_fails_the_slurm_job(fake, tmp_path):
    fake.configure(job_seconds=0.5, fail_jobs=True)
    try:
        out = tmp_path / "out.json"
        job = sbatch(
            tmp_path, f"srun {runner_line(fake.backend, BELL, '-o', out)}\n", _submit_env(fake.env)
        )
        info = wait_final(job)
    finally:
        fake.configure(fail_jobs=False)
    log = job_output(tmp_path, job)
    assert info["JobState"] == "FAILED", (info, log)
    assert info["ExitCode"] == "1:0"
    assert "error: task" in log and "reason_code" in log
    assert not out.exists()


def test_requeue_reattaches_instead_of_resubmitting(fake, tmp_path):
    fake.configure(job_seconds=12, fail_jobs=False)
    before = len(fake.requests())
    out = tmp_path / "out.json"
    job = sbatch(
        tmp_path,
        f"srun {runner_line(fake.backend, BELL, '-o', out)}\n",
        _submit_env(fake.env),
        "--requeue",
        "--open-mode=append",
    )
    deadline = time.monotonic() + 90
    while not any(j["status"] == "Running" for j in fake.jobs()["jobs"]):
        assert time.monotonic() < deadline, job_output(tmp_path, job)
        time.sleep(0.2)
    subprocess.run(["scontrol", "requeue", job], check=True, timeout=20)
    # slurmctld holds a requeued batch job back (pending, reason BeginTime, about two
    # minutes); that wait says nothing about the runner, so let it start again early.
    # Not at once: slurmd refuses a job credential created in the same second as the
    # requeue revoked the old one (whole seconds; it logged "Job 237 already killed, do
    # not launch batch job" and the job FAILED), so start it in the next second.
    deadline = time.monotonic() + 30
    while (held := job_info(job)).get("Reason") != "BeginTime":
        assert time.monotonic() < deadline and held.get("JobState") not in FINAL, held
        time.sleep(0.2)
    time.sleep(max(0.0, math.floor(time.time()) + 1.2 - time.time()))
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True, timeout=20)
    info = wait_final(job, timeout=240)
    log = job_output(tmp_path, job)
    assert info["JobState"] == "COMPLETED", (info, log)
    assert int(info.get("Restarts", "0")) >= 1, info
    posts = [
        r
        for r in fake.requests()[before:]
        if r["method"] == "POST" and r["path"] == "/v1/jobs" and r["status"] == 204
    ]
    assert len(posts) == 1, posts
    assert "attached to existing job" in log, log
    assert json.loads(out.read_text())["__type__"] == "PrimitiveResult"


def test_srun_n3_with_one_payload_makes_three_remote_tasks(fake, tmp_path):
    """Each task of a step has its own requeue-safe id (SLURM_PROCID is part of it)."""
    fake.configure(job_seconds=1, fail_jobs=False)
    before = len(fake.requests())
    line = runner_line(fake.backend, BELL, "-o", tmp_path / "out_$SLURM_PROCID.json")
    job = sbatch(
        tmp_path,
        f"srun -n 3 --overcommit bash -c '{line}'\n",
        _submit_env(fake.env),
        "-n",
        "3",
        "--overcommit",
    )
    info = wait_final(job)
    log = job_output(tmp_path, job)
    assert info["JobState"] == "COMPLETED", (info, log)
    created = {
        r["path"]
        for r in fake.requests()[before:]
        if r["method"] == "DELETE" and r["status"] in (200, 204)
    }
    posts = [
        r
        for r in fake.requests()[before:]
        if r["method"] == "POST" and r["path"] == "/v1/jobs" and r["status"] == 204
    ]
    assert len(posts) == 3 and len(created) == 3, (posts, created, log)
    for rank in range(3):
        assert json.loads((tmp_path / f"out_{rank}.json").read_text())["__type__"] == (
            "PrimitiveResult"
        )
