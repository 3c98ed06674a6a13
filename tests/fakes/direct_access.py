"""A fake IBM Direct Access service (IAM + DA API v1) on 127.0.0.1, with real job execution.

It speaks the protocol of ``/work/shared/protocols/direct-access.md``: IAM
``/identity/token`` (JWT access tokens with ``exp``), ``/version``, ``/v1/backends...``
(``configuration`` and ``properties`` are those of qiskit-ibm-runtime's fake Torino),
``/v1/jobs...``; checks ``Authorization`` and ``Service-CRN``; runs each job by reading its
input through the presigned GET URL, executing it on Qiskit Aer (the ``local`` resource's
worker, through tests/fakes/worker.py) and PUTting the encoded
result and a log through the presigned URLs, after ``job_seconds``. S3 is a real moto
server (``ThreadedMotoServer``).

Fault injection (``FakeDirectAccess.config`` or ``POST /_fake/config``):
* ``faults``: e.g. ``{"method": "POST", "path": "/v1/jobs", "status": 429,
  "retry_after": 1, "times": 1}``, ``"drop": true``, ``"delay": seconds`` (see
  :mod:`fakes.server`).
* ``fail_jobs`` (+ ``reason_code``, ``reason_message``, ``reason_solution``): jobs fail.
* ``disable_get_job``: ``GET /v1/jobs/{id}`` answers 405 ``{"detail": "Method Not Allowed"}``
  like IBM's published simulator (a FastAPI app that only routes DELETE there).
* ``reject_jobs``: the name of a conformance body (``tests/conformance/ibm/direct_access/``,
  e.g. ``"error_validation_422"``): ``POST /v1/jobs`` answers its status and body.

Answers follow ``tests/conformance/ibm/`` (checked by ``tests/test_conformance_ibm.py``):
error bodies are ``{status_code, title, trace, correlation_id, errors: [{code, message,
more_info}]}`` with IBM's string error codes, IAM refusals are IAM's own bodies.
* ``revoke_tokens``: every token issued so far is rejected with 401 (token expiry).
* ``job_seconds``, ``token_ttl``, ``api_key``; ``result_bytes``: instead of running the
  job, store a padded JSON result of that size (memory benchmarks); ``fixed_result``:
  store this text instead of running the job (so a job lasts exactly ``job_seconds``).

Standalone (for the Slurm tests), from the repository root::

    python -m tests.fakes.direct_access serve --ready-file PATH [--backend NAME] [--job-seconds S]

starts the fake and a moto S3 server on free ports, writes PATH (atomically) as JSON
``{"da_url", "iam_url", "s3_url", "control_url", "env": {...every variable a runner
needs...}}`` and serves until SIGTERM/SIGINT. Control API on ``control_url``:
``GET /_fake/requests`` (list of ``{"method", "path", "status", "time"}``),
``GET /_fake/jobs``, ``POST /_fake/config`` (JSON merged into the config).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from . import conformance
from .ibm_iam import FakeIbmService
from .server import Request, Response
from .worker import run_worker

API_KEY = "fake-api-key-0123456789"
SERVICE_CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/fake::"
AWS_KEY_ID = "AKIAFAKEFAKEFAKE0001"
AWS_SECRET = "fake/aws/secret/key/0123456789abcdef"
BUCKET = "qrmi-jobs"
REGION = "us-east-1"
_TERMINAL = ("Completed", "Failed", "Cancelled")


class FakeDirectAccess(FakeIbmService):
    """State and behaviour of the fake service; :class:`fakes.server.FakeServer` does HTTP."""

    def __init__(self, backends: tuple[str, ...] = ("fake_heron",), job_seconds: float = 0.5):
        super().__init__(
            API_KEY,
            job_seconds=job_seconds,
            fail_jobs=False,
            reason_code=1517,
            reason_message="Error in transpilation process.",
            reason_solution="Check the circuits are ISA circuits for the backend.",
            disable_get_job=False,
            reject_jobs=None,
        )
        self.backends = backends
        self.jobs: dict[str, dict[str, Any]] = {}
        self.deleted: list[str] = []
        self.completed_at: list[float] = []  # when each job reached a final state

    def fault(self, request: Request, status: int) -> Response:
        code = {423: "1233", 429: "1232"}.get(status, "")
        return Response(status, _error(status, "Injected", f"injected fault {status}", code))

    def authorized(self, headers: Any) -> tuple[int, Any] | None:
        """None if the request may proceed, else the error answer."""
        if not self.bearer_valid(headers):
            return 401, _error(401, "Invalid credentials.", "Invalid credentials.", "1201")
        if headers.get("Service-CRN") != SERVICE_CRN:
            return 403, _error(403, "Forbidden", "Service-CRN does not name this instance", "1200")
        return None

    # -- jobs -----------------------------------------------------------------------------
    def create_job(self, body: Any) -> tuple[int, Any]:
        if self.config.get("reject_jobs"):
            answer = conformance.fixture("direct_access/" + self.config["reject_jobs"])
            return answer["status"], answer["body"]
        problems = []
        if not isinstance(body, dict):
            return 400, _error(400, "Bad Request", "body must be a JSON object")
        for key in ("id", "backend", "program_id", "timeout_secs", "storage"):
            if key not in body:
                problems.append(f"missing field '{key}'")
        if body.get("program_id") not in ("estimator", "sampler"):
            problems.append("program_id must be estimator or sampler")
        if body.get("backend") not in self.backends:
            problems.append(f"unknown backend {body.get('backend')!r}")
        storage = body.get("storage") or {}
        for part in ("input", "results", "logs"):
            if not str((storage.get(part) or {}).get("presigned_url", "")).startswith("http"):
                problems.append(f"storage.{part}.presigned_url missing")
        if problems:
            return 400, _error(400, "Bad Request", "; ".join(problems))
        with self.lock:
            if body["id"] in self.jobs:
                return 409, _error(
                    409,
                    "validation failed",
                    f"Job with duplicate id already exists. Job ID: {body['id']}",
                    "1231",
                )
            job = {
                "id": body["id"],
                "backend": body["backend"],
                "program_id": body["program_id"],
                "status": "Running",
                "created_time": _now(),
                "timeout_secs": body["timeout_secs"],
                "log_level": body.get("log_level", "warning"),
                "storage": storage,
                "_cancel": threading.Event(),
            }
            self.jobs[body["id"]] = job
        threading.Thread(target=self._run_job, args=(job,), daemon=True).start()
        return 204, None

    def _run_job(self, job: dict[str, Any]) -> None:
        if job["_cancel"].wait(float(self.config["job_seconds"])):
            return
        started = time.perf_counter()
        try:
            if self.config["fail_jobs"]:
                raise _JobFailure
            params = requests.get(job["storage"]["input"]["presigned_url"], timeout=30)
            params.raise_for_status()
            size = int(self.config.get("result_bytes") or 0)
            if size:
                text: str | bytes = _big_result(size)
            elif self.config.get("fixed_result"):
                text = self.config["fixed_result"]
            else:
                text = execute(job["program_id"], params.json())
            body = text if isinstance(text, bytes) else text.encode()
            requests.put(
                job["storage"]["results"]["presigned_url"], data=body, timeout=300
            ).raise_for_status()
            log_text = json.dumps({"logs": f"job {job['id']} ran {job['program_id']}"})
            requests.put(
                job["storage"]["logs"]["presigned_url"], data=log_text.encode(), timeout=30
            ).raise_for_status()
            outcome = {
                "status": "Completed",
                "usage": {"quantum_nanoseconds": int((time.perf_counter() - started) * 1e9)},
            }
        except _JobFailure:
            outcome = {
                "status": "Failed",
                "reason_code": self.config["reason_code"],
                "reason_message": self.config["reason_message"],
                "reason_solution": self.config["reason_solution"],
            }
        except Exception as exc:  # a bad circuit is a failed job, as on the real service
            outcome = {
                "status": "Failed",
                "reason_code": 1500,
                "reason_message": " ".join(str(exc).split())[:300],
            }
        with self.lock:
            if job["status"] == "Running":
                job.update(outcome, end_time=_now())
                self.completed_at.append(time.time())

    def public_job(self, job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if not k.startswith("_")}

    def get_job(self, job_id: str) -> tuple[int, Any]:
        if self.config["disable_get_job"]:
            # Starlette's answer for a route that exists for other methods only
            return 405, {"detail": "Method Not Allowed"}
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return 404, _not_found(job_id)
            return 200, self.public_job(job)

    def list_jobs(self) -> tuple[int, Any]:
        with self.lock:
            return 200, {"jobs": [self.public_job(j) for j in self.jobs.values()]}

    def cancel_job(self, job_id: str) -> tuple[int, Any]:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return 404, _not_found(job_id)
            if job["status"] in _TERMINAL:
                return 409, _error(
                    409, "validation failed", f"Job is not cancellable. Job ID: {job_id}.", "1306"
                )
            job["_cancel"].set()
            job.update(status="Cancelled", end_time=_now())
        return 204, None

    def delete_job(self, job_id: str) -> tuple[int, Any]:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return 404, _not_found(job_id)
            if job["status"] not in _TERMINAL:
                return 409, _error(
                    409,
                    "validation failed",
                    f"Deleting a job in a non-terminal state is not possible. Job ID: {job_id}.",
                    "1337",
                )
            job["_deleted"] = True
            del self.jobs[job_id]
            self.deleted.append(job_id)
        return 204, None

    def route(self, request: Request) -> tuple[int, Any]:
        """Answer one request (after faults); returns (status, JSON body or None)."""
        method, path, headers, body = request.method, request.path, request.headers, request.body
        if path == "/identity/token" and method == "POST":
            return self.issue_token(body)
        if path == "/version" and method == "GET":
            return 200, {"version": "0.9.0-fake"}
        if path.startswith("/_fake/"):
            return self.control(method, path, body)
        if not path.startswith("/v1/"):
            return 404, _error(404, "Not Found", "no such route")
        denied = self.authorized(headers)
        if denied:
            return denied
        if path == "/v1/backends" and method == "GET":
            return 200, {"backends": [{"name": b, "status": "online"} for b in self.backends]}
        if m := re.fullmatch(r"/v1/backends/([^/]+)/(configuration|properties)", path):
            if m.group(1) in self.backends and method == "GET":
                return 200, device_document(m.group(2))
            return 404, _backend_not_found(m.group(1))
        if m := re.fullmatch(r"/v1/backends/([^/]+)", path):
            if m.group(1) in self.backends and method == "GET":
                return 200, {
                    "name": m.group(1),
                    "status": "online",
                    "version": "1.0.0",
                    "locked": False,
                }
            return 404, _backend_not_found(m.group(1))
        if path == "/v1/jobs":
            if method == "POST":
                try:
                    payload = json.loads(body or b"null")
                except ValueError:
                    return 400, _error(400, "Bad Request", "body is not JSON")
                return self.create_job(payload)
            if method == "GET":
                return self.list_jobs()
        if m := re.fullmatch(r"/v1/jobs/([^/]+)", path):
            if method == "GET":
                return self.get_job(m.group(1))
            if method == "DELETE":
                return self.delete_job(m.group(1))
        if (m := re.fullmatch(r"/v1/jobs/([^/]+)/cancel", path)) and method == "POST":
            return self.cancel_job(m.group(1))
        return 405, _error(405, "Method Not Allowed", f"{method} {path}")

    def control(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        if path == "/_fake/requests" and method == "GET":
            with self.lock:  # bodies are bytes, not JSON: the log without them
                return 200, [{k: v for k, v in r.items() if k != "body"} for r in self.requests]
        if path == "/_fake/jobs" and method == "GET":
            with self.lock:
                return 200, {
                    "jobs": [self.public_job(j) for j in self.jobs.values()],
                    "deleted": list(self.deleted),
                }
        if path == "/_fake/config" and method == "POST":
            self.configure(**json.loads(body or b"{}"))
            return 200, {k: v for k, v in self.config.items()}
        return 404, _error(404, "Not Found", "no such control route")


class _JobFailure(Exception):
    pass


def execute(program_id: str, parameters: dict[str, Any]) -> str:
    """Run primitive parameters with the ``local`` resource's worker; the result JSON."""
    return run_worker({"program_id": program_id, "parameters": parameters})


# Every fake backend describes itself as this device of qiskit_ibm_runtime.fake_provider.
DEVICE = ("torino", "conf_torino.json", "props_torino.json")


def device_document(kind: str) -> dict[str, Any]:
    """BackendConfiguration (``configuration``) or BackendProperties JSON of ``DEVICE``.

    Read from qiskit-ibm-runtime's package data without importing it (a server thread).
    """
    import importlib.util

    spec = importlib.util.find_spec("qiskit_ibm_runtime")
    root = Path(next(iter(spec.submodule_search_locations)))
    name, configuration, properties = DEVICE
    path = root / "fake_provider" / "backends" / name
    return json.loads(
        (path / (configuration if kind == "configuration" else properties)).read_text()
    )


def _big_result(size: int) -> bytes:
    """A syntactically valid JSON result of about ``size`` bytes (for memory benchmarks)."""
    filler = size - 40
    return b'{"results": [], "metadata": {"pad": "' + b"x" * max(filler, 0) + b'"}}'


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _error(status: int, title: str, message: str, code: str = "") -> dict[str, Any]:
    """The API's error body (tests/conformance/ibm/direct_access/error_*.json)."""
    return {
        "status_code": status,
        "title": title,
        "trace": str(uuid.uuid4()),
        "correlation_id": uuid.uuid4().hex[:20],
        "errors": [
            {
                "code": code,
                "message": message,
                "more_info": "https://cloud.ibm.com/apidocs/quantum-computing#error-handling",
            }
        ],
    }


def _not_found(job_id: str) -> dict[str, Any]:
    return _error(404, "validation failed", f"Job not found. Job ID: {job_id}.", "1291")


def _backend_not_found(name: str) -> dict[str, Any]:
    return _error(404, "validation failed", f"Backend {name} not found.", "1216")


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 with the test bucket; yields its URL."""
    import boto3
    from moto.server import ThreadedMotoServer

    # werkzeug logs every S3 request, presigned-URL signatures included, to stderr
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client(
        "s3",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=AWS_KEY_ID,
        aws_secret_access_key=AWS_SECRET,
    ).create_bucket(Bucket=BUCKET)
    try:
        yield url
    finally:
        server.stop()


def runner_env(
    name: str,
    da_url: str,
    s3_url: str,
    timeout: int = 600,
    prefix: str = "QRMI_IBM_DA_",
    resource_type: str = "direct-access",
) -> dict[str, str]:
    """Every variable qrmi-task-runner needs to use resource ``name`` on this fake."""
    p = f"{name}_{prefix}"
    return {
        "SLURM_JOB_QPU_RESOURCES": name,
        "SLURM_JOB_QPU_TYPES": resource_type,
        f"{p}ENDPOINT": da_url,
        f"{p}IAM_ENDPOINT": da_url,
        f"{p}IAM_APIKEY": API_KEY,
        f"{p}SERVICE_CRN": SERVICE_CRN,
        f"{p}AWS_ACCESS_KEY_ID": AWS_KEY_ID,
        f"{p}AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        f"{p}S3_ENDPOINT": s3_url,
        f"{p}S3_BUCKET": BUCKET,
        f"{p}S3_REGION": REGION,
        f"{name}_QRMI_JOB_TIMEOUT_SECONDS": str(timeout),
    }


def serve(argv: list[str]) -> int:
    """``serve`` subcommand: run fake + S3 until SIGTERM/SIGINT (see module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.direct_access serve")
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--backend", default="fake_heron")
    parser.add_argument("--job-seconds", type=float, default=1.0)
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    fake = FakeDirectAccess((args.backend,), job_seconds=args.job_seconds).start()
    with moto_s3() as s3_url:
        info = {
            "da_url": fake.url,
            "iam_url": fake.url,
            "s3_url": s3_url,
            "control_url": fake.url,
            "env": runner_env(args.backend, fake.url, s3_url),
        }
        temp = f"{args.ready_file}.tmp"
        with open(temp, "w") as handle:
            json.dump(info, handle)
        os.replace(temp, args.ready_file)
        while not stop.wait(0.2):
            pass
    fake.stop()
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "serve":
        sys.exit("usage: python -m tests.fakes.direct_access serve --ready-file PATH")
    sys.exit(serve(sys.argv[2:]))
