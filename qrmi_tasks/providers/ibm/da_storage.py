"""S3 side of a Direct Access job: upload the input, presign URLs, stream results back."""

from __future__ import annotations

import logging
import re
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from qrmi_tasks import binding
from qrmi_tasks.errors import ProviderError
from qrmi_tasks.providers.ibm import S3_ERRORS

log = logging.getLogger("qrmi_tasks.direct_access")

CHUNK = 1 << 20
DOWNLOAD_ATTEMPTS = 3
# Presigned URLs must outlive the job: the service may start it late and run it long.
PRESIGN_MARGIN_SECONDS = 3600
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 limit


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


class JobStorage:
    """The bucket that carries a job's input, results and logs."""

    def __init__(
        self,
        endpoint: str,
        region: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        presign_endpoint: str | None = None,
    ) -> None:
        import boto3
        from botocore.config import Config

        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},  # S3-compatible stores rarely do virtual hosts
            connect_timeout=10,
            read_timeout=30,  # per read; the runner bounds each whole call
            retries={"max_attempts": 6, "mode": "standard"},
        )
        session = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
        )
        self.bucket = bucket
        self.endpoint = endpoint
        self.client = session.client("s3", endpoint_url=endpoint, config=config)
        # The DA service may reach the store under another name than this node does.
        self.presigner = (
            session.client("s3", endpoint_url=presign_endpoint, config=config)
            if presign_endpoint
            else self.client
        )

    def _fail(self, action: str, exc: Exception) -> ProviderError:
        """``exc`` as the package's table words an S3 failure of ``action``."""
        error = S3_ERRORS.translate(exc, action=action, bucket=self.bucket, endpoint=self.endpoint)
        assert isinstance(error, ProviderError)  # the table maps every botocore failure
        return error

    def upload_input(self, job_id: str, digest: str, body: bytes) -> None:
        """Store the primitive parameters under :func:`input_key`."""
        with S3_ERRORS.mapped(
            action="upload of the job input", bucket=self.bucket, endpoint=self.endpoint
        ):
            self.client.put_object(
                Bucket=self.bucket,
                Key=input_key(job_id, digest),
                Body=body,
                ContentType="application/json",
            )

    def presigned(self, job_id: str, timeout_secs: int, digest: str) -> dict[str, Any]:
        """The job's ``storage`` object: GET for input, PUT for results and logs."""
        expires = min(timeout_secs + PRESIGN_MARGIN_SECONDS, MAX_PRESIGN_SECONDS)

        def url(method: str, key: str) -> str:
            return self.presigner.generate_presigned_url(
                method, Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires
            )

        return {
            "input": {
                "type": "s3_compatible",
                "presigned_url": url("get_object", input_key(job_id, digest)),
            },
            "results": {
                "type": "s3_compatible",
                "presigned_url": url("put_object", results_key(job_id)),
            },
            "logs": {"type": "s3_compatible", "presigned_url": url("put_object", logs_key(job_id))},
        }

    def download(self, key: str, into: BinaryIO, missing_ok: bool = False) -> bool:
        """Stream object ``key`` into ``into`` in 1 MiB chunks; False if missing and allowed.

        A transfer cut midway restarts from the beginning (``into`` is rewound), so the
        result is never a concatenation of partial attempts.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        start = into.tell()
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=key)
                for chunk in response["Body"].iter_chunks(CHUNK):
                    into.write(chunk)
                return True
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if missing_ok and code in ("NoSuchKey", "404"):
                    return False
                raise self._fail(f"download of {key}", exc) from None
            except BotoCoreError as exc:
                if attempt == DOWNLOAD_ATTEMPTS:
                    raise self._fail(f"download of {key}", exc) from None
                log.info("download of %s interrupted (%s); restarting", key, type(exc).__name__)
                into.seek(start)
                into.truncate()
        return False  # pragma: no cover - the loop returns or raises
