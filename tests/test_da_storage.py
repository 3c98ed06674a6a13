"""The Direct Access job data on S3 (``da_storage``): presigned URLs signed as AWS and boto3
sign them, and every transfer against moto's S3 behind a fault-injecting proxy."""

from __future__ import annotations

import datetime
import io
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from fakes.direct_access import AWS_KEY_ID, AWS_SECRET, BUCKET, REGION, moto_s3
from fakes.s3_proxy import S3Proxy

from qrmi_tasks.errors import Interrupted, ProviderError, TransientError
from qrmi_tasks.providers.ibm import da_storage
from qrmi_tasks.providers.ibm.da_storage import JobStorage, presign_url, results_key

DIGEST = "ab" * 32


@pytest.fixture(scope="module")
def s3_url():
    with moto_s3() as url:
        yield url


@pytest.fixture
def proxy(s3_url):
    fake = S3Proxy(s3_url).start()
    yield fake
    fake.stop()


def storage(url: str, pauses: list[float] | None = None, **kwargs) -> JobStorage:
    pauses = [] if pauses is None else pauses
    return JobStorage(
        url, REGION, BUCKET, AWS_KEY_ID, AWS_SECRET, kwargs.pop("presign", None), pauses.append
    )


def frozen(monkeypatch, when: datetime.datetime) -> None:
    """Sign as of ``when`` (botocore's signers read the clock through this function)."""
    import botocore.auth

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: when)


def test_presigned_url_is_aws_published_example(monkeypatch):
    # Amazon S3 API Reference, "Authenticating Requests: Using Query Parameters (AWS
    # Signature Version 4)", example: GET test.txt of examplebucket, valid 86400 s
    frozen(monkeypatch, datetime.datetime(2013, 5, 24))
    url = presign_url(
        "GET",
        "https://examplebucket.s3.amazonaws.com/test.txt",
        "us-east-1",
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        86400,
    )
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Credential"] == ["AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"]
    assert query["X-Amz-SignedHeaders"] == ["host"]
    assert query["X-Amz-Signature"] == [
        "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    ]


def test_job_urls_are_what_boto3_presigns(monkeypatch):
    import boto3
    from botocore.config import Config

    frozen(monkeypatch, datetime.datetime(2026, 12, 5, 12, 0, 0))
    endpoint = "http://s3.site.example:9000"
    presigner = boto3.session.Session(
        aws_access_key_id=AWS_KEY_ID, aws_secret_access_key=AWS_SECRET, region_name=REGION
    ).client(
        "s3",
        endpoint_url=endpoint,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    job = "5e1f0c2a-0d1b-4c7e-9a53-2b1c3d4e5f60"
    parts = storage("http://node-local:1", presign=endpoint).presigned(job, 600, DIGEST)
    expires = 600 + da_storage.PRESIGN_MARGIN_SECONDS
    for part, method, key in (
        ("input", "get_object", da_storage.input_key(job, DIGEST)),
        ("results", "put_object", results_key(job)),
        ("logs", "put_object", da_storage.logs_key(job)),
    ):
        expected = presigner.generate_presigned_url(
            method, Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=expires
        )
        assert parts[part]["presigned_url"] == expected


def test_upload_presign_download_through_s3(proxy):
    job = "job-roundtrip"
    store = storage(proxy.url)
    store.upload_input(job, DIGEST, b'{"pubs": []}')
    parts = store.presigned(job, 60, DIGEST)
    # the service side: read the input, write the results, through the presigned URLs
    assert requests.get(parts["input"]["presigned_url"], timeout=10).content == b'{"pubs": []}'
    result = b'{"results": [1, 2, 3]}'
    assert requests.put(parts["results"]["presigned_url"], result, timeout=10).ok
    into = io.BytesIO()
    assert store.download(results_key(job), into) is True
    assert into.getvalue() == result
    assert store.download(da_storage.logs_key(job), io.BytesIO(), missing_ok=True) is False
    (upload,) = proxy.calls("PUT", rf"/{BUCKET}/input_{job}\.sha256-abababababababab\.json")
    assert upload["headers"]["Content-Type"] == "application/json"


def test_transient_answers_are_retried(proxy):
    pauses: list[float] = []
    proxy.configure(faults=[{"method": "PUT", "status": 503, "times": 2, "retry_after": 0}])
    storage(proxy.url, pauses).upload_input("job-503", DIGEST, b"{}")
    assert [r["status"] for r in proxy.calls("PUT", r"/.*")] == [503, 503, 200]
    assert pauses == [0.0, 0.0]  # Retry-After honoured, through the run's pause


def test_cut_transfer_restarts_from_the_beginning(proxy):
    body = bytes(range(256)) * 8192  # 2 MiB, more than one chunk
    store = storage(proxy.url)
    requests.put(store.url("PUT", results_key("job-cut"), 60), body, timeout=10)
    proxy.configure(faults=[{"method": "GET", "cut": 100_000}])
    into = io.BytesIO(b"kept:")
    into.seek(0, io.SEEK_END)
    assert store.download(results_key("job-cut"), into) is True
    assert into.getvalue() == b"kept:" + body
    assert len(proxy.calls("GET", r"/.*")) == 2


def test_no_answer_gives_up_as_transient(proxy):
    pauses: list[float] = []
    proxy.configure(faults=[{"method": "GET", "drop": True, "times": 10}])
    with pytest.raises(TransientError) as caught:
        storage(proxy.url, pauses).download(results_key("job-drop"), io.BytesIO())
    assert caught.value.message == (
        f"S3 download of results_job-drop.json (bucket {BUCKET} at {proxy.url}): "
        "no complete answer (ConnectionError)"
    )
    assert len(proxy.calls("GET", r"/.*")) == da_storage.ATTEMPTS
    assert len(pauses) == da_storage.ATTEMPTS - 1


def test_refusal_fails_at_once_with_s3_words(proxy):
    pauses: list[float] = []
    proxy.configure(faults=[{"method": "PUT", "status": 403}])
    with pytest.raises(ProviderError) as caught:
        storage(proxy.url, pauses).upload_input("job-403", DIGEST, b"{}")
    assert caught.value.message == (
        f"S3 upload of the job input failed (bucket {BUCKET} at {proxy.url}): "
        "AccessDenied: Access Denied"
    )
    assert len(proxy.calls("PUT", r"/.*")) == 1 and pauses == []


def test_oversized_error_answer_is_not_read_whole(proxy):
    proxy.configure(faults=[{"method": "GET", "status": 400, "body_size": 20 << 20}])
    with pytest.raises(ProviderError, match=r": HTTP 400$"):
        storage(proxy.url).download(results_key("job-big-error"), io.BytesIO())


def test_signal_during_back_off_stops_the_transfer(proxy):
    def interrupted(seconds: float) -> None:
        raise Interrupted()

    proxy.configure(faults=[{"method": "PUT", "status": 500, "times": 5}])
    store = JobStorage(proxy.url, REGION, BUCKET, AWS_KEY_ID, AWS_SECRET, None, interrupted)
    with pytest.raises(Interrupted):
        store.upload_input("job-int", DIGEST, b"{}")
    assert len(proxy.calls("PUT", r"/.*")) == 1
