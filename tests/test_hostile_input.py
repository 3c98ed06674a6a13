"""Hostile or careless input (issue 25): refused locally with one line, or made harmless.

Each part names the attack it covers. Most run the CLI in this process (``in_process``);
fakes are real HTTP servers on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
from pathlib import Path

import pytest
import scripted as sp
from fakes.server import FakeServer, Request
from helpers import EXAMPLES, assert_clean_error, clean_env, run_runner

BELL = str(EXAMPLES / "qiskit" / "bell_sampler.json")


class PathRecorder(FakeServer):
    """Answers every request with 404 and keeps the raw request target (path and query)."""

    def route(self, request: Request) -> tuple[int, object]:
        with self.lock:
            self.config.setdefault("targets", []).append(request.target)
        return 404, {"detail": "no such job"}


# -- 1. --task-id: one rule, checked before anything else; ids quoted in URL paths ----------


@pytest.mark.parametrize(
    "task_id",
    ["q?x=1#frag", "../jobs", "a/b", "-leading-dash", "", "x" * 46, "tab\there", "é"],
)
def test_a_bad_task_id_is_refused_before_any_connection(in_process, listener, task_id):
    in_process.use_env(clean_env(http_proxy=listener.url, https_proxy=listener.url))
    proc = in_process.run("local", BELL, "--task-id", task_id)
    assert_clean_error(proc, "--task-id", "1 to 45 characters")
    assert listener.count == 0


@pytest.mark.parametrize("task_id", ["run-7", "a", "x" * 45, "job.2026:01_b-c"])
def test_every_provider_carries_a_valid_task_id_unchanged(task_id):
    from qrmi_tasks.providers.iqm.server import TAG_PREFIX as IQM
    from qrmi_tasks.runner import check_task_id

    check_task_id(task_id)  # accepted: no exception
    assert len(IQM + task_id) <= 50  # the longest prefix within IQM Server's tag limit


def test_direct_access_quotes_the_job_id_in_its_paths():
    from qrmi_tasks.providers.ibm.direct_access import _job_path

    assert _job_path("q?x=1#frag") == "/v1/jobs/q%3Fx%3D1%23frag"
    assert _job_path("a/../b", "cancel") == "/v1/jobs/a%2F..%2Fb/cancel"


def test_felis_quotes_the_job_id_in_its_paths():
    from qrmi_tasks.providers.alice_bob.felis_client import FelisClient, FelisHttpError

    server = PathRecorder().start()
    try:
        client = FelisClient(server.url, "key")
        with pytest.raises(FelisHttpError):
            client.cancel("q?x=1#frag")
        assert server.config["targets"] == ["/v1/jobs/q%3Fx%3D1%23frag"]
    finally:
        server.stop()


# -- 2. -o/--logs on a device, a FIFO or a symlink: never replaced by a rename --------------


def _fifo_reader(path: Path) -> tuple[threading.Thread, list[bytes]]:
    received: list[bytes] = []

    def read() -> None:
        with open(path, "rb") as fifo:
            received.append(fifo.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, received


def test_a_result_and_logs_to_dev_null_leave_the_device_alone(scripted, monkeypatch):
    monkeypatch.setattr(sp.ScriptedProvider, "has_logs", True)
    done = scripted.run(sp.RESOURCE, BELL, "-o", "/dev/null", "--logs", "/dev/zero")
    assert done.returncode == 0, done.stderr
    for device in ("/dev/null", "/dev/zero"):
        assert stat.S_ISCHR(os.lstat(device).st_mode), f"{device} was replaced"
    assert scripted.script.count("logs") == 1


def test_a_result_into_a_fifo_is_streamed_and_the_fifo_stays(scripted, tmp_path):
    fifo = tmp_path / "result.fifo"
    os.mkfifo(fifo)
    reader, received = _fifo_reader(fifo)
    done = scripted.run(sp.RESOURCE, BELL, "-o", str(fifo))
    assert done.returncode == 0, done.stderr
    reader.join(10)
    assert received == [sp.RESULT] and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["result.fifo"]  # no temporary left


def test_a_symlink_is_followed_and_its_target_replaced(scripted, tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    real = real_dir / "out.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    done = scripted.run(sp.RESOURCE, BELL, "-o", str(link))
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == sp.RESULT
    assert sorted(p.name for p in real_dir.iterdir()) == ["out.json"]


def test_a_dangling_symlink_creates_its_target(scripted, tmp_path):
    real = tmp_path / "new.json"
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert scripted.run(sp.RESOURCE, BELL, "-o", str(link)).returncode == 0
    assert link.is_symlink() and real.read_bytes() == sp.RESULT


def test_a_socket_as_output_is_refused(in_process, tmp_path):
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        proc = in_process.run("local", BELL, "-o", str(path))
    assert_clean_error(proc, "neither a regular file, a character device nor a FIFO")


def test_a_result_to_dev_stdout_reaches_stdout_and_the_link_stays():
    # a process: /dev/stdout must be the runner's own stdout, a pipe the test reads
    before = os.readlink("/dev/stdout")
    proc = run_runner("local", BELL, "-o", "/dev/stdout")
    assert proc.returncode == 0, proc.stderr
    from qiskit_ibm_runtime import RuntimeDecoder

    counts = json.loads(proc.stdout, cls=RuntimeDecoder)[0].data.meas.get_counts()
    assert set(counts) == {"00", "11"}  # the Bell circuit, run
    assert os.readlink("/dev/stdout") == before
