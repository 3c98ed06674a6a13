"""Hostile or careless input (issue 25): refused locally with one line, or made harmless.

Each part names the attack it covers. Most run the CLI in this process (``in_process``);
fakes are real HTTP servers on 127.0.0.1.
"""

from __future__ import annotations

import pytest
from fakes.server import FakeServer, Request
from helpers import EXAMPLES, assert_clean_error, clean_env

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
