"""Our Qiskit Runtime REST client (``providers/ibm/qiskit_runtime_api.py``) on the wire.

In this process, against the fake service (tests/fakes/qiskit_runtime.py) over HTTP:

* every request the client sends is one recorded in
  ``tests/conformance/ibm/qiskit_runtime/client_requests.json`` (what qiskit-ibm-runtime
  0.51 sends, per its sources, qrmi's generated client and IBM's REST reference): path,
  query, JSON body fields and headers; and every recorded request is sent;
* the shared IBM client's rule for a request that must not run twice (``POST /jobs``):
  re-posted after a 5xx IBM documents as safe, never after an answer that did not come.

What the provider does with these calls is covered through the CLI by
tests/test_qiskit_runtime.py and the shared tests (cancel matrix, request ids, outage).
"""

from __future__ import annotations

import json
import re
import time

import pytest
from fakes import conformance
from fakes.qiskit_runtime import API_KEY, SERVICE_CRN, FakeQiskitRuntime

from qrmi_tasks.providers.ibm.qiskit_runtime_api import RuntimeApi
from qrmi_tasks.providers.ibm.rest import Unavailable

pytestmark = pytest.mark.timeout(60)
BACKEND = "ibm_fake"
RECORD = conformance.body("qiskit_runtime/client_requests")
PARAMS = {"pubs": [["OPENQASM 3.0;"]], "version": 2}


@pytest.fixture(scope="module")
def fake():
    server = FakeQiskitRuntime(backends=(BACKEND,), job_seconds=0.1).start()
    # no circuit is run: these tests look at requests, not results
    server.configure(fixed_result='{"results": [], "metadata": {}}')
    yield server
    server.stop()


@pytest.fixture
def api(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # a token cache of its own
    fake.requests.clear()
    client = RuntimeApi(fake.api_url, fake.iam_url, API_KEY, SERVICE_CRN, pause=lambda s: None)
    yield client
    client.close()


def _template(path: str) -> str:
    """A recorded path as a regex of the path the fake sees (under ``/api/v1``)."""
    return "/api/v1" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path))


def _recorded(method: str, path: str) -> dict:
    found = [
        r
        for r in RECORD["requests"]
        if r["method"] == method and re.fullmatch(_template(r["path"]), path)
    ]
    assert found, f"{method} {path} is not a request qiskit-ibm-runtime 0.51 makes"
    return found[0]


def _check(sent: dict, spec: dict, tag: str) -> None:
    """One logged request against its record."""
    where = f"{spec['method']} {spec['path']}"
    for name, value in RECORD["headers"].items():
        assert name in sent["headers"], f"{where}: no {name} header"
        if not value.startswith("<"):
            assert sent["headers"][name].startswith(value), (where, name, sent["headers"][name])
    assert sent["headers"]["Service-CRN"] == SERVICE_CRN
    wanted = {
        key: [{"<backend>": BACKEND, "<tag>": tag}.get(v, v) for v in values]
        for key, values in spec["query"].items()
    }
    assert sent["query"] == wanted, where
    body = json.loads(sent["body"]) if sent["body"] else None
    if "json_required" not in spec:
        assert body is None, f"{where} sends no body"
        return
    assert sent["headers"].get("Content-Type") == "application/json", where
    assert set(spec["json_required"]) <= set(body), (where, body)
    assert set(body) <= set(spec["json_required"]) | set(spec["json_optional"]), (where, body)
    for key, value in spec.get("json_values", {}).items():
        assert body[key] == value, (where, key)


def test_every_request_is_the_recorded_one_and_every_recorded_one_is_made(api, fake, tmp_path):
    tag = "qrmi-6b1e2f"
    configuration, properties = api.backend_documents(BACKEND)
    assert configuration["backend_name"] and properties["backend_name"] == BACKEND
    session = api.create_session(BACKEND, "batch", max_ttl=600)["id"]
    job = api.create_job("sampler", BACKEND, PARAMS, 60, session, [tag, "qrmi-digest-0"])["id"]
    assert [j["id"] for j in api.find_jobs(tag, BACKEND)] == [job]
    assert api.job_state(job)["state"]["status"] in ("Queued", "Running", "Completed")
    fake.configure(job_seconds=30)  # still running when cancelled, however loaded the machine
    try:
        other = api.create_job("sampler", BACKEND, PARAMS, None, None, [tag])["id"]
    finally:
        fake.configure(job_seconds=0.1)
    assert api.cancel_job(other) is True
    assert api.cancel_job(other) is False  # 409: final already
    while api.job_state(job)["state"]["status"] != "Completed":
        time.sleep(0.02)  # the fake's job lasts 0.1 s
    with (tmp_path / "result.json").open("w+b") as out:
        size = api.stream_results(job, out)
        out.seek(0)
        assert out.read() == fake.results[job].encode() and size > 0
    api.close_session(session)
    assert fake.sessions[session]["accepting_jobs"] is False

    api_requests = [r for r in fake.requests if r["path"].startswith("/api/v1/")]
    used = set()
    for sent in api_requests:
        spec = _recorded(sent["method"], sent["path"])
        _check(sent, spec, tag)
        used.add(spec["name"])
    assert used == {r["name"] for r in RECORD["requests"]}
    first, second = fake.created
    assert first["cost"] == 60 and first["session_id"] == session and first["params"] == PARAMS
    assert "cost" not in second and "session_id" not in second  # unset: not sent


def test_create_is_reposted_after_a_safe_5xx_only(api, fake):
    fake.configure(faults=[{"method": "POST", "path": "/api/v1/jobs", "status": 503}])
    api.create_job("sampler", BACKEND, PARAMS, None, None, ["qrmi-a"])
    assert [r["status"] for r in fake.calls("POST", "/api/v1/jobs")] == [503, 200]

    fake.requests.clear()
    fake.configure(faults=[{"method": "POST", "path": "/api/v1/jobs", "drop": True}])
    with pytest.raises(Unavailable) as dropped:
        api.create_job("sampler", BACKEND, PARAMS, None, None, ["qrmi-b"])
    # the job may exist: another POST could run it twice (the provider's tag search finds it)
    assert len(fake.calls("POST", "/api/v1/jobs")) == 1 and dropped.value.status is None
