"""scancel lands whatever the runner is doing: SIGTERM in every state, for every provider.

Each case starts the real CLI against a provider's fake, puts the run in one state with an
injected fault (a create whose answer never comes, a hung or slow-drip status read, a
throttled status read the library sleeps on, a hung result download) or a long job, sends
SIGTERM and checks the README's budget: the cancel request reaches the fake within 1 s,
the process exits 143 within 5 s, and Direct Access also deletes the job.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fakes import (
    alice_bob_felis,
    direct_access,
    iqm_server,
    pasqal_cloud,
    pasqal_local,
    qiskit_runtime,
)
from fakes.munge_daemon import ensure_munged
from fakes.s3_proxy import S3Proxy
from fakes.server import FakeServer
from helpers import EXAMPLES, clean_env, start_runner, wait_for
from payloads import write_pulser_payload

pytestmark = pytest.mark.timeout(120)

BELL = EXAMPLES / "qiskit" / "bell_sampler.json"
RUNTIME_API = qiskit_runtime.API


@dataclass
class Provider:
    """One provider's fake, the runner's environment and the routes of each state."""

    name: str
    fake: FakeServer
    env: dict[str, str]
    resource: str
    payload: str
    create: dict[str, Any]  # fault selector of the create request
    status: dict[str, Any]  # of a status read
    result: dict[str, Any]  # of the result download
    cancel: tuple[str, str]  # method, path regex of the cancel request
    delete: tuple[str, str] | None = None
    result_fake: FakeServer | None = None  # where results are downloaded, if not ``fake``
    # whether a job whose create answer never came can be found (by tag); IQM Server and the
    # Pasqal warden have no job listing of ours: the runner can only name the request id
    # (docs/iqm-server.md, docs/pasqal-local.md)
    finds_lost_creates: bool = True

    @property
    def results(self) -> FakeServer:
        return self.result_fake or self.fake


@pytest.fixture(scope="module")
def pulser_payload(tmp_path_factory) -> str:
    return str(write_pulser_payload(tmp_path_factory.mktemp("pulser") / "seq.json", runs=50))


@pytest.fixture(scope="module")
def iqm_payload(tmp_path_factory) -> str:
    return str(iqm_server.bell_payload(tmp_path_factory.mktemp("iqm") / "bell.json"))


@pytest.fixture(scope="module")
def qir_payload(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("qir") / "bell.json"
    qir = alice_bob_felis.bell_qir()
    path.write_text(f'{{"human_qir": {json.dumps(qir)}, "input_params": {{"nbShots": 100}}}}')
    return str(path)


@pytest.fixture(
    params=[
        "direct-access",
        "qiskit-runtime",
        "pasqal-cloud",
        "pasqal-local",
        "iqm-server",
        "alice-bob-felis",
    ]
)
def provider(request, s3_url, pulser_payload, iqm_payload, qir_payload) -> Iterator[Provider]:
    if request.param == "direct-access":
        fake = direct_access.FakeDirectAccess(("fake_heron",), job_seconds=60).start()
        # the runner reaches S3 through a faultable proxy; the service, as on a real site,
        # reaches it under another name (the presigned URLs go straight to moto)
        proxy = S3Proxy(s3_url).start()
        env = direct_access.runner_env("fake_heron", fake.url, proxy.url)
        env["fake_heron_QRMI_IBM_DA_S3_ENDPOINT_FOR_DAAPI"] = s3_url
        yield Provider(
            "direct-access",
            fake,
            clean_env(**env),
            "fake_heron",
            str(BELL),
            create={"method": "POST", "match": "/v1/jobs"},
            status={"method": "GET", "match": "/v1/jobs/[^/]+"},
            result={"method": "GET", "match": "/[^/]+/results_[^/]+[.]json"},
            cancel=("POST", r"/v1/jobs/[^/]+/cancel"),
            delete=("DELETE", r"/v1/jobs/[^/]+"),
            result_fake=proxy,
        )
        proxy.stop()
    elif request.param == "qiskit-runtime":
        fake = qiskit_runtime.FakeQiskitRuntime(("ibm_fake",), job_seconds=60).start()
        yield Provider(
            "qiskit-runtime",
            fake,
            clean_env(**qiskit_runtime.runner_env("ibm_fake", fake)),
            "ibm_fake",
            str(BELL),
            create={"method": "POST", "match": RUNTIME_API + "/jobs"},
            status={"method": "GET", "match": RUNTIME_API + "/jobs/[^/]+"},
            result={"method": "GET", "match": RUNTIME_API + "/jobs/[^/]+/results"},
            cancel=("POST", RUNTIME_API + r"/jobs/[^/]+/cancel"),
        )
    elif request.param == "iqm-server":
        fake = iqm_server.FakeIQMServer(job_seconds=60).start()
        qc = iqm_server.QC_ALIAS
        yield Provider(
            "iqm-server",
            fake,
            clean_env(**iqm_server.runner_env(fake.endpoint)),
            iqm_server.RESOURCE,
            iqm_payload,
            create={"method": "POST", "match": f"/api/v1/jobs/{qc}/circuit"},
            status={"method": "GET", "match": "/api/v1/jobs/[^/]+"},
            result={"method": "GET", "match": "/api/v1/jobs/[^/]+/artifacts/[^/]+"},
            cancel=("POST", r"/api/v1/jobs/[^/]+/cancel"),
            finds_lost_creates=False,
        )
    elif request.param == "alice-bob-felis":
        fake = alice_bob_felis.FakeFelis(job_seconds=60).start()
        name = "ab_emu_6q_physical_cats"
        yield Provider(
            "alice-bob-felis",
            fake,
            clean_env(**alice_bob_felis.runner_env(name, fake)),
            name,
            qir_payload,
            # Felis jobs carry no label of ours: a create whose answer never comes cannot
            # be found (its job has no program and never runs). The submission's state in
            # which a job exists is the program's upload: its answer is the one that hangs.
            create={"method": "POST", "match": "/v1/jobs/[^/]+/input"},
            status={"method": "GET", "match": "/v1/jobs/[^/]+"},
            result={"method": "GET", "match": "/v1/jobs/[^/]+/output"},
            cancel=("DELETE", r"/v1/jobs/[^/]+"),
        )
    elif request.param == "pasqal-local":
        reason = ensure_munged()
        if reason is not None:
            pytest.skip(f"the warden authenticates with MUNGE: {reason}")
        fake = pasqal_local.FakeWarden(job_seconds=60).start()
        session = "plugin-session-1"
        fake.sessions[session] = {"user_id": "0", "slurm_job_id": "1"}
        yield Provider(
            "pasqal-local",
            fake,
            clean_env(**pasqal_local.runner_env("PASQAL_LOCAL", fake.url, session)),
            "PASQAL_LOCAL",
            pulser_payload,
            create={"method": "POST", "match": "/jobs"},
            status={"method": "GET", "match": r"/jobs/\d+"},
            # the download shares the status read's route: only after a read said DONE
            result={"method": "GET", "match": r"/jobs/\d+", "job_done": True},
            cancel=("POST", r"/jobs/\d+/cancel"),
            # a warden job carries no tag of the run: a create whose answer never comes
            # cannot be found (tests/test_pasqal_local.py covers a late answer too)
            finds_lost_creates=False,
        )
    else:
        fake = pasqal_cloud.FakePasqalCloud(job_seconds=60).start()
        yield Provider(
            "pasqal-cloud",
            fake,
            clean_env(**pasqal_cloud.runner_env("EMU_MPS", fake.core_url)),
            "EMU_MPS",
            pulser_payload,
            create={"method": "POST", "match": "/core/api/v1/batches"},
            status={"method": "GET", "match": "/core/api/v2/batches/[^/]+"},
            result={"method": "GET", "match": "/results/[^/]+"},
            cancel=("PATCH", r"/core/api/v2/batches/[^/]+/cancel"),
        )
    fake.stop()


def _seen(fake: FakeServer, selector: dict[str, Any]) -> bool:
    import re

    return any(
        r["method"] == selector["method"] and re.fullmatch(selector["match"], r["path"])
        for r in list(fake.requests)
    )


def _terminate(p: Provider, proc, tmp_path) -> tuple[float, float, str]:
    """SIGTERM now; returns (seconds to exit, seconds to the first cancel, stderr)."""
    sent_wall, sent = time.time(), time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    exited = time.monotonic() - sent
    cancels = p.fake.calls(*p.cancel)
    first = min((r["time"] for r in cancels), default=None)
    return exited, (first - sent_wall) if first is not None else float("inf"), stderr


STATES = ["submit", "poll", "blocked-read", "slow-drip", "retry-sleep", "download"]


@pytest.mark.parametrize("state", STATES)
def test_sigterm_in_every_state(provider, state, tmp_path):
    p = provider
    fake = p.fake
    if state == "download":
        fake.configure(job_seconds=0.2)
        p.results.configure(faults=[{**p.result, "hang": True}])
    elif state == "submit":  # created, but its answer never comes back
        fake.configure(faults=[{**p.create, "hang": True, "after": True}])
    elif state == "blocked-read":
        fake.configure(faults=[{**p.status, "hang": True}])
    elif state == "slow-drip":
        fake.configure(faults=[{**p.status, "drip": 2.0}])
    elif state == "retry-sleep":  # every library honours Retry-After on these
        status = 503 if p.name == "qiskit-runtime" else 429
        fake.configure(faults=[{**p.status, "status": status, "retry_after": 30}])
    out = tmp_path / "out.json"
    out.write_text("old\n")
    proc = start_runner(p.resource, p.payload, "-o", str(out), env=p.env)

    if state == "poll":
        wait_for(lambda: _seen(fake, p.status), "the first status read", proc)
        time.sleep(0.5)  # between two polls now
    elif state == "submit":
        wait_for(lambda: _seen(fake, p.create), "the create request", proc)
        time.sleep(0.3)
    else:
        where, sel = (p.results, p.result) if state == "download" else (fake, p.status)
        # a hung download is logged with status 0 (its route may also serve status reads)
        answered = (0,) if state == "download" else (0, 200, 429, 503)
        wait_for(
            lambda: any(r.get("status") in answered for r in _calls(where, sel)),
            f"the faulted request ({state})",
            proc,
        )
        time.sleep(0.3)
    exited, to_cancel, stderr = _terminate(p, proc, tmp_path)

    assert proc.returncode == 143, stderr
    assert exited < 5.0, f"exit took {exited:.2f}s: {stderr}"
    assert "Traceback" not in stderr
    assert out.read_text() == "old\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out.json"]  # no temp file left
    if state == "download":  # the task is complete: nothing to cancel, the result is kept
        assert "result not written (kept on the provider)" in stderr, stderr
        assert fake.calls(*p.cancel) == []
        return
    if state == "submit" and not p.finds_lost_creates:  # nothing finds the job: say so
        assert "its task carries request id" in stderr, stderr
        assert fake.calls(*p.cancel) == []
        return
    assert to_cancel < 1.0, f"cancel reached the fake {to_cancel:.2f}s after SIGTERM: {stderr}"
    if p.delete is not None:
        assert fake.calls(*p.delete), f"no DELETE after the cancel: {stderr}"


def _calls(fake: FakeServer, selector: dict[str, Any]) -> list[dict[str, Any]]:
    return fake.calls(selector["method"], selector["match"])


def test_cancel_answered_503_once_is_retried_and_lands(provider, tmp_path):
    p = provider
    method, regex = p.cancel
    p.fake.configure(faults=[{"method": method, "match": regex, "status": 503}])
    proc = start_runner(p.resource, p.payload, env=p.env)
    wait_for(lambda: _seen(p.fake, p.status), "the first status read", proc)
    time.sleep(0.3)
    exited, _, stderr = _terminate(p, proc, tmp_path)
    assert proc.returncode == 143, stderr
    assert exited < 5.0, stderr
    statuses = [r["status"] for r in p.fake.calls(method, regex)]
    assert statuses[0] == 503 and any(s in (200, 202, 204) for s in statuses[1:]), (
        statuses,
        stderr,
    )
    assert "cancel requested" in stderr
    if p.delete is not None:
        assert p.fake.calls(*p.delete), stderr
