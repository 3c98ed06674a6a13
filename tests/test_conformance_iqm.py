"""The fake IQM Server answers as the recorded public sources say the service does.

``tests/conformance/iqm`` records the IQM Server API's shapes from sources nobody here
wrote (qrmi@b2ed2e5's generated OpenAPI client ``dependencies/iqm_client``, IQM's
station-control-client and iqm-client packages; ``SOURCES.md``). These tests drive the
fake over HTTP through a job's life and check every answer against those records, and
check that the provider maps every documented status.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
import requests
from fakes.iqm_server import API, QC_ALIAS, TOKEN, FakeIQMServer, bell_payload, conformance

from qrmi_tasks.providers.iqm.server import ARTIFACTS, STATUSES

pytestmark = pytest.mark.timeout(60)
_TYPES = {"str": str, "int": int, "dict": dict, "list": list, "bool": bool}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def fake():
    server = FakeIQMServer(job_seconds=0.2).start()
    yield server
    server.stop()


def _check(record: dict[str, Any], body: dict[str, Any], where: str) -> None:
    missing = [f for f in record["required"] if f not in body]
    assert not missing, f"{where}: {missing} missing"
    for name, kind in record.get("types", {}).items():
        assert isinstance(body[name], _TYPES[kind]), f"{where}: {name}={body[name]!r}"


def _check_job(body: dict[str, Any], where: str) -> None:
    record = conformance("job")
    _check(record, body, where)
    assert body["status"] in record["status_enum"], where
    for path, fields in record["item_required"].items():
        items = body.get(path[:-2]) or [] if path.endswith("[]") else [body[path]]
        for item in items:
            assert set(fields) <= set(item), f"{where}.{path}: {item}"


def _check_error(response: requests.Response, route: str) -> None:
    record = conformance("errors")
    body = response.json()
    _check(record, body, f"{route} {response.status_code}")
    allowed = record["routes"][route][str(response.status_code)]
    assert body["error_code"] in allowed, (route, response.status_code, body)


def _submit(fake: FakeIQMServer, tmp_path, **query: str) -> requests.Response:
    body = bell_payload(tmp_path / "bell.json").read_text()
    job = json.dumps(json.loads(body)["iqmjson"])
    return requests.post(
        f"{fake.url}{API}/jobs/{QC_ALIAS}/circuit",
        params={"use_timeslot": "false", **query},
        data=job,
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=10,
    )


def test_a_jobs_life_and_its_artifacts(fake, tmp_path):
    created = _submit(fake, tmp_path, tag="qrmi-conformance")
    assert created.status_code == 200
    job = created.json()
    _check_job(job, "submit")
    assert job["tag"] == "qrmi-conformance" and job["status"] == "waiting"
    # qrmi's long poll: the answer comes when the job ends
    started = time.monotonic()
    ended = requests.get(
        f"{fake.url}{API}/jobs/{job['id']}",
        params={"wait_until_terminal": "true", "timeout_seconds": "30"},
        headers=AUTH,
        timeout=40,
    )
    assert time.monotonic() - started < 10
    _check_job(ended.json(), "get")
    assert ended.json()["status"] == "completed"
    assert {a["type"] for a in ended.json()["artifacts"]} == set(ARTIFACTS)
    record = conformance("artifacts")
    assert sorted(ARTIFACTS) == record["result_document_keys"]
    measurements = requests.get(
        f"{fake.url}{API}/jobs/{job['id']}/artifacts/measurements", headers=AUTH, timeout=10
    ).json()
    counts = requests.get(
        f"{fake.url}{API}/jobs/{job['id']}/artifacts/measurement_counts", headers=AUTH, timeout=10
    ).json()
    assert isinstance(measurements, list) and isinstance(counts, list)
    for circuit in measurements:
        for key, shots in circuit.items():
            assert all(bit in (0, 1) for shot in shots for bit in shot), key
    for circuit in counts:
        assert set(record["artifacts"]["measurement_counts"]["item_required"]) <= set(circuit)
        width = sum(len(measurements[0][k][0]) for k in circuit["measurement_keys"])
        assert all(re.fullmatch(f"[01]{{{width}}}", bits) for bits in circuit["counts"])
    # a final job cannot be cancelled
    refused = requests.post(f"{fake.url}{API}/jobs/{job['id']}/cancel", headers=AUTH, timeout=10)
    assert refused.status_code == 403
    _check_error(refused, "POST /api/v1/jobs/{job_id}/cancel")


def test_cancel_answers_the_cancelled_job(fake, tmp_path):
    fake.configure(job_seconds=30)
    try:
        job = _submit(fake, tmp_path).json()
        cancelled = requests.post(
            f"{fake.url}{API}/jobs/{job['id']}/cancel", headers=AUTH, timeout=10
        )
        assert cancelled.status_code == 200
        _check_job(cancelled.json(), "cancel")
        assert cancelled.json()["status"] == "cancelled"
    finally:
        fake.configure(job_seconds=0.2)


def test_error_bodies_per_route(fake, tmp_path):
    jobs = f"{fake.url}{API}/jobs"
    unknown = "00000000-0000-4000-8000-000000000000"
    checks = [
        (requests.get(f"{jobs}/{unknown}", headers={}, timeout=10), "GET /api/v1/jobs/{job_id}"),
        (requests.get(f"{jobs}/{unknown}", headers=AUTH, timeout=10), "GET /api/v1/jobs/{job_id}"),
        (
            requests.get(f"{jobs}/{unknown}/artifacts/measurements", headers=AUTH, timeout=10),
            "GET /api/v1/jobs/{job_id}/artifacts/{artifact_type}",
        ),
        (
            requests.post(f"{jobs}/{QC_ALIAS}/sweep", data="{}", headers=AUTH, timeout=10),
            "POST /api/v1/jobs/{qc}/{job_type}",
        ),
        (
            requests.post(f"{jobs}/{QC_ALIAS}/circuit", data="{}", headers=AUTH, timeout=10),
            "POST /api/v1/jobs/{qc}/{job_type}",
        ),
        (
            requests.post(f"{jobs}/nowhere:qc/circuit", data="{}", headers=AUTH, timeout=10),
            "POST /api/v1/jobs/{qc}/{job_type}",
        ),
    ]
    assert [r.status_code for r, _ in checks] == [401, 404, 404, 400, 400, 404]
    for response, route in checks:
        _check_error(response, route)


def test_dynamic_quantum_architecture(fake):
    record = conformance("dynamic_quantum_architecture")
    answer = requests.get(
        f"{fake.url}{API}/calibration-sets/{QC_ALIAS}/default/dynamic-quantum-architecture",
        headers=AUTH,
        timeout=10,
    ).json()
    _check(record, answer, "dqa")
    for name, gate in answer["gates"].items():
        assert set(record["gate_required"]) <= set(gate), name
        for impl in gate["implementations"].values():
            assert set(record["implementation_required"]) <= set(impl), name


def test_provider_maps_every_documented_status():
    assert sorted(STATUSES) == sorted(conformance("job")["status_enum"])
