"""A fake IBM Qiskit Runtime service (IAM + the REST subset qiskit-ibm-runtime uses) on 127.0.0.1.

Routes, as qiskit-ibm-runtime 0.51 calls them for one job (found by reading its
``api/rest/*.py`` and by logging its requests):

* IAM: ``POST {url}/iam/identity/token`` (form ``grant_type``, ``apikey``) -> JWT access
  token with ``iat``/``exp`` (ibm-cloud-sdk-core decodes both).
* API under ``{url}/api/v1`` (``Authorization: Bearer <token>`` and ``Service-CRN``
  checked on every request): ``POST /jobs``, ``GET /jobs/{id}`` (``exclude_params``),
  ``GET /jobs`` (``tags``, ``backend`` filters), ``GET /jobs/{id}/results``,
  ``POST /jobs/{id}/cancel``, ``POST /sessions``, ``GET|PATCH /sessions/{id}``,
  ``DELETE /sessions/{id}/close`` and the job list's ``pending`` / ``session_id`` filters
  (what qrmi's ``acquire()`` / ``release()`` call, for the spank_qrmi interop tests),
  ``GET /backends``, ``GET /backends/{name}/status`` and ``/configuration`` /
  ``/properties`` (fake Torino's documents, for ``qrmi-gen --resource``).

Jobs go Queued -> Running -> Completed on timers; the params the fake received are run on
Qiskit Aer by the ``local`` resource's worker process
(``qrmi_tasks.providers.local.worker``, i.e. ``local_sim.run_primitive``) and the result
is stored encoded as the service encodes it (``RuntimeEncoder``; IBM's plain JSON when
``support_qiskit`` is false). A failed job has ``state.reason`` / ``reason_code`` and a
traceback as its results body, as on the real service.

Fault injection via ``configure``: ``faults`` (see :mod:`fakes.server`),
``revoke_tokens=True`` (every token issued so far now gets 401, i.e. token expiry),
``fail_jobs`` (+ ``reason``, ``reason_code``), ``job_seconds`` (submission to final
state), ``queue_seconds`` (time spent Queued; default half of ``job_seconds``),
``api_key``; ``fixed_result``: serve this text as every job's result instead of running
it; ``ignore_tag_filter`` (the job list ignores ``tags``, as a server whose filter is
missing or broken would: the client must check the tags itself); ``failed_results_status``
(a failed job's ``/results`` answers this status instead of its traceback);
``session_messages`` (a list added as ``messages`` to a session creation answer) and
``session_mode`` (the mode the service grants, whatever was asked).

Answers follow ``tests/conformance/ibm/qiskit_runtime/`` (checked by
``tests/test_conformance_ibm.py``): error bodies ``{errors: [{code, message, more_info}],
trace}`` with string codes, jobs with ``state`` {status, reason, reason_code} and ``tags``.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from typing import Any

from .direct_access import device_document
from .ibm_iam import FakeIbmService
from .server import Request, Response
from .worker import WorkerRun

API_KEY = "qrs-fake-api-key-0123456789"
SERVICE_CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/fakeacct:fakeinst::"
API = "/api/v1"
IAM = "/iam"
_FINAL = ("Completed", "Failed", "Cancelled")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


def _errors(message: str, code: int = 0) -> dict[str, Any]:
    """The API's error body (tests/conformance/ibm/qiskit_runtime/error_*.json)."""
    return {
        "errors": [
            {
                "code": str(code),
                "message": message,
                "more_info": "https://cloud.ibm.com/apidocs/quantum-computing#error-handling",
            }
        ],
        "trace": uuid.uuid4().hex,
    }


class FakeQiskitRuntime(FakeIbmService):
    """State of the fake service; :class:`fakes.server.FakeServer` does the HTTP."""

    def __init__(self, backends: tuple[str, ...] = ("ibm_fake",), job_seconds: float = 0.4):
        super().__init__(
            API_KEY,
            job_seconds=job_seconds,
            fail_jobs=False,
            reason="Error in transpilation process. Circuits must be ISA circuits.",
            reason_code=1517,
        )
        self.backends = backends
        self.jobs: dict[str, dict[str, Any]] = {}
        self.results: dict[str, str] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []  # decoded POST /jobs bodies, in order
        self.completed_at: list[float] = []  # when each job reached a final state (bench)

    @property
    def api_url(self) -> str:
        return self.url + API

    @property
    def iam_url(self) -> str:
        return self.url + IAM

    def fault(self, request: Request, status: int) -> Response:
        return Response(status, _errors(f"injected fault {status}", 9999))

    def encode(self, request: Request, response: Response) -> tuple[bytes, str]:
        # the service answers JSON everywhere, results included (served as stored text)
        body = response.body
        if isinstance(body, tuple) and body[0] == "text":
            return body[1].encode(), "application/json"
        if isinstance(body, bytes):  # an injected fault's raw body (``body``, ``body_size``)
            return body, "application/json"
        return (b"" if body is None else json.dumps(body).encode()), "application/json"

    def _unauthorized(self, headers: Any) -> tuple[int, Any] | None:
        if not self.bearer_valid(headers):
            return 401, _errors("Invalid or expired token", 1002)
        if headers.get("Service-CRN") != SERVICE_CRN:
            return 403, _errors("Service-CRN does not name an instance you can use", 1216)
        return None

    # -- jobs -----------------------------------------------------------------------------
    def _view(self, job: dict[str, Any], params: bool = True) -> dict[str, Any]:
        view = {k: v for k, v in job.items() if k != "params" or params}
        view["state"] = {"status": job["status"]}
        if job.get("reason"):
            view["state"].update(reason=job["reason"], reason_code=job["reason_code"])
        return view

    def create_job(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("params"), dict):
            return 400, _errors("body must be an object with 'params'", 1211)
        if body.get("program_id") not in ("estimator", "sampler"):
            return 404, _errors(f"program {body.get('program_id')!r} not found", 1211)
        if body.get("backend") not in self.backends:
            return 404, _errors(f"Backend {body.get('backend')} not found", 1216)
        session_id = body.get("session_id")
        if session_id is not None and session_id not in self.sessions:
            return 400, _errors(f"session {session_id} does not exist", 1217)
        if session_id is not None and not self.sessions[session_id].get("accepting_jobs", True):
            # a closed session takes no new jobs (IBM's "Close job session" / PATCH
            # accepting_jobs=false, qrmi@b2ed2e5 dependencies/quantum_compute_client/src/apis/
            # sessions_api.rs doc comments)
            return 400, _errors(f"session {session_id} is closed", 1217)
        job_id = "d" + uuid.uuid4().hex[:19]
        job = {
            "id": job_id,
            "backend": body["backend"],
            "status": "Queued",
            "program": {"id": body["program_id"]},
            "created": _now(),
            "cost": body.get("cost"),
            "session_id": session_id,
            "tags": body.get("tags") or [],
            "runtime": body.get("runtime", ""),
            "private": bool(body.get("private")),
            "params": body["params"],
            "usage": {"quantum_seconds": 0, "seconds": 0},
        }
        with self.lock:
            self.jobs[job_id] = job
            self.created.append(body)
        threading.Thread(target=self._run, args=(job,), daemon=True).start()
        return 200, {"id": job_id, "backend": body["backend"]}

    def _set(self, job: dict[str, Any], status: str, **fields: Any) -> bool:
        with self.lock:
            if job["status"] in _FINAL:
                return False
            job.update(status=status, **fields)
            if status in _FINAL:
                self.completed_at.append(time.time())
            return True

    @staticmethod
    def _wait(job: dict[str, Any], until: float) -> bool:
        """Sleep until ``until`` (monotonic); False at once if the job is cancelled."""
        while time.monotonic() < until:
            if job["status"] in _FINAL:
                return False
            time.sleep(min(0.05, max(0.0, until - time.monotonic())))
        return job["status"] not in _FINAL

    def _run(self, job: dict[str, Any]) -> None:
        started = time.monotonic()
        seconds = float(self.config["job_seconds"])
        # Building circuits in server threads of the test process crashed it (segfault in
        # QuantumCircuit.__init__ on the second job), so the params run in the local
        # resource's worker process, started at once: a job lasts max(job_seconds, run).
        fixed = self.config.get("fixed_result")
        run = not self.config["fail_jobs"] and fixed is None
        worker = (
            WorkerRun({"program_id": job["program"]["id"], "parameters": job["params"]})
            if run
            else None
        )
        try:
            queued = self.config.get("queue_seconds")
            queued = seconds / 2 if queued is None else min(float(queued), seconds)
            if not self._wait(job, started + queued) or not self._set(job, "Running"):
                return
            if not self._wait(job, started + seconds):
                return
            if fixed is not None:
                self.results[job["id"]] = fixed
                self._set(job, "Completed")
                return
            if worker is None:
                self.results[job["id"]] = (
                    'Traceback (most recent call last):\n  File "primitive.py", line 1\n'
                    f"RuntimeError: {self.config['reason']}"
                )
                self._set(
                    job,
                    "Failed",
                    reason=self.config["reason"],
                    reason_code=self.config["reason_code"],
                )
                return
            text, error = worker.wait()
            if error is not None:
                self.results[job["id"]] = f"Traceback (most recent call last):\nError: {error}"
                self._set(job, "Failed", reason=error, reason_code=1500)
                return
            self.results[job["id"]] = text
            self._set(job, "Completed", usage={"quantum_seconds": 1, "seconds": 1})
        finally:
            if worker is not None:
                worker.close()

    def route(self, request: Request) -> tuple[int, Any]:
        method, path, query, headers, body = (
            request.method,
            request.path,
            request.query,
            request.headers,
            request.body,
        )
        if path == IAM + "/identity/token" and method == "POST":
            return self.issue_token(body)
        if not path.startswith(API + "/"):
            return 404, _errors(f"no route {method} {path}")
        denied = self._unauthorized(headers)
        if denied:
            return denied
        api = path[len(API) :]
        with self.lock:
            if api == "/jobs" and method == "POST":
                try:
                    return self.create_job(json.loads(body))
                except ValueError:
                    return 400, _errors("body is not JSON", 1211)
            if api == "/jobs" and method == "GET":
                tags = query.get("tags") or []
                backend = (query.get("backend") or [None])[0]
                # pending / session_id filters as qrmi's release() sends them; meaning from
                # qrmi@b2ed2e5 dependencies/quantum_compute_client/docs/JobsApi.md (list_jobs:
                # "pending: Returns 'Queued' and 'Running' jobs if true. Returns 'Completed',
                # 'Cancelled', and 'Failed' jobs if false."; "session_id: Session ID to filter")
                pending = (query.get("pending") or [None])[0]
                session = (query.get("session_id") or [None])[0]
                found = [
                    self._view(j, params=False)
                    for j in reversed(self.jobs.values())
                    if (self.config.get("ignore_tag_filter") or all(t in j["tags"] for t in tags))
                    and backend in (None, j["backend"])
                    and session in (None, j["session_id"])
                    and pending in (None, "true" if j["status"] not in _FINAL else "false")
                ]
                return 200, {"jobs": found, "count": len(found), "offset": 0, "limit": 10}
            if m := re.fullmatch(r"/jobs/([^/]+)(/[a-z]+)?", api):
                job = self.jobs.get(m.group(1))
                if job is None:
                    return 404, _errors(f"Job {m.group(1)} not found", 1291)
                return self._job_route(method, job, m.group(2) or "", query)
            if api == "/sessions" and method == "POST":
                data = json.loads(body or b"{}")
                if data.get("mode") not in ("batch", "dedicated"):
                    return 400, _errors("mode must be batch or dedicated", 1217)
                if data.get("backend") not in self.backends:
                    return 404, _errors(f"Backend {data.get('backend')} not found", 1216)
                session_id = "s" + uuid.uuid4().hex[:19]
                # fields as qrmi's generated CreateSession200Response reads them (id, mode and
                # backend_name required; max_ttl / active_ttl seconds): qrmi@b2ed2e5
                # dependencies/quantum_compute_client/src/models/create_session_200_response.rs;
                # the request's max_ttl as qiskit-ibm-runtime 0.51 api/rest/runtime_session.py
                # and qrmi's acquire() send it (IBM's default: 8 hours)
                max_ttl = int(data.get("max_ttl") or 28800)
                self.sessions[session_id] = {
                    "id": session_id,
                    "mode": self.config.get("session_mode") or data["mode"],
                    "backend_name": data["backend"],
                    "accepting_jobs": True,
                    "state": "open",
                    "max_ttl": max_ttl,
                    "active_ttl": max_ttl,
                }
                answer = dict(self.sessions[session_id])
                if self.config.get("session_messages"):
                    answer["messages"] = list(self.config["session_messages"])
                return 200, answer
            if (m := re.fullmatch(r"/sessions/([^/]+)/close", api)) and method == "DELETE":
                # qrmi's release() with pending jobs: "The session stops accepting new jobs and
                # queued jobs will not run. Existing running jobs will run to completion."
                # (qrmi@b2ed2e5 dependencies/quantum_compute_client/src/apis/sessions_api.rs,
                # delete_session_close)
                session = self.sessions.get(m.group(1))
                if session is None:
                    return 404, _errors("session not found", 1217)
                session.update(accepting_jobs=False, state="closed")
                for job in self.jobs.values():
                    if job["session_id"] == session["id"] and job["status"] == "Queued":
                        job.update(status="Cancelled")
                return 204, None
            if m := re.fullmatch(r"/sessions/([^/]+)", api):
                session = self.sessions.get(m.group(1))
                if session is None:
                    return 404, _errors("session not found", 1217)
                if method == "PATCH":
                    session.update(json.loads(body or b"{}"))
                    return 204, None
                return 200, dict(session)
            if api == "/backends" and method == "GET":
                return 200, {"devices": list(self.backends)}
            if (m := re.fullmatch(r"/backends/([^/]+)/(configuration|properties)", api)) and (
                method == "GET"
            ):
                if m.group(1) not in self.backends:
                    return 404, _errors(f"Backend {m.group(1)} not found", 1216)
                return 200, device_document(m.group(2))
            if (m := re.fullmatch(r"/backends/([^/]+)/status", api)) and method == "GET":
                if m.group(1) not in self.backends:
                    return 404, _errors("backend not found", 1216)
                return 200, {"state": True, "status": "active", "message": "", "length_queue": 0}
        return 404, _errors(f"no route {method} {api}")

    def _job_route(
        self, method: str, job: dict[str, Any], sub: str, query: dict[str, list[str]]
    ) -> tuple[int, Any]:
        if sub == "" and method == "GET":
            exclude = (query.get("exclude_params") or ["false"])[0] == "true"
            return 200, self._view(job, params=not exclude)
        if sub == "/results" and method == "GET":
            text = self.results.get(job["id"])
            if job["status"] == "Failed" and self.config.get("failed_results_status"):
                status = int(self.config["failed_results_status"])
                return status, _errors(f"Job {job['id']} has no results.", 1292)
            if text is None or job["status"] not in _FINAL:
                return 404, _errors("results are not available yet", 1292)
            return 200, ("text", text)
        if sub == "/cancel" and method == "POST":
            if job["status"] in _FINAL:
                return 409, _errors(f"job is {job['status']} and cannot be cancelled", 1014)
            job.update(status="Cancelled", cancelled_at=time.time())
            return 204, None
        return 404, _errors(f"no route {method} /jobs/{{id}}{sub}")


def runner_env(
    name: str,
    fake: FakeQiskitRuntime,
    api_key: str = API_KEY,
    prefix: str = "QRMI_IBM_QRS_",
    rtype: str = "qiskit-runtime-service",
    **settings: str,
) -> dict[str, str]:
    """Variables qrmi-task-runner needs to use backend ``name`` on this fake."""
    env = {
        "SLURM_JOB_QPU_RESOURCES": name,
        "SLURM_JOB_QPU_TYPES": rtype,
        f"{name}_{prefix}ENDPOINT": fake.api_url,
        f"{name}_{prefix}IAM_ENDPOINT": fake.iam_url,
        f"{name}_{prefix}IAM_APIKEY": api_key,
        f"{name}_{prefix}SERVICE_CRN": SERVICE_CRN,
    }
    env.update({f"{name}_{prefix}{k}": v for k, v in settings.items()})
    return env
