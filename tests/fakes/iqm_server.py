"""A fake IQM Server (REST API v1, the routes qrmi's ``iqm-server`` type and ours use) on
127.0.0.1.

Routes (bearer token checked; ``tests/conformance/iqm`` records the shapes and names the
sources, ``tests/test_conformance_iqm.py`` checks the live answers against them):
``POST /api/v1/jobs/{qc}/{job_type}?use_timeslot=&tag=`` (body: the IQM JSON job),
``GET /api/v1/jobs/{id}`` (with ``wait_until_terminal``/``timeout_seconds``: the long
poll qrmi uses, answered early when the job ends, else with ``IQM-Long-Poll-Timed-Out:
true``), ``POST /api/v1/jobs/{id}/cancel`` (403 ``illegal_job_status`` once final),
``GET /api/v1/jobs/{id}/artifacts/{type}`` (``measurements``, ``measurement_counts``),
``GET /api/v1/calibration-sets/{qc}/{cal_set}/dynamic-quantum-architecture``.

Jobs are ``waiting`` then ``processing`` on timers (``job_seconds``, half of it waiting),
then run for real: the circuits go through the ``local`` resource's worker (IQM JSON ->
Qiskit -> Aer, seeded with ``seed`` so that two runs of one payload agree), and its two
artifacts are what the worker computed. ``fail_jobs`` ends jobs ``failed`` with
``job_error``; a job the worker cannot run fails with the worker's message.
``faults`` as in :mod:`fakes.server` (answers in IQM's error body).
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from .server import FakeServer, Request, Response
from .worker import run_worker

TOKEN = "iqm-token-0123456789abcdef"
QC_ALIAS = "sirius:fake"
RESOURCE = "sirius_fake"  # qrmi's resource name: its last '_' becomes ':'
QC_ID = "1c6a2d0e-8f1b-4c2a-9e57-3b7d6f0a9c21"
API = "/api/v1"
CONFORMANCE = Path(__file__).resolve().parent.parent / "conformance" / "iqm"
TERMINAL = ("completed", "failed", "cancelled")
ERROR_CODES = {
    400: "invalid_input",
    401: "unauthorized",
    404: "job_not_found",
    413: "request_payload_too_large",
    429: "rate_limit_exceeded",
    500: "internal_error",
}


def conformance(name: str) -> dict[str, Any]:
    """The conformance record ``tests/conformance/iqm/{name}.json``."""
    return json.loads((CONFORMANCE / f"{name}.json").read_text())


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def _error(status: int, code: str, message: str) -> Response:
    body = {"error_code": code, "message": message, "request_id": str(uuid.uuid4())}
    return Response(status, body)


class FakeIQMServer(FakeServer):
    """State of the fake service; :class:`fakes.server.FakeServer` does the HTTP."""

    def __init__(self, job_seconds: float = 0.3, seed: int | None = 7) -> None:
        super().__init__(
            job_seconds=job_seconds,
            seed=seed,
            fail_jobs=False,
            job_error=("station_control_failure", "Readout calibration failed."),
        )
        self.jobs: dict[str, dict[str, Any]] = {}
        self.payloads: dict[str, Any] = {}  # decoded job bodies
        self.artifacts: dict[str, dict[str, Any]] = {}
        self.tokens = {TOKEN}
        self.changed = threading.Condition(self.lock)
        self.architecture = conformance("dynamic_quantum_architecture")["example"]

    @property
    def endpoint(self) -> str:
        """What ``{NAME}_QRMI_IQM_ISA_ENDPOINT`` is set to (the API is under /api/v1)."""
        return self.url

    def fault(self, request: Request, status: int) -> Response:
        return _error(status, ERROR_CODES.get(status, "internal_error"), f"injected {status}")

    def encode(self, request: Request, response: Response) -> tuple[bytes, str]:
        if isinstance(response.body, bytes):
            return response.body, "application/json"
        return super().encode(request, response)

    # -- behaviour ------------------------------------------------------------------------
    def _set(self, job: dict[str, Any], status: str, **fields: Any) -> bool:
        """Move a live job on; False when it ended meanwhile (cancelled)."""
        with self.changed:
            if job["status"] in TERMINAL:
                return False
            job.update(status=status, **fields)
            job["timeline"].append({"source": "iqm-server", "status": status, "timestamp": _now()})
            self.changed.notify_all()
            return True

    def _run(self, job: dict[str, Any], body: Any) -> None:
        total = float(self.config["job_seconds"])
        time.sleep(total / 2)
        if not self._set(job, "processing", queue_position=None):
            return
        time.sleep(total / 2)
        if self.config["fail_jobs"]:
            code, message = self.config["job_error"]
            error = {"error_code": code, "message": message, "source": "iqm-station-control"}
            self._set(job, "failed", errors=[error])
            return
        seed = self.config["seed"]
        try:
            text = run_worker(
                {"iqmjson": body, "job_type": "circuit"},
                args=() if seed is None else ("--seed", str(seed)),
            )
        except RuntimeError as exc:
            error = {"error_code": "execution_failed", "message": str(exc), "source": "fake"}
            self._set(job, "failed", errors=[error])
            return
        document = json.loads(text)
        with self.lock:
            self.artifacts[job["id"]] = document
        artifacts = [{"type": "measurements"}, {"type": "measurement_counts"}]
        self._set(job, "completed", artifacts=artifacts, runtime_ms=int(total * 500))

    def submit(self, request: Request, qc: str, job_type: str) -> Response:
        if qc not in (QC_ALIAS, QC_ID):
            return _error(404, "qc_not_found", f"Quantum computer '{qc}' not found.")
        if job_type not in ("circuit", "run", "sweep"):
            return _error(400, "unsupported_job_type", f"Unsupported job type '{job_type}'.")
        if job_type != "circuit":  # pulse-level jobs: protobuf payloads this fake cannot run
            return _error(400, "unsupported_job_type", f"'{job_type}' jobs are not served here.")
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("circuits"), list):
            return _error(400, "invalid_job_payload", "Job payload must have 'circuits'.")
        tag = (request.query.get("tag") or [None])[0]
        if tag is not None and len(tag) > 50:
            return _error(400, "invalid_input", "tag: at most 50 characters.")
        job_id = str(uuid.uuid4())
        job = {
            "artifacts": [],
            "id": job_id,
            "messages": [],
            "qc": {"id": QC_ID},
            "queue_position": 1,
            "status": "waiting",
            "tag": tag,
            "timeline": [{"source": "iqm-server", "status": "waiting", "timestamp": _now()}],
            "type": job_type,
        }
        with self.lock:
            self.jobs[job_id] = job
            self.payloads[job_id] = body
            view = json.loads(json.dumps(job))
        threading.Thread(target=self._run, args=(job, body), daemon=True).start()
        return Response(200, view)

    def get_job(self, request: Request, job_id: str) -> Response:
        job = self.jobs.get(job_id)
        if job is None:
            return _error(404, "job_not_found", f"Job {job_id} not found.")
        headers = {}
        if (request.query.get("wait_until_terminal") or ["false"])[0] == "true":
            wait = min(30.0, float((request.query.get("timeout_seconds") or ["10"])[0]))
            with self.changed:
                ended = self.changed.wait_for(lambda: job["status"] in TERMINAL, wait)
            if not ended:
                headers["IQM-Long-Poll-Timed-Out"] = "true"
        with self.lock:
            return Response(200, json.loads(json.dumps(job)), headers)

    def cancel(self, job_id: str) -> Response:
        job = self.jobs.get(job_id)
        if job is None:
            return _error(404, "job_not_found", f"Job {job_id} not found.")
        if not self._set(job, "cancelled"):
            return _error(403, "illegal_job_status", f"Job {job_id} is {job['status']}.")
        with self.lock:
            return Response(200, json.loads(json.dumps(job)))

    def artifact(self, job_id: str, kind: str) -> Response:
        if job_id not in self.jobs:
            return _error(404, "job_not_found", f"Job {job_id} not found.")
        document = self.artifacts.get(job_id) or {}
        if kind not in document:
            return _error(404, "job_artifact_not_found", f"No artifact '{kind}'.")
        return Response(200, json.dumps(document[kind]).encode())

    def route(self, request: Request) -> tuple[Any, ...]:
        response = self._route(request)
        return response.status, response.body, response.headers

    def _route(self, request: Request) -> Response:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return _error(401, "unauthorized", "Invalid or missing API token.")
        parts = request.path.removeprefix(API + "/").split("/")
        method = request.method
        if not request.path.startswith(API + "/"):
            return _error(404, "not_found", "No such route.")
        if method == "POST" and len(parts) == 3 and parts[0] == "jobs" and parts[2] == "cancel":
            return self.cancel(parts[1])
        if method == "POST" and len(parts) == 3 and parts[0] == "jobs":
            return self.submit(request, parts[1], parts[2])
        if method == "GET" and len(parts) == 2 and parts[0] == "jobs":
            return self.get_job(request, parts[1])
        if (
            method == "GET"
            and len(parts) == 4
            and parts[:1] == ["jobs"]
            and parts[2] == "artifacts"
        ):
            return self.artifact(parts[1], parts[3])
        if (
            method == "GET"
            and len(parts) == 4
            and parts[0] == "calibration-sets"
            and parts[3] == "dynamic-quantum-architecture"
        ):
            if parts[1] not in (QC_ALIAS, QC_ID):
                return _error(404, "qc_not_found", f"Quantum computer '{parts[1]}' not found.")
            if parts[2] not in ("default", self.architecture["calibration_set_id"]):
                return _error(404, "calibration_set_not_found", "Calibration set not found.")
            return Response(200, self.architecture)
        return _error(404, "not_found", "No such route.")


def bell_payload(path: Path, shots: int = 100) -> Path:
    """Write a Bell-pair ``iqm`` payload on QB1 and QB3 (coupled in the fake's
    architecture) in IQM's native operations, the four keys qrmi's runner reads."""
    half = math.pi / 2
    operations = [
        {"name": "prx", "locus": ["QB1"], "args": {"angle": half, "phase": half}},
        {"name": "prx", "locus": ["QB3"], "args": {"angle": half, "phase": half}},
        {"name": "cz", "locus": ["QB1", "QB3"], "args": {}},
        {"name": "prx", "locus": ["QB3"], "args": {"angle": -half, "phase": half}},
        {"name": "measure", "locus": ["QB1", "QB3"], "args": {"key": "m"}},
    ]
    job = {"circuits": [{"name": "bell", "instructions": operations}], "shots": shots}
    document = {"iqmjson": job, "job_type": "circuit", "use_timeslot": False, "tag": None}
    path.write_text(json.dumps(document))
    return path


def runner_env(endpoint: str, token: str = TOKEN, name: str = RESOURCE) -> dict[str, str]:
    """Variables qrmi-task-runner (and qrmi's task_runner) need for this fake."""
    return {
        "SLURM_JOB_QPU_RESOURCES": name,
        "SLURM_JOB_QPU_TYPES": "iqm-server",
        f"{name}_QRMI_IQM_ISA_ENDPOINT": endpoint,
        f"{name}_QRMI_IQM_ISA_TOKEN": token,
    }
