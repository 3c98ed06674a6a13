"""The one place that touches qiskit-ibm-runtime internals (private API).

Checked against qiskit-ibm-runtime 0.51.0 (ibm-cloud-sdk-core 3.28); :func:`load` refuses
versions outside ``SUPPORTED`` with a one-line error instead of failing mid-run.

Why private API at all:

* ``QiskitRuntimeService(channel="ibm_cloud", instance=CRN, ...)`` always looks the
  instance up with IBM Cloud Global Search and Global Catalog (hosts derived from the URL's
  host name, without its port) and lists the instance's backends before it returns, and its
  ``_run`` then downloads the backend configuration, the instance usage and the backend
  status before submitting. None of that is needed to run one job on a named backend.
* The public primitives (``SamplerV2`` / ``EstimatorV2``) only accept ``QuantumCircuit``
  pubs and options objects; the payload's ``parameters`` are already the wire format.

So this module builds the library's own ``RuntimeClient`` (what ``QiskitRuntimeService``
builds per instance) and calls ``RuntimeClient.program_run`` (what ``_run`` calls), which
posts ``parameters`` unchanged. The job's state is read with ``RuntimeClient.job_get``
(``GET /jobs/{id}``), not ``RuntimeJobV2.status()``: on a failed job that also fetches
the results for an error message and raises when they answer 4xx. Results are streamed
through the client's own ``RetrySession`` (auth, retries and base URL included), because
``job_results`` returns the whole body as ``str``.
"""

from __future__ import annotations

import logging
import os
from typing import Any, BinaryIO

from qrmi_tasks import token_cache
from qrmi_tasks.answers import answer_hook
from qrmi_tasks.providers.ibm.iam import IamTokens
from qrmi_tasks.quiet import quiet_import_warnings
from qrmi_tasks.retry import one_line

with quiet_import_warnings():
    import qiskit_ibm_runtime
    import requests
    import requests.adapters
    from qiskit_ibm_runtime.api.auth import CloudAuth
    from qiskit_ibm_runtime.api.client import RuntimeClient
    from qiskit_ibm_runtime.api.client_parameters import ClientParameters
    from qiskit_ibm_runtime.api.exceptions import RequestsApiError
    from qiskit_ibm_runtime.api.rest.program_job import ProgramJob
    from qiskit_ibm_runtime.exceptions import IBMNotAuthorizedError

# the library's errors become ours through the package's table (ibm.RUNTIME_ERRORS);
# only the 401 the provider renews its token for is caught by class
__all__ = ["IBMNotAuthorizedError", "RuntimeApi"]

#: versions whose internals this module was read against (lower inclusive, upper exclusive)
SUPPORTED = ((0, 51), (0, 52))
_CHUNK = 1 << 20
# RetrySession's default is (5, None): no read timeout at all, so a hung answer would
# block forever. Per socket read; the runner bounds each whole call.
TIMEOUTS = (10.0, 30.0)


def _version() -> tuple[int, int]:
    parts = qiskit_ibm_runtime.__version__.split(".")
    return int(parts[0]), int(parts[1])


def load() -> None:
    """Check the installed version and route the library's logs through ours."""
    version = _version()
    if not SUPPORTED[0] <= version < SUPPORTED[1]:
        low, high = (".".join(map(str, v)) for v in SUPPORTED)
        raise ImportError(
            f"qiskit-ibm-runtime {qiskit_ibm_runtime.__version__} is installed; this runner "
            f"uses its internals and supports >={low},<{high}"
        )
    # On import, qiskit_ibm_runtime attaches its own stderr handler and stops propagation:
    # its records would skip our format and our secret-masking filter. Undo that.
    library_log = logging.getLogger("qiskit_ibm_runtime")
    for handler in list(library_log.handlers):
        library_log.removeHandler(handler)
    library_log.propagate = True


class _StrictCloudAuth(CloudAuth):
    """CloudAuth whose tokens come from :class:`~qrmi_tasks.providers.ibm.iam.IamTokens`.

    ``CloudAuth`` takes the IAM URL from ``$IAM_URL`` or the public IAM host, and when the
    token call fails it warns and sends ``Authorization: apikey <key>`` to the API
    instead; here the configured IAM URL is used and a failure is an ``IamError``.
    """

    def __init__(self, api_key: str, crn: str, tokens: IamTokens) -> None:
        super().__init__(api_key=api_key, crn=crn)
        self.tokens = tokens

    def get_headers(self) -> dict:
        return {"Service-CRN": self.crn, "Authorization": f"Bearer {self.tokens.token()}"}


def _first_line(exc: BaseException) -> str:
    return one_line(exc, 300) or type(exc).__name__


class _Params(ClientParameters):
    def __init__(self, auth: _StrictCloudAuth, endpoint: str, crn: str, api_key: str) -> None:
        super().__init__(
            channel="ibm_cloud",
            token=api_key,
            url=endpoint,
            instance=crn,
            # the default resolver rebuilds the URL from the CRN's region; keep ours as is
            url_resolver=lambda _url, _instance, _private=False, _channel="": endpoint,
        )
        self._auth = auth

    def get_auth_handler(self) -> CloudAuth:
        return self._auth


class RuntimeApi:
    """The calls one task needs, made through qiskit-ibm-runtime's REST client."""

    def __init__(
        self,
        endpoint: str,
        iam_endpoint: str,
        api_key: str,
        crn: str,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.iam_endpoint = iam_endpoint.rstrip("/")
        self.crn = crn
        self.tokens = IamTokens(self.iam_endpoint, api_key, token_cache.directory(os.environ))
        self.auth = _StrictCloudAuth(api_key, crn, self.tokens)
        self._params = _Params(self.auth, self.endpoint, crn, api_key)
        self.client = self._new_client(retries=True)

    def _new_client(self, retries: bool) -> RuntimeClient:
        """A client with its own connections; ``retries=False``: exactly one attempt."""
        client = RuntimeClient(self._params)
        session = client._session
        session._timeout = TIMEOUTS
        # every JSON answer is read whole by the library: capped (results are streamed)
        session.hooks["response"].append(answer_hook())
        if not retries:  # the runner's cancel path retries itself, within its budget
            adapter = requests.adapters.HTTPAdapter(max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        return client

    def check_credentials(self) -> None:
        """Exchange the API key for a token now (raises IamError)."""
        self.auth.get_headers()

    def expire_token(self) -> None:
        """Make the next request fetch a fresh IAM token."""
        self.tokens.invalidate()

    def create_job(
        self,
        program_id: str,
        backend: str,
        params: dict[str, Any],
        cost: int | None,
        session_id: str | None,
        tags: list[str],
    ) -> dict[str, Any]:
        """``POST /jobs`` with ``params`` as given; returns the answer (``id``, ``backend``)."""
        return self.client.program_run(
            program_id=program_id,
            backend_name=backend,
            params=params,
            image=None,
            log_level=None,
            session_id=session_id,
            job_tags=tags,
            max_execution_time=cost,
        )

    def job_state(self, job_id: str) -> dict[str, Any]:
        """``GET /jobs/{id}`` without params: ``state`` (status, reason, reason_code), tags."""
        return self.client.job_get(job_id, exclude_params=True)

    def error_text(self, job_id: str) -> str:
        """A failed job's error text: the tail of the traceback its results body holds."""
        text = self.client.job_results(job_id)
        index = text.rfind("Traceback")
        return text[index:] if index != -1 else text

    def backend_documents(self, backend: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The backend's configuration and properties JSON (to build a transpiler target)."""
        return (
            self.client.backend_configuration(backend),
            self.client.backend_properties(backend),
        )

    def find_jobs(self, tag: str, backend: str) -> list[dict[str, Any]]:
        """Jobs carrying ``tag`` on ``backend``, newest first."""
        answer = self.client.jobs_get(limit=10, backend_name=backend, job_tags=[tag])
        return [j for j in answer.get("jobs", []) if isinstance(j, dict)]

    def stream_results(self, job_id: str, into: BinaryIO) -> int:
        """Write the job's result body, byte for byte, into ``into``; return its size."""
        path = ProgramJob(self.client._session, job_id).get_url("results")
        response = self.client._session.get(path, stream=True)
        size = 0
        try:
            for chunk in response.iter_content(_CHUNK):
                into.write(chunk)
                size += len(chunk)
        except requests.RequestException as exc:  # cut mid-body: outside the session's wrap
            raise RequestsApiError(f"result transfer failed: {_first_line(exc)}") from exc
        finally:
            response.close()
        return size

    def create_session(self, backend: str, mode: str, max_ttl: int | None = None) -> dict[str, Any]:
        """Open a ``batch`` or ``dedicated`` session on ``backend``; return the answer
        (``id``, ``mode``, and ``messages`` when the service has something to say).

        ``max_ttl`` (seconds) is sent as the session's ``max_ttl``; None leaves the
        service's default.
        """
        return self.client.create_session(
            backend=backend, instance=self.crn, max_time=max_ttl, mode=mode
        )

    def close_session(self, session_id: str) -> None:
        """Stop the session from accepting jobs (its running jobs finish)."""
        self.client.close_session(session_id)

    def cancel_job(self, job_id: str) -> bool:
        """One cancel request on fresh connections; False if the job is already final.

        Raises RequestsApiError (with the HTTP status) otherwise, unlike
        ``RuntimeJobV2.cancel``, which hides the status inside an IBMRuntimeError.
        """
        client = self._new_client(retries=False)
        try:
            client.job_cancel(job_id)
        except RequestsApiError as exc:
            if exc.status_code == 409:
                return False
            raise
        finally:
            client._session.close()
        return True

    def find_jobs_once(self, tag: str, backend: str) -> list[dict[str, Any]]:
        """``find_jobs`` in one attempt on fresh connections (for the cancel path)."""
        client = self._new_client(retries=False)
        try:
            answer = client.jobs_get(limit=10, backend_name=backend, job_tags=[tag])
        finally:
            client._session.close()
        return [j for j in answer.get("jobs", []) if isinstance(j, dict)]

    def close(self) -> None:
        """Close the HTTP connections."""
        self.client._session.close()
