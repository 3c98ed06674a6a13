"""The fake Felis answers as the recorded public sources say the service does.

``tests/conformance/alice_bob`` records routes, fields, events and error shapes from
sources nobody here wrote (qrmi's generated Felis client, qiskit-alice-bob-provider's
recorded API bodies and enums; ``SOURCES.md``). These tests drive the fake over HTTP
through a job's life and check every answer against those records, and check that the
provider maps every documented event as qrmi does.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from fakes.alice_bob_felis import API_KEY, CONFORMANCE, FakeFelis, bell_qir, conformance

pytestmark = pytest.mark.timeout(120)
RECORDS = sorted(p.stem for p in CONFORMANCE.glob("*.json"))
_TYPES = {"str": str, "int": int, "bool": bool, "dict": dict, "list": list}


@pytest.fixture
def fake() -> Iterator[FakeFelis]:
    server = FakeFelis(job_seconds=0.3).start()
    yield server
    server.stop()


def _api(fake: FakeFelis, method: str, path: str, key: str = API_KEY, **kwargs: Any):
    headers = {"Authorization": f"Basic {key}"}
    return requests.request(method, fake.url + path, headers=headers, timeout=10, **kwargs)


def check_job(job: dict[str, Any], where: str) -> None:
    """A job answer against ``job.json`` (fields, types, events, errors)."""
    record = conformance("job")
    missing = [f for f in record["required"] if f not in job]
    assert not missing, f"{where}: fields {missing} missing"
    for name, kind in record["types"].items():
        assert isinstance(job[name], _TYPES[kind]), f"{where}: {name}={job[name]!r}"
    events = set(conformance("events")["events"]["qrmi_model"])
    for event in job["events"]:
        assert set(record["event_required"]) <= set(event), where
        assert event["type"] in events, f"{where}: event {event['type']}"
    for error in job["errors"]:
        assert set(record["error_required"]) <= set(error), where
        assert set(record["error_content_keys"]) <= set(error["content"]), where


def check_error(answer: requests.Response, kind: str) -> None:
    """An error answer against ``errors.json``: its status and Felis's or FastAPI's shape."""
    record = conformance("errors")
    assert answer.status_code == record["statuses"][kind], answer.text
    body = answer.json()
    if "error" in body:
        assert set(record["error_shape"]["error_required"]) <= set(body["error"])
    else:
        assert set(record["validation_shape"]["required"]) <= set(body)
        if isinstance(body["detail"], list):
            for item in body["detail"]:
                assert set(record["validation_shape"]["item_required"]) <= set(item)


def _watch(fake: FakeFelis, job_id: str) -> list[str]:
    """Poll ``GET /v1/jobs/{id}`` (each answer checked) until a final event; the events."""
    final = {
        e
        for status in ("Completed", "Cancelled", "Failed")
        for e in conformance("events")["qrmi_status"][status]
    }
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = _api(fake, "GET", f"/v1/jobs/{job_id}").json()
        check_job(job, "GET /v1/jobs/{id}")
        if job["events"][-1]["type"] in final:
            return [e["type"] for e in job["events"]]
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never ended")


def _create(fake: FakeFelis, target: str = "EMU:6Q:PHYSICAL_CATS", **params: Any) -> str:
    body = {**conformance("create_job")["request_example"], "target": target}
    body["inputParams"] = {"nbShots": 50, **params}
    answer = _api(fake, "POST", "/v1/jobs/", json=body)
    assert answer.status_code == 200, answer.text
    job = answer.json()
    check_job(job, "POST /v1/jobs/")
    assert [e["type"] for e in job["events"]] == conformance("create_job")["initial_events"]
    return job["id"]


def _upload(fake: FakeFelis, job_id: str, qir: str) -> None:
    files = {"input": ("input", qir.encode(), "application/octet-stream")}
    answer = _api(fake, "POST", f"/v1/jobs/{job_id}/input", files=files)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("name", RECORDS)
def test_records_name_their_sources_and_examples_match_them(name):
    record = conformance(name)
    assert record["_source"], f"{name}.json names no source"
    if name == "job":
        check_job(record["example"], "job.json example")
    if name == "targets":
        for target in record["example"]:
            assert set(record["required"]) <= set(target)
            for spec in target["inputParams"].values():
                assert set(record["param_required"]) <= set(spec)
                assert spec["type"] in record["param_types"]
            for instruction in target["instructions"]:
                assert re.fullmatch(record["signature_pattern"], instruction["signature"])
    if name == "output":
        lines = record["example"].splitlines()
        assert all(re.fullmatch(record["line_pattern"], line) for line in lines)


def test_the_two_sources_list_the_same_events_and_the_provider_maps_them_as_qrmi():
    from qiskit_alice_bob_provider.remote.api.models import AliceBobEventType

    from qrmi_tasks.providers.alice_bob.felis import EVENTS

    events = conformance("events")
    assert set(events["events"]["qrmi_model"]) == set(events["events"]["provider_enum"])
    assert {e.value for e in AliceBobEventType} - {"UNKNOWN"} == set(events["events"]["qrmi_model"])
    ours = {event: status.value for event, status in EVENTS.items()}
    qrmi = {e: s.lower() for s, listed in events["qrmi_status"].items() for e in listed}
    assert ours == qrmi


def test_a_job_conforms_from_create_to_output(fake):
    targets = _api(fake, "GET", "/v1/targets/").json()
    record = conformance("targets")
    assert all(set(record["required"]) <= set(t) for t in targets)
    job_id = _create(fake)
    _upload(fake, job_id, bell_qir())
    assert _watch(fake, job_id) == conformance("events")["sequences"]["succeeded"]
    output = _api(fake, "GET", f"/v1/jobs/{job_id}/output")
    assert output.headers["Content-Type"].startswith(conformance("output")["content_type"])
    lines = output.text.splitlines()
    assert output.text.endswith("\n") and lines
    assert all(re.fullmatch(conformance("output")["line_pattern"], line) for line in lines)
    assert sum(int(line.split(",")[1]) for line in lines) == 50
    check_error(_api(fake, "DELETE", f"/v1/jobs/{job_id}"), "not_cancellable")


def test_failures_follow_the_recorded_sequences_and_errors(fake):
    job_id = _create(fake, target="EMU:1Q:LESCANNE_2020")
    _upload(fake, job_id, bell_qir())  # two qubits on a one-qubit target
    assert _watch(fake, job_id) == conformance("events")["sequences"]["transpilation_failed"]
    check_error(_api(fake, "GET", f"/v1/jobs/{job_id}/output"), "no_output")
    fake.configure(fail_jobs=True)
    job_id = _create(fake)
    _upload(fake, job_id, bell_qir())
    assert _watch(fake, job_id) == conformance("events")["sequences"]["execution_failed"]
    job = _api(fake, "GET", f"/v1/jobs/{job_id}").json()
    recorded = conformance("job")["example"]["errors"][0]["content"]
    assert set(job["errors"][0]["content"]) == set(recorded)


def test_cancel_and_refusals(fake):
    fake.configure(job_seconds=30)
    job_id = _create(fake)
    _upload(fake, job_id, bell_qir())
    cancelled = _api(fake, "DELETE", f"/v1/jobs/{job_id}")
    assert cancelled.status_code == 200
    check_job(cancelled.json(), "DELETE /v1/jobs/{id}")
    assert cancelled.json()["events"][-1]["type"] == "CANCELLED"
    check_error(_api(fake, "GET", "/v1/jobs/no-such-job"), "unknown_job")
    check_error(_api(fake, "GET", "/v1/targets/", key="d3Jvbmc6a2V5"), "unauthenticated")
    check_error(_api(fake, "POST", "/v1/jobs/", json={"target": "x"}), "invalid_body")
    body = conformance("create_job")["request_example"]
    body = {**body, "inputParams": {"nbShots": 10, "averageNbPhotons": 11.0}}
    refused = _api(fake, "POST", "/v1/jobs/", json=body)
    assert refused.status_code == conformance("create_job")["refused_status"]
    assert refused.json() == conformance("create_job")["refused_example"]
