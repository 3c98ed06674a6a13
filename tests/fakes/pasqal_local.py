"""A fake Pasqal warden (the service in front of an on-premises QPU) on 127.0.0.1.

Routes as qrmi's client calls them (records in ``tests/conformance/pasqal_local``, which
``tests/test_conformance_pasqal_local.py`` checks the live answers against):
``GET /accessible`` (no credential), ``POST /sessions`` / ``DELETE /sessions/{id}``,
``POST /jobs`` (``X-Warden-Session`` an open session), ``GET /jobs``, ``GET /jobs/{id}``,
``POST /jobs/{id}/cancel``, ``GET /jobs/{id}/logs``, ``GET /qpu/specs``. Every route but
``/accessible`` needs a valid ``x-munge-cred``: decoded with the host's libmunge, so an
expired, replayed or forged credential is refused (401, ``{"detail"}``).

Jobs move PENDING -> RUNNING -> DONE on timers (``job_seconds``, PENDING for
``pending_seconds``, by default half); the result is the sequence emulated by the ``local``
resource's worker (Pulser), ``{"counter": {...}}`` as a JSON string. ``fail_jobs``: jobs
end ERROR (their logs say why). ``create_delay``: ``POST /jobs`` creates the job at once and
answers that many seconds later. Fault injection: :mod:`fakes.server`'s ``faults``; a fault
with ``"job_done": true`` matches ``GET /jobs/{id}`` only after a read of that job answered
DONE (the result download, which shares its route with the status read).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from .munge_daemon import decode
from .server import FakeServer, Request, Response
from .worker import run_worker

CONFORMANCE = Path(__file__).resolve().parent.parent / "conformance" / "pasqal_local"


def conformance(name: str) -> dict[str, Any]:
    """The record ``tests/conformance/pasqal_local/{name}.json``."""
    return json.loads((CONFORMANCE / f"{name}.json").read_text())


def device_specs() -> str:
    """The QPU's specs: a Pulser device's abstract representation (AnalogDevice's)."""
    from pulser.devices import AnalogDevice

    return AnalogDevice.to_abstract_repr()


class FakeWarden(FakeServer):
    """State of the fake warden; :class:`fakes.server.FakeServer` does the HTTP."""

    def __init__(self, job_seconds: float = 0.3) -> None:
        super().__init__(
            job_seconds=job_seconds, pending_seconds=None, fail_jobs=False, create_delay=0.0
        )
        self.reported_done: set[int] = set()  # jobs a GET /jobs/{id} showed DONE
        self.jobs: dict[int, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, str]] = {}  # open sessions
        self.revoked: list[str] = []
        self.created: list[dict[str, Any]] = []  # POST /jobs bodies, with their session
        self.uids: list[int] = []  # the uid of each accepted credential
        self._next_id = 1

    def fault_applies(self, fault: dict[str, Any], path: str) -> bool:
        """A ``job_done`` fault waits for its job to have been reported DONE."""
        return not fault.get("job_done") or self._done(path)

    def _done(self, path: str) -> bool:
        m = re.fullmatch(r"/jobs/(\d+)", path)
        return m is not None and int(m.group(1)) in self.reported_done

    def fault(self, request: Request, status: int) -> Response:
        if status == 422:
            return Response(status, self._invalid("body", "injected: invalid job"))
        return Response(status, {"detail": f"injected fault {status}"})

    @staticmethod
    def _invalid(where: str, msg: str) -> dict[str, Any]:
        return {"detail": [{"loc": ["body", where], "msg": msg, "type": "value_error"}]}

    # -- behaviour ------------------------------------------------------------------------
    def _view(self, job: dict[str, Any]) -> dict[str, Any]:
        return {k: job[k] for k in ("id", "user_id", "status", "results")}

    def create_job(self, request: Request, uid: int) -> tuple[int, Any]:
        body = request.json()
        session = request.headers.get("X-Warden-Session")
        if session not in self.sessions:
            return 403, {"detail": "no open session in X-Warden-Session"}
        if not isinstance(body, dict):
            return 422, self._invalid("", "a JSON object is required")
        if not isinstance(body.get("sequence"), str):
            return 422, self._invalid("sequence", "a string is required")
        if type(body.get("shots")) is not int or body["shots"] < 1:
            return 422, self._invalid("shots", "a positive integer is required")
        job_id, self._next_id = self._next_id, self._next_id + 1
        job = {
            "id": job_id,
            "user_id": self.sessions[session]["user_id"],
            "status": "PENDING",
            "results": None,
            "session": session,
            "logs": [f"job {job_id}: accepted in session {session}"],
        }
        self.jobs[job_id] = job
        self.created.append({**body, "session": session, "uid": uid})
        threading.Thread(
            target=self._run, args=(job, body["sequence"], body["shots"]), daemon=True
        ).start()
        return 200, self._view(job)

    def _set(self, job: dict[str, Any], status: str, **fields: Any) -> bool:
        with self.lock:
            if job["status"] == "CANCELED":
                return False
            job.update(status=status, **fields)
            job["logs"].append(f"job {job['id']}: {status}")
            return True

    def _run(self, job: dict[str, Any], sequence: str, shots: int) -> None:
        total = float(self.config["job_seconds"])
        pending = self.config["pending_seconds"]
        pending = total / 2 if pending is None else min(total, float(pending))
        time.sleep(pending)
        if not self._set(job, "RUNNING"):
            return
        time.sleep(total - pending)
        if self.config["fail_jobs"]:
            self._set(job, "ERROR")
            job["logs"].append("QPU error: calibration drifted")
            return
        try:
            counter = json.loads(run_worker({"sequence": sequence, "job_runs": shots}))["counter"]
        except Exception as exc:
            self._set(job, "ERROR")
            job["logs"].append(" ".join(str(exc).split())[:300])
            return
        self._set(job, "DONE", results=json.dumps({"counter": counter}))

    def cancel(self, job_id: int) -> dict[str, Any] | None:
        """Cancel a job (the API's cancel); None if unknown."""
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return None
            if job["status"] in ("PENDING", "RUNNING"):
                job["status"] = "CANCELED"
                job["logs"].append(f"job {job_id}: CANCELED")
            return self._view(job)

    def route(self, request: Request) -> tuple[int, Any]:
        method, path = request.method, request.path
        if path == "/accessible" and method == "GET":
            return 200, {"is_accessible": True, "message": "QPU online"}
        uid, reason = decode(request.headers.get("x-munge-cred") or "")
        if uid is None:
            return 401, {"detail": f"invalid MUNGE credential: {reason}"}
        if path == "/jobs" and method == "POST":
            with self.lock:
                self.uids.append(uid)
                answer = self.create_job(request, uid)
            time.sleep(float(self.config["create_delay"]))  # created now, answered late
            return answer
        with self.lock:
            self.uids.append(uid)
            if path == "/sessions" and method == "POST":
                body = request.json() or {}
                if not all(isinstance(body.get(k), str) for k in ("user_id", "slurm_job_id")):
                    return 422, self._invalid("user_id", "user_id and slurm_job_id are strings")
                session = str(uuid.uuid4())
                self.sessions[session] = body
                return 200, {"id": session}
            if (m := re.fullmatch(r"/sessions/([^/]+)", path)) and method == "DELETE":
                if self.sessions.pop(m.group(1), None) is None:
                    return 404, {"detail": "session not found"}
                self.revoked.append(m.group(1))
                return 200, {"id": m.group(1)}
            if path == "/jobs" and method == "GET":
                return 200, [self._view(j) for j in self.jobs.values()]
            if path == "/qpu/specs" and method == "GET":
                return 200, {"specs": device_specs()}
            m = re.fullmatch(r"/jobs/(\d+)(/cancel|/logs)?", path)
            job = self.jobs.get(int(m.group(1))) if m else None
            if m and job is None:
                return 404, {"detail": "job not found"}
            if m and m.group(2) is None and method == "GET":
                if job["status"] == "DONE":
                    self.reported_done.add(job["id"])
                return 200, self._view(job)
            if m and m.group(2) == "/cancel" and method == "POST":
                return 200, self.cancel(job["id"])
            if m and m.group(2) == "/logs" and method == "GET":
                return 200, {"logs": "\n".join(job["logs"]) + "\n"}
        return 404, {"detail": f"no route {method} {path}"}


def runner_env(name: str, url: str, session: str | None = None) -> dict[str, str]:
    """Variables qrmi-task-runner (and qrmi) need to use resource ``name`` on this fake."""
    env = {
        "SLURM_JOB_QPU_RESOURCES": name,
        "SLURM_JOB_QPU_TYPES": "pasqal-local",
        f"{name}_QRMI_WARDEN_URL": url,
    }
    if session is not None:
        env[f"{name}_QRMI_JOB_ACQUISITION_TOKEN"] = session
    return env
