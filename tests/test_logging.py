"""Log levels follow srun's SRUN_DEBUG; secrets never reach a log line."""

from __future__ import annotations

import logging

import pytest
from helpers import EXAMPLES, clean_env, run_runner

from qrmi_tasks.logsetup import _CHATTY, SecretFilter, level_from, setup_logging

BELL = str(EXAMPLES / "qiskit" / "bell_sampler.json")


@pytest.mark.parametrize(
    "srun_debug,level",
    [
        ("0", logging.ERROR),
        ("2", logging.ERROR),
        ("3", logging.INFO),
        ("4", logging.DEBUG),
        ("6", logging.DEBUG),
        ("junk", logging.INFO),
    ],
)
def test_srun_debug_mapping(srun_debug, level):
    assert level_from(0, False, {"SRUN_DEBUG": srun_debug})[0] == level


def test_flags_win_over_srun_debug():
    assert level_from(0, True, {"SRUN_DEBUG": "5"})[0] == logging.ERROR
    assert level_from(1, False, {"SRUN_DEBUG": "2"})[0] == logging.DEBUG


def test_srun_debug_in_a_real_run():
    quiet = run_runner("local", BELL, env=clean_env(SRUN_DEBUG="2"))
    normal = run_runner("local", BELL, env=clean_env(SRUN_DEBUG="3"))
    debug = run_runner("local", BELL, env=clean_env(SRUN_DEBUG="4"))
    assert quiet.returncode == normal.returncode == debug.returncode == 0
    assert quiet.stderr == ""
    assert " INFO " in normal.stderr and " DEBUG " not in normal.stderr
    assert " DEBUG " in debug.stderr


def _record(text: str) -> logging.LogRecord:
    return logging.LogRecord("x", logging.INFO, __file__, 1, text, None, None)


def test_filter_masks_known_values_and_credential_shapes():
    secrets = SecretFilter()
    secrets.add(["my-api-key-123", "AKIAEXAMPLEKEY"])
    samples = {
        "apikey my-api-key-123 in text": "my-api-key-123",
        "headers {'Authorization': 'Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig'}": "eyJhbGci",
        "GET https://s3/b/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIAX%2F2026&"
        "X-Amz-Signature=0123456789abcdef0123456789abcdef": "0123456789abcdef0123",
        "body grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=zzzsecretzzz": "zzzsecret",
        "url ?AWSAccessKeyId=AKIAEXAMPLEKEY&Signature=abc%2Bdef&Expires=1": "abc%2Bdef",
        '{"access_token": "tok-abcdefgh", "expires_in": 3600}': "tok-abcdefgh",
    }
    for text, secret in samples.items():
        record = _record(text)
        secrets.filter(record)
        assert secret not in record.getMessage(), record.getMessage()
        assert "***" in record.getMessage()


SIG = "8f5300c2b99754c8607800d0d399278b6e44f8b4ce4610ad30b0e485edb356dc"
# What botocore prints at DEBUG while signing requests and presigning URLs.
BOTOCORE_LINES = (
    f"Signature:\n{SIG}",
    "Sending http request: <AWSPreparedRequest method=PUT, headers={'X-Amz-Date': "
    "b'20261125T142046Z', 'Authorization': b'AWS4-HMAC-SHA256 Credential=AKIDKEY/20261125/"
    f"us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature={SIG}'}}>",
    f"Authorization: AWS4-HMAC-SHA256 Credential=AKIDKEY/x, SignedHeaders=host, Signature={SIG}",
    f"send: b'PUT /k HTTP/1.1\\r\\nAuthorization: AWS4-HMAC-SHA256 Signature={SIG}\\r\\n'",
    f'{{"presigned_url": "http://s3/b/k?X-Amz-Signature={SIG}&X-Amz-Date=1"}}',
    f"http://s3/b/k%3FX-Amz-Signature%3D{SIG}",
)


@pytest.mark.parametrize("text", BOTOCORE_LINES)
def test_filter_masks_what_botocore_prints(text):
    record = _record(text)
    SecretFilter().filter(record)
    assert SIG not in record.getMessage() and "AKIDKEY" not in record.getMessage()
    assert "***" in record.getMessage()


def test_filter_sits_on_the_handler_for_every_logger(capsys):
    # Libraries log through their own loggers (botocore.auth, urllib3...), which have no
    # filter of ours: only a filter on the root handler sees their records.
    root = logging.getLogger()
    touched = [root, *(logging.getLogger(n) for n in (*_CHATTY, "py.warnings"))]
    saved = [(logger, list(logger.handlers), logger.level) for logger in touched]
    try:
        setup_logging(verbose=2, environ={})
        logging.getLogger("botocore.auth").debug("Signature:\n%s", SIG)
        logging.getLogger("some.other.library").warning("Authorization: Bearer %s", SIG)
    finally:
        for logger, handlers, level in saved:
            logger.handlers[:] = handlers
            logger.setLevel(level)
        logging.captureWarnings(False)
    err = capsys.readouterr().err
    assert "DEBUG Signature:\n***" in err and "WARNING Authorization: ***" in err
    assert SIG not in err


def test_debug_run_never_prints_secret_environment_values(tmp_path):
    secrets = {
        "local_QRMI_IBM_DA_IAM_APIKEY": "apikey-value-4711",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-value-4712",
        "MY_SERVICE_TOKEN": "token-value-4713",
    }
    env = clean_env(**secrets)
    # a payload path that contains a secret value must be masked too when logged
    payload = tmp_path / "token-value-4713.json"
    payload.write_text((EXAMPLES / "qiskit" / "bell_sampler.json").read_text())
    proc = run_runner("-vv", "local", str(payload), "-o", str(tmp_path / "o.json"), env=env)
    assert proc.returncode == 0, proc.stderr
    assert " DEBUG " in proc.stderr or " INFO " in proc.stderr
    for value in secrets.values():
        assert value not in proc.stderr
