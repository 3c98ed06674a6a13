"""The fake warden answers as the recorded public sources say the warden does.

``tests/conformance/pasqal_local`` records routes, fields, types and statuses from qrmi's
client for the warden (``SOURCES.md``). These tests drive the fake over HTTP with real
MUNGE credentials through a job's whole life and check every answer against the records,
so the fake cannot drift into our own reading of the API.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests
from fakes.munge_daemon import ensure_munged
from fakes.pasqal_local import CONFORMANCE, FakeWarden, conformance
from payloads import pulser_sequence_json

pytestmark = pytest.mark.timeout(120)
RECORDS = sorted(p.stem for p in CONFORMANCE.glob("*.json"))
_TYPES = {"str": str, "int": int, "bool": bool, "list": list, "null": type(None)}


def _check(name: str, body: Any, where: str) -> None:
    record = conformance(name)
    assert isinstance(body, dict), f"{where}: {body!r} is not an object"
    missing = [f for f in record.get("required", []) if f not in body]
    assert not missing, f"{where}: fields {missing} missing (record {name}.json)"
    for field, spec in record.get("types", {}).items():
        if field in body:
            allowed = tuple(_TYPES[t] for t in spec.split("|"))
            value = body[field]
            assert isinstance(value, allowed) and not (
                isinstance(value, bool) and bool not in allowed
            ), f"{where}: {field}={value!r} is not {spec}"
    if "status_enum" in record:
        assert body["status"] in record["status_enum"], f"{where}: {body['status']}"


@pytest.mark.parametrize("name", RECORDS)
def test_records_name_their_sources_and_examples_match_them(name):
    record = conformance(name)
    assert record["_source"], f"{name}.json names no source"
    if "example" in record:
        _check(name, record["example"], f"{name}.json example")
    if "request" in record and "example_request" in record:
        request = record["request"]
        assert set(request["required"]) <= set(record["example_request"])


def test_provider_handles_every_documented_status():
    from qrmi_tasks.providers.pasqal import local

    assert set(local.STATUSES) == set(conformance("job")["status_enum"])


@pytest.fixture
def fake():
    reason = ensure_munged()
    if reason is not None:
        pytest.skip(f"the warden authenticates with MUNGE: {reason}")
    server = FakeWarden(job_seconds=0.4).start()
    yield server
    server.stop()


def _api(fake: FakeWarden, method: str, path: str, **kwargs: Any) -> requests.Response:
    from qrmi_tasks.providers.pasqal.munge import credential

    headers = {"x-munge-cred": credential(), **kwargs.pop("headers", {})}
    return requests.request(method, fake.url + path, headers=headers, timeout=10, **kwargs)


def _create(fake: FakeWarden, session: str, shots: int = 30) -> dict[str, Any]:
    body = {"sequence": pulser_sequence_json(), "shots": shots}
    record = conformance("create_job")
    assert set(record["request"]["required"]) == set(body)
    header = {record["session_header"]: session}
    answer = _api(fake, "POST", "/jobs", json=body, headers=header)
    assert answer.status_code == 200, answer.text
    _check("job", answer.json(), "POST /jobs")
    assert answer.json()["status"] == record["initial_status"]
    return answer.json()


def test_a_job_conforms_from_session_to_result(fake):
    accessible = requests.get(fake.url + "/accessible", timeout=10)  # no credential
    _check("accessible", accessible.json(), "GET /accessible")
    opened = _api(fake, "POST", "/sessions", json=conformance("session")["example_request"])
    _check("session", opened.json(), "POST /sessions")
    session = opened.json()["id"]
    job = _create(fake, session)
    seen, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = _api(fake, "GET", f"/jobs/{job['id']}")
        _check("job", answer.json(), "GET /jobs/{id}")
        if not seen or seen[-1] != answer.json()["status"]:
            seen.append(answer.json()["status"])
        if seen[-1] == "DONE":
            break
        time.sleep(0.05)
    assert (
        seen[0] == "PENDING" and seen[-1] == "DONE" and set(seen) <= {"PENDING", "RUNNING", "DONE"}
    )
    results = json.loads(answer.json()["results"])  # a JSON string, as qrmi hands it on
    assert sum(results["counter"].values()) == 30
    listed = _api(fake, "GET", "/jobs").json()
    assert isinstance(listed, list)
    for item in listed:
        _check("job", item, "GET /jobs[]")
    logs = _api(fake, "GET", f"/jobs/{job['id']}/logs")
    _check("logs", logs.json(), "GET /jobs/{id}/logs")
    revoked = _api(fake, "DELETE", f"/sessions/{session}")
    _check("session", revoked.json(), "DELETE /sessions/{id}")


def test_cancel_specs_and_errors_conform(fake):
    from pulser.abstract_repr import deserialize_device

    session = _api(fake, "POST", "/sessions", json={"user_id": "1", "slurm_job_id": "2"}).json()
    fake.configure(job_seconds=30)
    job = _create(fake, session["id"])
    cancelled = _api(fake, "POST", f"/jobs/{job['id']}/cancel")
    _check("job", cancelled.json(), "POST /jobs/{id}/cancel")
    assert cancelled.json()["status"] == "CANCELED"
    specs = _api(fake, "GET", "/qpu/specs").json()
    _check("specs", specs, "GET /qpu/specs")
    device = json.loads(specs["specs"])
    assert set(conformance("specs")["specs_required"]) <= set(device)
    assert deserialize_device(specs["specs"]).name == device["name"]  # what qrmi's Pulser reads
    header = conformance("errors")["credential_header"]
    refused = requests.get(fake.url + "/jobs", headers={header: "forged"}, timeout=10)
    assert refused.status_code == 401
    _check("errors", refused.json(), "401")
    invalid = _api(
        fake, "POST", "/jobs", json={"shots": 3}, headers={"X-Warden-Session": session["id"]}
    )
    assert invalid.status_code == 422
    _check("errors", invalid.json(), "422")
