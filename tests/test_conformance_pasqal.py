"""The fake Pasqal Cloud answers as the recorded public sources say the service does.

``tests/conformance/pasqal`` records field names, status values and body shapes from
sources nobody here wrote (the pasqal-cloud SDK's recorded API bodies, Pasqal's API
docs, the SDK's enums; ``SOURCES.md``). These tests drive the fake over HTTP through a
batch's whole life and check every answer against those records, so the fake cannot
drift into our own reading of the API; and they check that the provider handles every
documented status explicitly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from fakes.pasqal_cloud import CONFORMANCE, PROJECT_ID, TOKEN, FakePasqalCloud, conformance
from payloads import pulser_sequence_json

pytestmark = pytest.mark.timeout(120)

RECORDS = sorted(p.stem for p in CONFORMANCE.glob("*.json"))
_TYPES = {"str": str, "int": int, "bool": bool, "dict": dict, "list": list, "null": type(None)}


def _enum(kind: str) -> set[str]:
    """Every status value any source documents for ``kind`` ("batch" or "job")."""
    return set().union(*conformance("statuses")[kind].values())


def _check_item(record: dict[str, Any], item: dict[str, Any], where: str) -> None:
    missing = [f for f in record.get("required", []) if f not in item]
    assert not missing, f"{where}: fields {missing} missing (record {record['endpoint']})"
    for name, spec in record.get("types", {}).items():
        allowed = tuple(_TYPES[t] for t in spec.split("|"))
        assert isinstance(item[name], allowed), f"{where}: {name}={item[name]!r} is not {spec}"
    if record.get("status_enum"):
        assert item["status"] in _enum(record["status_enum"]), f"{where}: {item['status']}"
    for job in item.get("jobs") or []:
        _check_item(conformance("jobs_list"), job, f"{where}.jobs[]")


def check_answer(name: str, body: dict[str, Any], where: str) -> None:
    """Check a whole answer (envelope and data) against record ``name``."""
    record = conformance(name)
    missing = [k for k in record["envelope"] if k not in body]
    assert not missing, f"{where}: envelope keys {missing} missing"
    assert body["status"] == record["envelope_status"], where
    assert type(body["code"]).__name__ in record.get("code_types", ["int", "str"]), where
    data = body["data"]
    if record.get("data_is_list"):
        assert isinstance(data, list), where
        for item in data:
            _check_item(record, item, f"{where}.data[]")
        for key in record.get("pagination", []):
            assert key in body.get("pagination", {key: 0}), where
    elif "description_item" in record:
        for item in data["description"]:
            assert set(record["description_item"]) <= set(item), where
    else:
        _check_item(record, data, f"{where}.data")


@pytest.mark.parametrize("name", RECORDS)
def test_records_name_their_sources_and_examples_match_them(name):
    record = conformance(name)
    assert record["_source"], f"{name}.json names no source"
    if "example" in record:
        check_answer(name, record["example"], f"{name}.json example")
    if "result_example" in record:
        assert set(record["result_required"]) <= set(record["result_example"])


def test_sdk_enums_are_recorded():
    """The installed SDK's enums are what the records say (an upgrade that adds one shows)."""
    from pasqal_cloud.utils.constants import BatchStatus, JobStatus

    statuses = conformance("statuses")
    assert {s.value for s in BatchStatus} <= set(statuses["batch"]["batch_sdk"])
    assert {s.value for s in JobStatus} <= set(statuses["job"]["job_sdk"])


def test_provider_handles_every_documented_status():
    from qrmi_tasks.providers.pasqal import cloud as provider

    handled = set(provider._LIVE) | set(provider._BATCH_FINAL) | {provider._CANCELING}
    assert handled == _enum("batch")
    terminal_jobs = set(conformance("statuses")["lifecycle"]["job_terminal"])
    assert terminal_jobs <= set(provider._JOB_FINAL)


@pytest.fixture
def fake() -> Iterator[FakePasqalCloud]:
    server = FakePasqalCloud(job_seconds=0.6).start()
    yield server
    server.stop()


def _api(fake: FakePasqalCloud, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(
        method,
        fake.core_url + path,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
        **kwargs,
    )


def test_device_specs_answer_as_recorded(fake):
    """``GET /devices/specs`` (what the Pulser connection's fetch_available_devices reads):
    device types to JSON strings holding a Pulser device, in the fake as in the record."""
    from qrmi_tasks.providers.pasqal.cloud import DEVICE_TYPES

    record = conformance("device_specs")
    answer = _api(fake, "GET", "/api/v1/devices/specs")
    assert answer.status_code == 200, answer.text
    check_answer("device_specs", answer.json(), "GET /api/v1/devices/specs")
    for where, data in (("fake", answer.json()["data"]), ("record", record["example"]["data"])):
        assert data and set(data) <= set(DEVICE_TYPES), where
        for kind, specs in data.items():
            assert isinstance(specs, str), f"{where}: {kind}'s specs are not a JSON string"
            assert set(record["specs_required"]) <= set(json.loads(specs)), f"{where}: {kind}"


def _create(fake: FakePasqalCloud, tags: list[str], runs: int = 20) -> dict[str, Any]:
    body = {
        "sequence_builder": pulser_sequence_json(),
        "jobs": [{"runs": runs}],
        "project_id": PROJECT_ID,
        "device_type": "EMU_FREE",
        "open": False,
        "tags": tags,
    }
    record = conformance("create_batch")["request"]
    assert set(record["required"]) <= set(body) <= set(record["required"] + record["optional"])
    answer = _api(fake, "POST", "/api/v1/batches", json=body)
    assert answer.status_code == 200, answer.text
    check_answer("create_batch", answer.json(), "POST /api/v1/batches")
    return answer.json()["data"]


def _watch(fake: FakePasqalCloud, batch_id: str, until: set[str]) -> list[str]:
    """Poll GET /api/v2/batches/{id}, checking each answer, until a status in ``until``."""
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = _api(fake, "GET", f"/api/v2/batches/{batch_id}")
        assert answer.status_code == 200
        check_answer("batch", answer.json(), "GET /api/v2/batches/{id}")
        status = answer.json()["data"]["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in until:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} never reached {until}: {seen}")


def test_a_run_conforms_from_create_to_result(fake):
    fake.configure(detours=[("PAUSED", 0.4)])
    tags = ["qrmi:conformance", "qrmi-digest-0123456789abcdef"]  # several, kept as given
    batch = _create(fake, tags)
    assert batch["status"] == conformance("create_batch")["initial_status"]
    seen = _watch(fake, batch["id"], {"DONE"})
    assert seen == ["PENDING", "PAUSED", "RUNNING", "DONE"]
    listed = _api(fake, "GET", "/api/v1/batches", params={"tag": "qrmi:conformance"})
    check_answer("batch_list", listed.json(), "GET /api/v1/batches")
    assert [(b["id"], b["tags"]) for b in listed.json()["data"]] == [(batch["id"], tags)]
    jobs = _api(fake, "GET", "/api/v2/jobs", params={"batch_id": batch["id"]})
    check_answer("jobs_list", jobs.json(), "GET /api/v2/jobs")
    job = jobs.json()["data"][0]
    assert job["status"] == "DONE"
    link = _api(fake, "GET", f"/api/v1/jobs/{job['id']}/results_link")
    check_answer("results_link", link.json(), "GET /api/v1/jobs/{id}/results_link")
    result = requests.get(link.json()["data"]["results_link"], timeout=10).json()
    assert set(conformance("results_link")["result_required"]) <= set(result)
    assert sum(result["counter"].values()) == 20


def test_a_failed_job_ends_error_in_a_done_batch(fake):
    """Pasqal's lifecycle: the batch is DONE once all its jobs are terminal, ERROR included."""
    fake.configure(fail_jobs=True, job_errors=["QPU unreachable"])
    batch = _create(fake, ["qrmi:conformance"])
    lifecycle = conformance("statuses")["lifecycle"]
    assert (
        _watch(fake, batch["id"], {"DONE", "ERROR"})[-1]
        == lifecycle["batch_when_all_jobs_terminal"]
    )
    jobs = _api(fake, "GET", "/api/v2/jobs", params={"batch_id": batch["id"]}).json()
    check_answer("jobs_list", jobs, "GET /api/v2/jobs")
    assert [(j["status"], j["errors"]) for j in jobs["data"]] == [("ERROR", ["QPU unreachable"])]
    link = _api(fake, "GET", f"/api/v1/jobs/{jobs['data'][0]['id']}/results_link").json()
    assert link["data"]["results_link"] is None  # recorded as nullable: no result to fetch


def test_cancel_passes_through_canceling(fake):
    fake.configure(job_seconds=30, cancel_seconds=0.5)
    batch = _create(fake, ["qrmi:conformance"])
    answer = _api(fake, "PATCH", f"/api/v2/batches/{batch['id']}/cancel")
    check_answer("cancel_batch", answer.json(), "PATCH /api/v2/batches/{id}/cancel")
    assert answer.json()["data"]["status"] in conformance("cancel_batch")["cancelled_batch_status"]
    assert _watch(fake, batch["id"], {"CANCELED"}) == ["CANCELING", "CANCELED"]
    jobs = _api(fake, "GET", "/api/v2/jobs", params={"batch_id": batch["id"]}).json()
    check_answer("jobs_list", jobs, "GET /api/v2/jobs")
    assert {j["status"] for j in jobs["data"]} == {
        conformance("cancel_batch")["cancelled_job_status"]
    }


def test_invalid_create_is_the_recorded_422(fake):
    answer = _api(fake, "POST", "/api/v1/batches", json={"project_id": PROJECT_ID, "jobs": []})
    assert answer.status_code == conformance("create_batch_422")["http_status"]
    check_answer("create_batch_422", answer.json(), "POST /api/v1/batches (invalid)")
    fake.configure(faults=[{"method": "POST", "path": "/core/api/v1/batches", "status": 422}])
    injected = _api(fake, "POST", "/api/v1/batches", json={})
    assert injected.status_code == 422
    assert injected.json() == conformance("create_batch_422")["example"]
    assert json.loads(injected.text)["data"]["description"][0]["msg"]
