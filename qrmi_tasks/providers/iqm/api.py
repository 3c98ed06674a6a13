"""A small client of the IQM Server REST API (v1), on ``requests``.

Routes and bodies are those of qiskit-community/qrmi@b2ed2e5's generated client
``dependencies/iqm_client/src/apis`` (``jobs_api.rs``: ``job_submit``, ``get_job_v1``,
``cancel_job_v1``, ``job_get_artifacts``; ``calibration_sets_api.rs``:
``get_dynamic_quantum_architecture_v1``): ``{ENDPOINT}/api/v1/...``, bearer token.

Why not iqm-client (36.x): it pins ``qiskit<2.2`` for its Qiskit adapter and
``pydantic<2.13``, and brings iqm-pulla, iqm-pulse, iqm-station-control-client and
exa-common (gRPC, OpenTelemetry...) for what is five HTTP routes here; its requests have
one overall timeout and no way to cancel on a connection of their own.

Retries (:func:`qrmi_tasks.retry.with_retries`, the one policy): reads are retried on
5xx, 429 and failed connections a few times, through the run's cancellable ``pause``.
A submit is retried only when it cannot have landed (429, 503, a connection that was
never made): IQM Server has no job listing, so a job whose create answer was lost could
never be found again, and a second submit would run twice. ``attempts=1`` (the cancel)
makes one attempt, on a session of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import requests

from qrmi_tasks.answers import answer_hook
from qrmi_tasks.errors import PayloadError
from qrmi_tasks.providers.iqm import IQM_ERRORS
from qrmi_tasks.retry import Retry, is_transient, retry_after_seconds, with_retries

log = logging.getLogger("qrmi_tasks.iqm_server")

#: (connect, per-read) socket timeouts of every request
TIMEOUTS = (10.0, 30.0)
#: a submit answered so was refused before it was processed: safe to send again
_NOT_PROCESSED = frozenset({429, 503})
#: what a submit's refusal means when IQM Server refuses the job itself (invalid_job_payload,
#: unsupported_job_type, invalid_input; request_payload_too_large)
REFUSED_PAYLOAD = {400: PayloadError, 413: PayloadError, 422: PayloadError}


class IQMServerAPI:
    """Requests to one IQM Server; failures become our errors (the package's IQM_ERRORS)."""

    def __init__(
        self, endpoint: str, token: str, token_variable: str, pause: Callable[[float], None]
    ) -> None:
        """``pause(seconds)`` waits between attempts (raises Interrupted on a signal);
        ``token_variable`` is named by an authentication error."""
        self.root = endpoint.rstrip("/") + "/api/v1"
        self.token = token
        self.token_variable = token_variable
        self.pause = pause
        self.session = self.new_session()

    def new_session(self) -> requests.Session:
        """A session (connections) of its own, with the bearer token."""
        session = requests.Session()
        # API answers are kilobytes: capped (qrmi_tasks.answers); the artifacts are the
        # job's results, which can be large
        session.hooks["response"].append(answer_hook(uncapped=lambda url: "/artifacts/" in url))
        session.headers["Authorization"] = f"Bearer {self.token}"
        session.headers["Accept"] = "application/json"
        return session

    def call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: dict[str, str] | None = None,
        body: str | None = None,
        attempts: int = 4,
        may_repeat: bool = True,
        overrides: dict[int, Any] | None = None,
        session: requests.Session | None = None,
    ) -> requests.Response:
        """One API call with the retry policy above; the successful response."""
        http = session or self.session
        url = f"{self.root}/{path}"
        headers = {"Content-Type": "application/json"} if body is not None else None

        def attempt() -> requests.Response:
            response = http.request(
                method, url, params=params, data=body, headers=headers, timeout=TIMEOUTS
            )
            if response.status_code >= 400:
                raise requests.HTTPError(f"HTTP {response.status_code}", response=response)
            return response

        def classify(exc: Exception) -> Retry | None:
            if not isinstance(exc, requests.RequestException):
                return None
            response = getattr(exc, "response", None)
            status = getattr(response, "status_code", None)
            if not is_transient(status):
                return None
            if not may_repeat and not _not_processed(exc, status):
                return None
            after = retry_after_seconds(response.headers.get("Retry-After")) if response else None
            detail = f"HTTP {status}: {IQM_ERRORS.detail(exc)}" if status else type(exc).__name__
            return Retry(f"IQM Server: {detail}", after=after, throttled=status == 429)

        with IQM_ERRORS.mapped(overrides=overrides, what=what, token=self.token_variable):
            return with_retries(
                attempt, what=what, classify=classify, pause=self.pause, attempts=attempts
            )

    def json(self, response: requests.Response, what: str) -> Any:
        """The answer's JSON object (ProviderError naming ``what`` when it is not one)."""
        from qrmi_tasks.errors import ProviderError

        try:
            data = response.json()
        except ValueError:
            raise ProviderError(f"IQM Server: cannot {what}: the answer is not JSON") from None
        if not isinstance(data, dict):
            raise ProviderError(f"IQM Server: cannot {what}: the answer is not a JSON object")
        return data

    # -- routes -----------------------------------------------------------------------------
    def submit(
        self, qc: str, job_type: str, body: str, use_timeslot: bool, tag: str | None
    ) -> dict[str, Any]:
        """``POST /jobs/{qc}/{job_type}?use_timeslot=&tag=``: the new job (IqmServerJob)."""
        params = {"use_timeslot": "true" if use_timeslot else "false"}
        if tag is not None:
            params["tag"] = tag
        what = "submit the job"
        response = self.call(
            "POST",
            # the generated client leaves {qc} as it is ("sirius:mock"); only the type is quoted
            f"jobs/{qc}/{quote(job_type, safe='')}",
            what=what,
            params=params,
            body=body,
            may_repeat=False,
            overrides=REFUSED_PAYLOAD,
        )
        return self.json(response, what)

    def job(self, job_id: str) -> dict[str, Any]:
        """``GET /jobs/{id}``: the job's status and state (IqmServerJob)."""
        what = f"get job {job_id}"
        return self.json(self.call("GET", f"jobs/{quote(job_id, safe='')}", what=what), what)

    def cancel(self, job_id: str) -> requests.Response:
        """``POST /jobs/{id}/cancel``, once, on a fresh session (the old one may be stuck)."""
        return self.call(
            "POST",
            f"jobs/{quote(job_id, safe='')}/cancel",
            what=f"cancel job {job_id}",
            attempts=1,
            session=self.new_session(),
        )

    def artifact(self, job_id: str, artifact: str) -> Any:
        """``GET /jobs/{id}/artifacts/{type}`` as JSON; None when the job has none of that
        type (404: which artifacts exist depends on the job type)."""
        what = f"download artifact {artifact} of job {job_id}"
        try:
            response = self.call(
                "GET",
                f"jobs/{quote(job_id, safe='')}/artifacts/{quote(artifact, safe='')}",
                what=what,
            )
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise
        try:
            return response.json()
        except ValueError:
            from qrmi_tasks.errors import ProviderError

            raise ProviderError(f"IQM Server: cannot {what}: it is not JSON") from None

    def architecture(self, qc: str, calibration_set: str) -> dict[str, Any]:
        """``GET /calibration-sets/{qc}/{cal_set}/dynamic-quantum-architecture``."""
        what = "get the dynamic quantum architecture"
        path = f"calibration-sets/{qc}/{quote(calibration_set, safe='')}"
        response = self.call("GET", f"{path}/dynamic-quantum-architecture", what=what)
        return self.json(response, what)


def _not_processed(exc: Exception, status: int | None) -> bool:
    """Whether a failed submit certainly did not reach the service's job queue."""
    if status in _NOT_PROCESSED:
        return True
    if isinstance(exc, requests.ConnectTimeout):
        return True
    # refused: urllib3's NewConnectionError inside requests' ConnectionError
    return isinstance(exc, requests.ConnectionError) and "NewConnectionError" in repr(exc.args)
