"""S3 side of a Direct Access job: upload the input, presign URLs, stream results back.

Every S3 request is a SigV4 presigned URL (botocore's ``S3SigV4QueryAuth``, the signer
boto3 presigns with), sent with ``requests``: the URLs the job carries for the service,
and our own upload and downloads. boto3's S3 client would cost about 0.15 s of CPU per run
(its import, and loading the S3 service model) for three requests; this costs 0.03 s.
Path-style addressing (``{endpoint}/{bucket}/{key}``), as S3-compatible stores expect.

Failures follow the one retry policy (:func:`qrmi_tasks.retry.with_retries`): no answer,
a cut transfer and the transient statuses (5xx, 429, S3's 503 SlowDown) are retried with
the run's cancellable ``pause``; another S3 error answer fails at once with S3's
``Code: Message`` (``S3_ERRORS``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, BinaryIO, NamedTuple, TypeVar
from urllib.parse import quote, unquote, urlsplit

import requests

from qrmi_tasks import binding
from qrmi_tasks.errors import ProviderError
from qrmi_tasks.providers.ibm import S3_ERRORS
from qrmi_tasks.retry import Retry, is_transient, retry_after_seconds, with_retries

log = logging.getLogger("qrmi_tasks.direct_access")
T = TypeVar("T")

CHUNK = 1 << 20
ATTEMPTS = 6  # what boto3's "standard" retry mode allowed before
TIMEOUTS = (10.0, 30.0)  # connect, per socket read; the runner bounds each whole call
# Presigned URLs must outlive the job: the service may start it late and run it long.
PRESIGN_MARGIN_SECONDS = 3600
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 limit
# Our own requests start at once; the URL only has to be valid when each attempt starts.
OWN_URL_SECONDS = 900
MAX_ERROR_BODY = 64 << 10  # an S3 error answer is a few hundred bytes of XML


def input_key(job_id: str, digest: str) -> str:
    """``input_{id}.sha256-<16 hex>.json``: the job's input object, named with its
    payload's digest. The job answer names it (``storage.input``), so a rerun under the
    same job id tells which payload the job ran (:func:`digest_of_job`), and a rerun with
    another payload never overwrites the input of a job still waiting to read it."""
    return f"input_{job_id}.sha256-{binding.short(digest)}.json"


_INPUT_NAME = re.compile(r"input_(?P<id>.+)\.sha256-(?P<digest>[0-9a-f]{16})\.json")


def digest_of_job(job: dict[str, Any]) -> str | None:
    """The payload digest that the input object of a job answer names, or None (another
    client's naming, e.g. an older version's ``input_{id}.json``, or no URL at all)."""
    storage = job.get("storage")
    part = storage.get("input") if isinstance(storage, dict) else None
    url = part.get("presigned_url") if isinstance(part, dict) else None
    if not isinstance(url, str):
        return None
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    found = _INPUT_NAME.fullmatch(name)
    return found["digest"] if found and found["id"] == job.get("id") else None


def results_key(job_id: str) -> str:
    return f"results_{job_id}.json"


def logs_key(job_id: str) -> str:
    return f"logs_{job_id}.json"


class S3Error(Exception):
    """An S3 error answer: its HTTP status and S3's ``Code`` and ``Message``."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None):
        super().__init__(f"{code}: {message}" if message else code)
        self.status = status
        self.code = code
        self.retry_after = retry_after


class _Credentials(NamedTuple):
    """What botocore's signers read of a credentials object."""

    access_key: str
    secret_key: str
    token: str | None = None


def _xml_field(name: str, body: str) -> str:
    found = re.search(rf"<{name}>([^<]{{0,500}})</{name}>", body)
    return found[1].strip() if found else ""


def s3_error(response: requests.Response) -> S3Error:
    """The error answer ``response`` (read up to 64 KiB) as an :class:`S3Error`."""
    try:
        body = response.raw.read(MAX_ERROR_BODY, decode_content=True) or b""
    except (requests.RequestException, OSError, ValueError):
        body = b""
    finally:
        response.close()
    text = body.decode("utf-8", errors="replace")
    code = _xml_field("Code", text) or f"HTTP {response.status_code}"
    return S3Error(
        response.status_code,
        code,
        _xml_field("Message", text),
        retry_after_seconds(response.headers.get("Retry-After")),
    )


def presign_url(
    method: str,
    url: str,
    region: str,
    access_key: str,
    secret_key: str,
    expires: int,
) -> str:
    """``url`` with SigV4 query authentication for ``method``, valid ``expires`` seconds
    (botocore's ``S3SigV4QueryAuth``: the payload is not signed, only the host header)."""
    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(method=method, url=url)
    signer = S3SigV4QueryAuth(_Credentials(access_key, secret_key), "s3", region, expires=expires)
    signer.add_auth(request)
    return request.url


class JobStorage:
    """The bucket that carries a job's input, results and logs."""

    def __init__(
        self,
        endpoint: str,
        region: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        presign_endpoint: str | None,
        pause: Callable[[float], None],
        session_factory: Callable[[], requests.Session] = requests.Session,
    ) -> None:
        """``presign_endpoint``: where the DA service reaches the store, when that is
        another name than this node uses. ``pause(seconds)`` waits between attempts (the
        run's, which raises Interrupted on a signal)."""
        self.bucket = bucket
        self.endpoint = endpoint.rstrip("/")
        # The DA service may reach the store under another name than this node does.
        self.presign_endpoint = (presign_endpoint or endpoint).rstrip("/")
        self.region = region
        self._keys = (access_key, secret_key)
        self._pause = pause
        self.session = session_factory()

    def url(self, method: str, key: str, expires: int, endpoint: str | None = None) -> str:
        """A presigned ``method`` URL of object ``key``, path style."""
        base = endpoint or self.endpoint
        path = f"/{quote(self.bucket, safe='')}/{quote(key, safe='/~')}"
        return presign_url(method, base + path, self.region, *self._keys, expires)

    def _retried(self, action: str, call: Callable[[], T]) -> T:
        """``call`` under the retry policy; an S3 error answer that no retry can cure is
        raised as the package's one-line ProviderError."""

        def classify(exc: Exception) -> Retry | None:
            if isinstance(exc, S3Error):
                if is_transient(exc.status):
                    return Retry(f"HTTP {exc.status}: {exc}", exc.retry_after)
                raise self._fail(action, exc) from None
            if isinstance(exc, requests.RequestException):  # not OSError: a full disk is ours
                return Retry(f"no complete answer ({type(exc).__name__})")
            return None

        return with_retries(
            call,
            what=f"S3 {action} (bucket {self.bucket} at {self.endpoint})",
            classify=classify,
            pause=self._pause,
            attempts=ATTEMPTS,
        )

    def _fail(self, action: str, exc: S3Error) -> ProviderError:
        """``exc`` as the package's table words an S3 failure of ``action``."""
        error = S3_ERRORS.translate(exc, action=action, bucket=self.bucket, endpoint=self.endpoint)
        assert isinstance(error, ProviderError)  # the table maps every S3Error
        return error

    def upload_input(self, job_id: str, digest: str, body: bytes) -> None:
        """Store the primitive parameters under :func:`input_key`."""
        key = input_key(job_id, digest)

        def put() -> None:
            response = self.session.put(
                self.url("PUT", key, OWN_URL_SECONDS),
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=TIMEOUTS,
                stream=True,
            )
            if response.status_code >= 300:
                raise s3_error(response)
            response.close()

        self._retried("upload of the job input", put)

    def presigned(self, job_id: str, timeout_secs: int, digest: str) -> dict[str, Any]:
        """The job's ``storage`` object: GET for input, PUT for results and logs."""
        expires = min(timeout_secs + PRESIGN_MARGIN_SECONDS, MAX_PRESIGN_SECONDS)

        def part(method: str, key: str) -> dict[str, str]:
            url = self.url(method, key, expires, self.presign_endpoint)
            return {"type": "s3_compatible", "presigned_url": url}

        return {
            "input": part("GET", input_key(job_id, digest)),
            "results": part("PUT", results_key(job_id)),
            "logs": part("PUT", logs_key(job_id)),
        }

    def download(self, key: str, into: BinaryIO, missing_ok: bool = False) -> bool:
        """Stream object ``key`` into ``into`` in 1 MiB chunks; False if missing and allowed.

        A transfer cut midway restarts from the beginning (``into`` is rewound), so the
        result is never a concatenation of partial attempts.
        """
        start = into.tell()

        def get() -> bool:
            into.seek(start)
            into.truncate()
            response = self.session.get(
                self.url("GET", key, OWN_URL_SECONDS), timeout=TIMEOUTS, stream=True
            )
            if response.status_code == 404 and missing_ok:
                response.close()
                return False
            if response.status_code >= 300:
                raise s3_error(response)
            try:
                for chunk in response.iter_content(CHUNK):
                    into.write(chunk)
            finally:
                response.close()
            return True

        return self._retried(f"download of {key}", get)

    def close(self) -> None:
        """Close the HTTP connections."""
        self.session.close()
