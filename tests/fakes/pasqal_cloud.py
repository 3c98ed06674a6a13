"""A fake Pasqal Cloud (core API subset used by pasqal-cloud 0.24) on 127.0.0.1.

Routes (JSend envelopes ``{"status", "code", "message", "data"}``, bearer token checked):
``POST /core/api/v1/batches`` (gzip body), ``GET /core/api/v1/batches`` (tag filter),
``GET /core/api/v2/batches/{id}``, ``GET /core/api/v1/batches/{id}/status``,
``PATCH /core/api/v2/batches/{id}/cancel``, ``GET /core/api/v2/jobs?batch_id=``,
``GET /core/api/v1/jobs/{id}/results_link`` and the link itself (``/results/{id}``,
unauthenticated like a presigned URL). Jobs move PENDING -> RUNNING -> DONE on timers; the
result comes from emulating the sequence with the ``local`` resource's worker (Pulser).

Fault injection via ``configure``: ``faults`` (``{"method", "path", "status"|"drop"|"delay",
"times"}``, path prefix match; ``"after": true`` with a status performs the request and
then answers with that status, as when an answer is lost), ``fail_jobs`` + ``job_errors``,
``job_seconds``.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "pasqal-token-abcdef0123456789"
PROJECT_ID = "00000000-0000-4000-8000-0000000000aa"
USER_ID = "user-0001"
CORE = "/core"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())


def emulate(sequence: str, runs: int) -> dict[str, Any]:
    """Emulate ``sequence`` for ``runs`` shots with the local worker; Pasqal's result shape."""
    with tempfile.TemporaryDirectory(prefix="fake-pasqal-") as workdir:
        (Path(workdir) / "payload.json").write_text(
            json.dumps({"sequence": sequence, "job_runs": runs})
        )
        proc = subprocess.run(
            [sys.executable, "-m", "qrmi_tasks.providers.local_worker", workdir],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            error = Path(workdir) / "error.txt"
            raise RuntimeError(error.read_text() if error.exists() else proc.stderr[-300:])
        counter = json.loads((Path(workdir) / "result.json").read_text())["counter"]
    raw = [bits for bits, n in counter.items() for _ in range(n)]
    return {"raw": raw, "counter": counter, "serialised_results": None}


class FakePasqalCloud:
    """State of the fake service; the HTTP handler dispatches to ``route``."""

    def __init__(self, job_seconds: float = 0.3) -> None:
        self.lock = threading.RLock()
        self.config: dict[str, Any] = {
            "job_seconds": job_seconds,
            "fail_jobs": False,
            "job_errors": ["Device calibration failed."],
            "faults": [],
        }
        self.batches: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.created: list[dict[str, Any]] = []  # decoded POST /batches bodies

    def start(self) -> FakePasqalCloud:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def core_url(self) -> str:
        return self.url + CORE

    def configure(self, **changes: Any) -> None:
        with self.lock:
            self.config["faults"].extend(changes.pop("faults", []))
            self.config.update(changes)

    def calls(self, method: str, path_regex: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                r
                for r in self.requests
                if r["method"] == method and re.fullmatch(path_regex, r["path"])
            ]

    def take_fault(self, method: str, path: str) -> dict[str, Any] | None:
        with self.lock:
            for fault in self.config["faults"]:
                if (
                    fault.get("method", method) == method
                    and path.startswith(fault.get("path", "/"))
                    and fault.get("times", 1) > 0
                ):
                    fault["times"] = fault.get("times", 1) - 1
                    return dict(fault)
        return None

    # -- behaviour ------------------------------------------------------------------------
    def _batch_view(self, batch: dict[str, Any]) -> dict[str, Any]:
        jobs = [self.jobs[j] for j in batch["job_ids"]]
        counts: dict[str, int] = {}
        for job in jobs:
            counts[job["status"]] = counts.get(job["status"], 0) + 1
        view = {k: v for k, v in batch.items() if k != "job_ids"}
        view.update(jobs_count=len(jobs), jobs_count_per_status=counts)
        return view

    def create_batch(self, body: dict[str, Any]) -> tuple[int, Any]:
        if not isinstance(body.get("sequence_builder"), str) or not body.get("jobs"):
            return 400, "sequence_builder and jobs are required"
        if body.get("project_id") != PROJECT_ID:
            return 403, "project not accessible"
        batch_id = str(uuid.uuid4())
        batch = {
            "id": batch_id,
            "open": bool(body.get("open")),
            "complete": not body.get("open"),
            "created_at": _now(),
            "updated_at": _now(),
            "device_type": body.get("device_type") or "EMU_FREE",
            "project_id": PROJECT_ID,
            "user_id": USER_ID,
            "status": "PENDING",
            "tags": body.get("tags") or [],
            "job_ids": [],
        }
        for spec in body["jobs"]:
            job_id = str(uuid.uuid4())
            self.jobs[job_id] = {
                "id": job_id,
                "batch_id": batch_id,
                "project_id": PROJECT_ID,
                "runs": spec.get("runs"),
                "status": "PENDING",
                "created_at": _now(),
                "updated_at": _now(),
                "errors": [],
                "variables": spec.get("variables"),
            }
            batch["job_ids"].append(job_id)
        with self.lock:
            self.batches[batch_id] = batch
            self.created.append(body)
        threading.Thread(
            target=self._run, args=(batch, body["sequence_builder"]), daemon=True
        ).start()
        return 200, self._batch_view(batch)

    def _set(self, batch: dict[str, Any], status: str, **job_fields: Any) -> bool:
        with self.lock:
            if batch["status"] == "CANCELED":
                return False
            batch.update(status=status, updated_at=_now())
            for job_id in batch["job_ids"]:
                self.jobs[job_id].update(status=status, updated_at=_now(), **job_fields)
            return True

    def _run(self, batch: dict[str, Any], sequence: str) -> None:
        time.sleep(float(self.config["job_seconds"]) / 2)
        if not self._set(batch, "RUNNING", start_timestamp=_now()):
            return
        time.sleep(float(self.config["job_seconds"]) / 2)
        if self.config["fail_jobs"]:
            self._set(batch, "ERROR", errors=list(self.config["job_errors"]))
            return
        try:
            for job_id in batch["job_ids"]:
                self.results[job_id] = emulate(sequence, int(self.jobs[job_id]["runs"]))
        except Exception as exc:
            self._set(batch, "ERROR", errors=[" ".join(str(exc).split())[:300]])
            return
        self._set(batch, "DONE", end_timestamp=_now())

    def route(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, Any]:
        if m := re.fullmatch(r"/results/([^/]+)", path):
            result = self.results.get(m.group(1))
            return (200, result) if result else (404, "no result")
        if not path.startswith(CORE + "/api/"):
            return 404, "no such route"
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, "Unauthorized: invalid token"
        api = path[len(CORE) :]
        with self.lock:
            if api == "/api/v1/batches" and method == "POST":
                data = gzip.decompress(body) if headers.get("Content-Encoding") == "gzip" else body
                return self.create_batch(json.loads(data))
            if api == "/api/v1/batches" and method == "GET":
                tag = (query.get("tag") or [None])[0]
                found = [
                    self._batch_view(b)
                    for b in self.batches.values()
                    if tag is None or tag in b["tags"]
                ]
                return 200, {"_list": found}
            if (m := re.fullmatch(r"/api/v2/batches/([^/]+)", api)) and method == "GET":
                batch = self.batches.get(m.group(1))
                return (200, self._batch_view(batch)) if batch else (404, "batch not found")
            if (m := re.fullmatch(r"/api/v1/batches/([^/]+)/status", api)) and method == "GET":
                batch = self.batches.get(m.group(1))
                return (200, {"status": batch["status"]}) if batch else (404, "not found")
            if (m := re.fullmatch(r"/api/v2/batches/([^/]+)/cancel", api)) and method == "PATCH":
                batch = self.batches.get(m.group(1))
                if batch is None:
                    return 404, "batch not found"
                if batch["status"] in ("PENDING", "RUNNING"):
                    batch.update(status="CANCELED", updated_at=_now())
                    for job_id in batch["job_ids"]:
                        self.jobs[job_id].update(status="CANCELED")
                return 200, self._batch_view(batch)
            if api == "/api/v2/jobs" and method == "GET":
                batch_id = (query.get("batch_id") or [None])[0]
                return 200, {
                    "_list": [
                        j
                        for j in self.jobs.values()
                        if batch_id is None or j["batch_id"] == batch_id
                    ]
                }
            if (m := re.fullmatch(r"/api/v1/jobs/([^/]+)/results_link", api)) and method == "GET":
                job_id = m.group(1)
                if job_id not in self.jobs:
                    return 404, "job not found"
                link = f"{self.url}/results/{job_id}" if job_id in self.results else None
                return 200, {"results_link": link}
        return 404, f"no route {method} {api}"


def _handler(fake: FakePasqalCloud) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            fault = fake.take_fault(self.command, parts.path)
            if fault and fault.get("delay"):
                time.sleep(float(fault["delay"]))
            if fault and fault.get("drop"):
                self._log(parts.path, 0)
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(2)
                return
            if fault and fault.get("status") and fault.get("after"):
                # the request takes effect but its answer is lost (e.g. a proxy's 502)
                fake.route(self.command, parts.path, parse_qs(parts.query), self.headers, body)
                status, data = int(fault["status"]), f"injected fault {fault['status']}"
            elif fault and fault.get("status"):
                status, data = int(fault["status"]), f"injected fault {fault['status']}"
            else:
                status, data = fake.route(
                    self.command, parts.path, parse_qs(parts.query), self.headers, body
                )
            self._log(parts.path, status)
            if parts.path.startswith("/results/") and status == 200:
                payload = data
            elif isinstance(data, dict) and "_list" in data:
                items = data["_list"]
                payload = {
                    "status": "success",
                    "code": 200,
                    "message": "OK.",
                    "data": items,
                    "pagination": {"total": len(items), "offset": 0, "end": len(items)},
                }
            elif status < 400:
                payload = {"status": "success", "code": status, "message": "OK.", "data": data}
            else:
                payload = {"status": "fail", "code": status, "message": str(data), "data": {}}
            encoded = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(encoded)))
            self.end_headers()
            self.wfile.write(encoded)

        def _log(self, path: str, status: int) -> None:
            with fake.lock:
                fake.requests.append(
                    {"method": self.command, "path": path, "status": status, "time": time.time()}
                )

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    return Handler


def runner_env(device: str, core_url: str, token: str = TOKEN) -> dict[str, str]:
    """Variables qrmi-task-runner needs to use ``device`` on this fake."""
    return {
        "SLURM_JOB_QPU_RESOURCES": device,
        "SLURM_JOB_QPU_TYPES": "pasqal-cloud",
        f"{device}_QRMI_PASQAL_CLOUD_PROJECT_ID": PROJECT_ID,
        f"{device}_QRMI_PASQAL_CLOUD_AUTH_TOKEN": token,
        f"{device}_QRMI_PASQAL_CLOUD_ENDPOINT": core_url,
        f"{device}_QRMI_PASQAL_CLOUD_ACCOUNT_ENDPOINT": core_url,
    }
