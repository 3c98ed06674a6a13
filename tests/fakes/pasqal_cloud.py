"""A fake Pasqal Cloud (core API subset used by pasqal-cloud 0.24) on 127.0.0.1.

Routes (JSend envelopes ``{"status", "code", "message", "data"}``, bearer token checked),
under ``/core`` and under the service's own ``/core-fast``:
``POST /core/api/v1/batches`` (gzip body), ``GET /core/api/v1/batches`` (tag filter),
``GET /core/api/v2/batches/{id}``, ``GET /core/api/v1/batches/{id}/status``,
``PATCH /core/api/v2/batches/{id}/cancel``, ``GET /core/api/v2/jobs?batch_id=``,
``GET /core/api/v1/jobs/{id}/results_link`` and the link itself (``/results/{id}``,
unauthenticated like a presigned URL); ``GET /core/api/v1/devices/specs`` (device type
-> the device's Pulser abstract repr as a JSON string; by default FRESNEL as Pulser's
``AnalogDevice``, the Fresnel-like device Pulser ships); ``POST /oauth/token`` (Auth0:
password-realm and client-credentials grants, see :meth:`FakePasqalCloud.login`). Jobs
move PENDING -> RUNNING -> DONE on timers; the result comes from emulating the sequence
with the ``local`` resource's worker (Pulser).

Bodies follow the records in ``tests/conformance/pasqal`` (public sources: the SDK's
recorded API bodies, Pasqal's API docs), which ``tests/test_conformance_pasqal.py`` checks
the live answers against: a failed job ends ``ERROR`` in a ``DONE`` batch (a batch is DONE
once all its jobs are terminal), an invalid create is a 422 with
``data.description[{loc, msg, type}]`` (served from ``create_batch_422.json``).

Fault injection and behaviour via ``configure``: ``faults`` (see :mod:`fakes.server`:
injected statuses, 401s included, lost answers, delays, dropped connections; an injected
422 answers the recorded 422 body), ``fail_jobs`` + ``job_errors`` (the job ends ERROR,
its batch DONE), ``job_seconds`` (PENDING for ``pending_seconds`` of them, by default
half, then RUNNING), ``detours`` (``[(status, seconds), ...]`` a batch passes
through between PENDING and RUNNING: ``PAUSED``, or a status nobody knows yet),
``cancel_seconds`` (how long a cancelled batch stays ``CANCELING`` before ``CANCELED``),
``ignore_tag_filter`` (``GET /batches?tag=`` lists every batch, as a server whose filter
does not work would), ``device_specs`` (``{device type: pulser device}`` the specs route
lists; None: the default above).
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from .server import FakeServer, Request, Response
from .worker import run_worker

TOKEN = "pasqal-token-abcdef0123456789"
PROJECT_ID = "00000000-0000-4000-8000-0000000000aa"
USER_ID = "user-0001"
CORE = "/core"  # where most tests point {NAME}_QRMI_PASQAL_CLOUD_ENDPOINT (any URL works)
# The core API's path on the real service (pasqal-cloud 0.24 endpoints.CORE_API_URL
# "https://apis.pasqal.cloud/core-fast"; qrmi's client calls {base_url}/core-fast/api/...),
# served too, so that qrmi's BASE_URL maps onto this fake as onto the service
SERVICE_CORE = "/core-fast"
OAUTH = "/oauth/token"
USERNAME, PASSWORD = "alice@example.org", "pasqal-password-0123456789"
CLIENT_ID, CLIENT_SECRET = "svc-account-0001", "pasqal-client-secret-0123456789"
# The form qrmi's auth.rs and pasqal-cloud's PasswordGrantTokenProvider post (Auth0):
# qrmi@b2ed2e5 dependencies/pasqal_cloud_client/src/auth/auth.rs (AUTH_GRANT_TYPE,
# AUTH_REALM, AUTH_CLIENT_ID, AUTH_AUDIENCE; "client_credentials" for service accounts),
# same values as pasqal-cloud 0.24 endpoints.py (AUTH0_TOKEN_PROVIDER_GRANT_TYPE, REALM,
# PUBLIC_CLIENT_ID, AUDIENCE)
PASSWORD_GRANT = "http://auth0.com/oauth/grant-type/password-realm"
PUBLIC_CLIENT_ID = "PeZvo7Atx7IVv3iel59asJSb4Ig7vuSB"
AUDIENCE = "https://apis.pasqal.cloud/account/api/v1"
CONFORMANCE = Path(__file__).resolve().parent.parent / "conformance" / "pasqal"


def conformance(name: str) -> dict[str, Any]:
    """The conformance record ``tests/conformance/pasqal/{name}.json``."""
    return json.loads((CONFORMANCE / f"{name}.json").read_text())


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())


def emulate(sequence: str, runs: int) -> dict[str, Any]:
    """Emulate ``sequence`` for ``runs`` shots with the local worker; Pasqal's result shape."""
    counter = json.loads(run_worker({"sequence": sequence, "job_runs": runs}))["counter"]
    raw = [bits for bits, n in counter.items() for _ in range(n)]
    return {"raw": raw, "counter": counter, "serialised_results": None}


class FakePasqalCloud(FakeServer):
    """State of the fake service; :class:`fakes.server.FakeServer` does the HTTP."""

    def __init__(self, job_seconds: float = 0.3) -> None:
        super().__init__(
            job_seconds=job_seconds,
            pending_seconds=None,
            fail_jobs=False,
            job_errors=["Device calibration failed."],
            detours=[],
            cancel_seconds=0.0,
            ignore_tag_filter=False,
            device_specs=None,
        )
        self.batches: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []  # decoded POST /batches bodies
        self.tokens: set[str] = {TOKEN}  # bearer tokens the API accepts
        self.logins: list[str] = []  # grant types of successful logins, in order

    @property
    def core_url(self) -> str:
        return self.url + CORE

    def fault(self, request: Request, status: int) -> Response:
        if status == 422:  # the service's validation answer, as recorded
            return Response(status, ("raw", conformance("create_batch_422")["example"]))
        return Response(status, f"injected fault {status}")

    def encode(self, request: Request, response: Response) -> tuple[bytes, str]:
        """JSend envelopes, as Pasqal Cloud answers (the results link serves raw JSON)."""
        status, data = response.status, response.body
        if isinstance(data, bytes):  # an injected fault's raw body (``body``, ``body_size``)
            return data, "application/json"
        if isinstance(data, tuple) and data[0] in ("oauth", "raw"):  # Auth0: plain JSON
            payload = data[1]
        elif request.path.startswith("/results/") and status == 200:
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
        return json.dumps(payload).encode(), "application/json"

    # -- behaviour ------------------------------------------------------------------------
    def _batch_view(self, batch: dict[str, Any], jobs: bool = False) -> dict[str, Any]:
        """A batch as the API shows it (``jobs``: with its jobs, as create and cancel do)."""
        job_list = [self.jobs[j] for j in batch["job_ids"]]
        counts: dict[str, int] = {}
        for job in job_list:
            counts[job["status"]] = counts.get(job["status"], 0) + 1
        view = dict(batch)
        view.update(jobs_count=len(job_list), jobs_count_per_status=counts)
        if jobs:
            view["jobs"] = [dict(j) for j in job_list]
        return view

    def create_batch(self, body: dict[str, Any]) -> tuple[int, Any]:
        """``POST /batches``: validate as the service does (422, recorded shape), start the run."""
        problems = []
        if not isinstance(body.get("sequence_builder"), str):
            problems.append((["body", "sequence_builder"], "field required", "value_error.missing"))
        jobs = body.get("jobs")
        if not jobs or not all(
            isinstance(j, dict) and isinstance(j.get("runs"), int) for j in jobs
        ):
            problems.append((["body", "jobs"], "every job needs integer runs", "value_error"))
        if problems:
            return 422, (
                "raw",
                {
                    "status": "fail",
                    "code": "422",
                    "message": "Unprocessable Entity",
                    "data": {
                        "description": [
                            {"loc": loc, "msg": msg, "type": t} for loc, msg, t in problems
                        ]
                    },
                },
            )
        if body.get("project_id") != PROJECT_ID:
            return 403, "project not accessible"
        batch_id = str(uuid.uuid4())
        batch = {
            "id": batch_id,
            "open": bool(body.get("open")),
            "complete": not body.get("open"),
            "priority": 10,
            "created_at": _now(),
            "updated_at": _now(),
            "start_datetime": None,
            "end_datetime": None,
            "device_type": body.get("device_type") or "EMU_FREE",
            "project_id": PROJECT_ID,
            "user_id": USER_ID,
            "status": "PENDING",
            "sequence_builder": body["sequence_builder"],
            "webhook": None,
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
                "start_timestamp": None,
                "end_timestamp": None,
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
        return 200, self._batch_view(batch, jobs=True)

    def _set(
        self, batch: dict[str, Any], status: str, job_status: str | None = None, **job_fields: Any
    ) -> bool:
        """Move a batch (and its jobs) on, unless a cancel overtook the run."""
        with self.lock:
            if batch["status"] in ("CANCELED", "CANCELING"):
                return False
            batch.update(status=status, updated_at=_now())
            if status == "RUNNING":
                batch["start_datetime"] = _now()
            if status == "DONE":
                batch["end_datetime"] = _now()
            if job_status is not None:
                for job_id in batch["job_ids"]:
                    self.jobs[job_id].update(status=job_status, updated_at=_now(), **job_fields)
            return True

    def _run(self, batch: dict[str, Any], sequence: str) -> None:
        total = float(self.config["job_seconds"])
        pending = self.config["pending_seconds"]
        pending = total / 2 if pending is None else min(total, float(pending))
        time.sleep(pending)
        for status, seconds in list(self.config["detours"]):
            if not self._set(batch, status):  # jobs stay PENDING meanwhile
                return
            time.sleep(float(seconds))
        if not self._set(batch, "RUNNING", "RUNNING", start_timestamp=_now()):
            return
        time.sleep(total - pending)
        if self.config["fail_jobs"]:
            # the batch ends DONE: all its jobs reached a terminal status (Pasqal's docs)
            self._set(
                batch, "DONE", "ERROR", errors=list(self.config["job_errors"]), end_timestamp=_now()
            )
            return
        try:
            for job_id in batch["job_ids"]:
                self.results[job_id] = emulate(sequence, int(self.jobs[job_id]["runs"]))
        except Exception as exc:
            self._set(batch, "DONE", "ERROR", errors=[" ".join(str(exc).split())[:300]])
            return
        self._set(batch, "DONE", "DONE", end_timestamp=_now())

    def cancel(self, batch_id: str) -> dict[str, Any] | None:
        """Cancel a batch (the API's cancel, or a user in the portal); None if unknown.

        With ``cancel_seconds`` the batch shows ``CANCELING`` that long first.
        """
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return None
            if batch["status"] not in ("PENDING", "RUNNING", "PAUSED"):
                return self._batch_view(batch, jobs=True)
            delay = float(self.config["cancel_seconds"])
            status = "CANCELING" if delay > 0 else "CANCELED"
            batch.update(status=status, updated_at=_now())
            for job_id in batch["job_ids"]:
                if self.jobs[job_id]["status"] in ("PENDING", "RUNNING"):
                    self.jobs[job_id].update(status=status, updated_at=_now())
            view = self._batch_view(batch, jobs=True)
        if delay > 0:
            timer = threading.Timer(delay, self._cancelled, args=(batch,))
            timer.daemon = True
            timer.start()
        return view

    def _cancelled(self, batch: dict[str, Any]) -> None:
        with self.lock:
            batch.update(status="CANCELED", updated_at=_now(), end_datetime=_now())
            for job_id in batch["job_ids"]:
                if self.jobs[job_id]["status"] == "CANCELING":
                    self.jobs[job_id].update(status="CANCELED", updated_at=_now())

    def route(self, request: Request) -> tuple[int, Any]:
        method, path, query, headers, body = (
            request.method,
            request.path,
            request.query,
            request.headers,
            request.body,
        )
        if m := re.fullmatch(r"/results/([^/]+)", path):
            result = self.results.get(m.group(1))
            return (200, result) if result else (404, "no result")
        if path == OAUTH and method == "POST":
            return self.login(dict(parse_qsl(body.decode())))
        core = next((c for c in (CORE, SERVICE_CORE) if path.startswith(c + "/api/")), None)
        if core is None:
            return 404, "no such route"
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return 401, "Unauthorized: invalid token"
        api = path[len(core) :]
        with self.lock:
            if api == "/api/v1/batches" and method == "POST":
                data = gzip.decompress(body) if headers.get("Content-Encoding") == "gzip" else body
                return self.create_batch(json.loads(data))
            if api == "/api/v1/batches" and method == "GET":
                tag = (query.get("tag") or [None])[0]
                if self.config["ignore_tag_filter"]:
                    tag = None
                found = [
                    {k: v for k, v in self._batch_view(b).items() if k != "job_ids"}
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
                view = self.cancel(m.group(1))
                return (200, view) if view is not None else (404, "batch not found")
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
            if api == "/api/v1/devices/specs" and method == "GET":
                return 200, self.device_specs()
        return 404, f"no route {method} {api}"

    def device_specs(self) -> dict[str, str]:
        """``GET /devices/specs``'s data: each device's abstract repr, as a JSON string."""
        devices = self.config["device_specs"]
        if devices is None:
            from pulser.devices import AnalogDevice

            devices = {"FRESNEL": AnalogDevice}
        return {kind: device.to_abstract_repr() for kind, device in devices.items()}

    def login(self, form: dict[str, str]) -> tuple[int, Any]:
        """Auth0's token endpoint for the two grants qrmi uses; OAuth errors per RFC 6749 5.2.

        The answer (``access_token``, ``expires_in``, ``token_type``) is Auth0's
        (https://auth0.com/docs/api/authentication#client-credentials-flow); the error body
        ``{"error", "error_description"}`` is what the SDK's ``_get_error_message`` reads.
        """
        grant = form.get("grant_type")
        if grant == PASSWORD_GRANT:
            good = (
                form.get("client_id") == PUBLIC_CLIENT_ID
                and form.get("realm") == "pcs-users"
                and form.get("audience") == AUDIENCE
                and (form.get("username"), form.get("password")) == (USERNAME, PASSWORD)
            )
        elif grant == "client_credentials":
            good = form.get("audience") == AUDIENCE and (
                form.get("client_id"),
                form.get("client_secret"),
            ) == (CLIENT_ID, CLIENT_SECRET)
        else:
            return 400, ("oauth", {"error": "unsupported_grant_type"})
        if not good:
            return 403, (
                "oauth",
                {"error": "invalid_grant", "error_description": "Wrong email or password."},
            )
        token = f"pasqal-issued-{uuid.uuid4().hex}"
        with self.lock:
            self.tokens.add(token)
            self.logins.append(grant)
        return 200, ("oauth", {"access_token": token, "expires_in": 86400, "token_type": "Bearer"})


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
