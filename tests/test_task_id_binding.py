"""Issue 25, hostile input: a task id reused for another payload is refused (exit 2) before
the task it names is taken over, for the types that find their task by id or tag (Direct
Access, Qiskit Runtime, Pasqal Cloud): the real CLI in this process against each fake.

Each case: payload A under ``--task-id X`` runs; payload B under X is refused with one line
and neither creates a task nor fetches a result (the fakes' request logs); A under X again
attaches to the first task and gets its result. The journaled types' refusal is
tests/test_journal.py's.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fakes import direct_access, pasqal_cloud, qiskit_runtime
from fakes.s3_proxy import S3Proxy
from fakes.server import FakeServer
from helpers import EXAMPLES, clean_env
from payloads import write_pulser_payload

from qrmi_tasks import binding
from qrmi_tasks.errors import UsageError
from qrmi_tasks.payload import load_payload
from qrmi_tasks.providers.ibm.da_storage import digest_of_job

pytestmark = pytest.mark.timeout(120)
SAMPLER = EXAMPLES / "qiskit" / "bell_sampler.json"
ESTIMATOR = EXAMPLES / "qiskit" / "bell_estimator.json"
RUNTIME = qiskit_runtime.API


@dataclass
class Case:
    """One resource type's fake, and where its log shows a create and a result fetch."""

    resource: str
    fake: FakeServer
    env: dict[str, str]
    payloads: tuple[Path, Path]
    create: tuple[str, str]
    results: list[tuple[FakeServer, str, str]]
    #: what the first run needs so that its task is still there for the reruns
    keep_task: Callable[[str], None] = lambda task_id: None
    #: the labels (tags, input object's name) the service keeps of a task id's task
    labels: Callable[[str], list[str]] = field(default=lambda task_id: [])

    def count(self, method: str, path: str) -> int:
        return len(self.fake.calls(method, path))

    def fetches(self) -> int:
        return sum(len(server.calls(method, path)) for server, method, path in self.results)


@pytest.fixture(scope="module", params=["direct-access", "qiskit-runtime", "pasqal-cloud"])
def case(request, s3_url, tmp_path_factory) -> Iterator[Case]:
    """One fake per type for the module; each test uses task ids of its own."""
    if request.param == "direct-access":
        fake = direct_access.FakeDirectAccess(("fake_heron",), job_seconds=0.1).start()
        proxy = S3Proxy(s3_url).start()  # its log shows the result downloads
        env = direct_access.runner_env("fake_heron", fake.url, proxy.url)
        env["fake_heron_QRMI_IBM_DA_S3_ENDPOINT_FOR_DAAPI"] = s3_url

        def keep(task_id: str) -> None:
            # the first run's DELETE is lost (404), as when a run dies before its cleanup
            fake.configure(
                faults=[{"method": "DELETE", "path": f"/v1/jobs/{task_id}", "status": 404}]
            )

        def input_names(task_id: str) -> list[str]:
            job = fake.jobs[task_id]
            return [job["storage"]["input"]["presigned_url"].split("?")[0].rsplit("/", 1)[-1]]

        yield Case(
            "fake_heron",
            fake,
            env,
            (SAMPLER, ESTIMATOR),
            ("POST", "/v1/jobs"),
            [(proxy, "GET", r"/[^/]+/results_[^/]+[.]json")],
            keep,
            input_names,
        )
        proxy.stop()
    elif request.param == "qiskit-runtime":
        fake = qiskit_runtime.FakeQiskitRuntime(("ibm_fake",), job_seconds=0.1).start()

        def runtime_tags(task_id: str) -> list[str]:
            (job,) = [j for j in fake.jobs.values() if f"qrmi-{task_id}" in j["tags"]]
            return job["tags"]

        yield Case(
            "ibm_fake",
            fake,
            qiskit_runtime.runner_env("ibm_fake", fake, TIMEOUT_SECONDS="420"),
            (SAMPLER, ESTIMATOR),
            ("POST", RUNTIME + "/jobs"),
            [(fake, "GET", RUNTIME + "/jobs/[^/]+/results")],
            labels=runtime_tags,
        )
    else:
        fake = pasqal_cloud.FakePasqalCloud(job_seconds=0.1).start()
        folder = tmp_path_factory.mktemp("pulser")

        def batch_tags(task_id: str) -> list[str]:
            (batch,) = [b for b in fake.batches.values() if f"qrmi:{task_id}" in b["tags"]]
            return batch["tags"]

        yield Case(
            "EMU_FREE",
            fake,
            pasqal_cloud.runner_env("EMU_FREE", fake.core_url),
            (
                write_pulser_payload(folder / "a.json", runs=40),
                write_pulser_payload(folder / "b.json", runs=41),
            ),
            ("POST", "/core/api/v1/batches"),
            [
                (fake, "GET", "/core/api/v1/jobs/[^/]+/results_link"),
                (fake, "GET", "/results/[^/]+"),
            ],
            labels=batch_tags,
        )
    fake.stop()


def _task_id() -> str:
    return f"mine-{uuid.uuid4().hex[:8]}"


def test_a_task_id_reused_for_another_payload_is_refused_before_it_is_attached(
    case, in_process, tmp_path
):
    in_process.use_env(clean_env(**case.env))
    task_id = _task_id()
    a, b = case.payloads
    first_out, refused_out, again_out = (tmp_path / n for n in ("a.json", "b.json", "again.json"))
    case.keep_task(task_id)

    first = in_process.run(case.resource, a, "-o", first_out, "--task-id", task_id)
    assert first.code == 0, first.stderr
    digest = load_payload(a).digest
    # the task carries A's digest where the service keeps our labels
    assert any(binding.short(digest) in text for text in case.labels(task_id))
    creates, fetches = case.count(*case.create), case.fetches()
    requests = len(case.fake.requests)
    others = {id(server): len(server.requests) for server, _, _ in case.results}

    refused = in_process.run(case.resource, b, "-o", refused_out, "--task-id", task_id)
    assert refused.code == 2, refused.stderr
    (line,) = refused.errors()
    assert f"task id {task_id} already names task " in line
    assert f"sha256 {digest[:12]}, this one {load_payload(b).digest[:12]}" in line
    assert "choose another --task-id, or rerun the same payload" in line
    # nothing created, fetched, cancelled or deleted: only lookups (and a token)
    assert case.count(*case.create) == creates and case.fetches() == fetches
    later = case.fake.requests[requests:]
    assert all(r["method"] == "GET" or _is_token(r["path"]) for r in later), later
    for server, _, _ in case.results:
        if server is not case.fake:  # Direct Access's S3: no upload, no download
            assert len(server.requests) == others[id(server)]
    assert not refused_out.exists() and "attached to" not in refused.stderr

    again = in_process.run(case.resource, a, "-o", again_out, "--task-id", task_id)
    assert again.code == 0, again.stderr
    assert "attached to existing job" in again.stderr
    assert case.count(*case.create) == creates  # no second task
    assert again_out.read_bytes() == first_out.read_bytes()  # the first task's own result


def _is_token(path: str) -> bool:
    """A token exchange (IAM, Pasqal's auth): a lookup's credentials, not a task."""
    return bool(re.search(r"/identity/token|/oauth/token|/auth", path))


def test_a_task_without_a_digest_is_refused_unless_its_id_came_from_the_payload():
    digest = "ab" * 32
    binding.check("mine-1", "job-1", "ibm_fake", digest, binding.short(digest), False)
    binding.check("uuid5-id", "job-1", "ibm_fake", digest, None, True)  # a Slurm requeue
    with pytest.raises(UsageError) as refused:
        binding.check("mine-1", "job-1", "ibm_fake", digest, None, False)
    assert refused.value.exit_code == 2
    assert "task id mine-1 already names task job-1 on ibm_fake" in refused.value.message
    assert "carries no payload digest" in refused.value.message
    with pytest.raises(
        UsageError, match="another payload"
    ):  # another digest, even for an id derived from it
        binding.check("uuid5-id", "job-1", "ibm_fake", digest, "cd" * 8, True)


def test_a_digest_label_is_read_only_when_it_is_the_only_one():
    digest = "0123456789abcdef" + "0" * 48
    own = "qrmi-digest-fedcba9876543210"  # the task id "digest-fedcba9876543210"'s own tag
    assert binding.digest_in([own, binding.label(digest)], ignore=own) == binding.short(digest)
    assert binding.digest_in(["qrmi-x", "qrmi-digest-0123"]) is None  # too short
    two = [binding.label(digest), binding.label("f" * 64)]
    assert binding.digest_in(two) is None


@pytest.mark.parametrize(
    ("name", "found"),
    [
        ("input_job.1.sha256-0123456789abcdef.json", "0123456789abcdef"),
        ("input_job.1.json", None),  # an older version's name: no digest
        ("input_other.sha256-0123456789abcdef.json", None),  # another job's object
    ],
)
def test_a_direct_access_job_names_its_digest_in_its_input_object(name, found):
    job: dict[str, Any] = {
        "id": "job.1",
        "storage": {"input": {"presigned_url": f"http://s3.invalid/bucket/{name}?X-Amz-S=0"}},
    }
    assert digest_of_job(job) == found


def test_the_runner_takes_over_no_task_of_another_payload(scripted, tmp_path):
    """The rule is the runner's (any provider that reports a digest): refused before any
    status, result, cancel or cleanup; a signal during such a submission cancels nothing."""
    import os
    import signal
    import time

    import scripted as sp

    def signalled(answer: sp.Attached) -> Callable[[], sp.Attached]:
        def step() -> sp.Attached:  # the answer comes just after the signal
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)
            return answer

        return step

    digest = load_payload(SAMPLER).digest
    script = scripted.script
    script.submit = [sp.Attached("task-a", "f" * 16)]
    refused = scripted.run(sp.RESOURCE, SAMPLER, "--task-id", "mine-1")
    assert refused.code == 2, refused.stderr
    assert [name for name, _ in script.calls] == ["submit", "close"]
    script.calls.clear()
    script.submit = [signalled(sp.Attached("task-a", "f" * 16))]
    stopped = scripted.run(sp.RESOURCE, SAMPLER, "--task-id", "mine-1")
    assert stopped.code == 143, stopped.stderr
    assert "task task-a left alone: task id mine-1 already names task task-a" in stopped.stderr
    assert [name for name, _ in script.calls] == ["submit", "close"]
    script.calls.clear()
    script.submit = [signalled(sp.Attached("task-a", binding.short(digest)))]
    ours = scripted.run(sp.RESOURCE, SAMPLER, "--task-id", "mine-1")
    assert ours.code == 143, ours.stderr
    assert ("cancel", "task-a") in script.calls  # its own payload's task: cancelled
